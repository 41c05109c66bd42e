// Package codec holds the value encodings both SQL stores share, so that
// SQLite and Postgres store slices, maps, raw JSON and times the same way.
package codec

import (
	"encoding/json"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// JSON encodes a slice or map as JSON text; nil is stored as NULL.
func JSON(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Raw stores raw JSON byte for byte; empty is NULL.
func Raw(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

// Approvals normalizes approval times the way every other time is stored:
// cut to the millisecond, in UTC.
func Approvals(in []model.Approval) []model.Approval {
	if in == nil {
		return nil
	}
	out := make([]model.Approval, len(in))
	for i, a := range in {
		if !a.At.IsZero() {
			a.At = a.At.Truncate(time.Millisecond).UTC()
		}
		out[i] = a
	}
	return out
}
