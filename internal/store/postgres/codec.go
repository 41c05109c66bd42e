package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// ts truncates a time to the millisecond, NULL for the zero time.
// Parameters compared with stored times are truncated too, so that bounds
// behave exactly as in SQLite, which keeps milliseconds.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Truncate(time.Millisecond)
}

// tsArray is ts for an element of a timestamptz array parameter (pgx
// encodes an array's NULL element only from a typed value).
func tsArray(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.Truncate(time.Millisecond), Valid: true}
}

// fromTS decodes what ts stored, in UTC.
func fromTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Time.UnixMilli()).UTC()
}

// decJSON decodes what encJSON stored into dst, leaving it nil for NULL.
func decJSON(v pgtype.Text, dst any) error {
	if !v.Valid {
		return nil
	}
	return json.Unmarshal([]byte(v.String), dst)
}

func fromRaw(v pgtype.Text) json.RawMessage {
	if !v.Valid || v.String == "" {
		return nil
	}
	return json.RawMessage(v.String)
}

// where accumulates filter conditions joined by AND, numbering parameters.
type where struct {
	conds []string
	args  []any
}

// add appends "expr $n" for the next parameter n.
func (w *where) add(expr string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf("%s $%d", expr, len(w.args)))
}

// sql returns " WHERE …" or "".
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit returns " LIMIT n" for n > 0.
func limit(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", n)
}
