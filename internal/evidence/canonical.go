// Package evidence is rolekeeper's tamper-evident log: every decision, gate
// transition, finding and roles.yaml version is appended as a record whose
// hash covers the previous record's hash, so that editing, deleting,
// reordering or inserting a record breaks the chain at that record.
// Checkpoints (optionally signed with ed25519) pin the head at a time, and
// bundles carry one week of records with a manifest an auditor verifies
// offline. Encoding, chain and verification are pure; bundle.go reads and
// writes the bundle files and keeper.go is the daemon's side (checks,
// scheduled checkpoints, retention).
package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Canonical returns the canonical JSON encoding of v (docs/evidence.md):
// objects with their keys sorted by their UTF-8 bytes, no insignificant
// whitespace, strings escaped as Go's encoding/json does with HTML escaping
// off, numbers as they were written (integers stay integers). Equal content
// always gives equal bytes, so its hash does not depend on who encoded it.
func Canonical(v any) ([]byte, error) {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("evidence: canonical: %w", err)
		}
		raw = buf.Bytes()
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("evidence: canonical: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("evidence: canonical: more than one JSON value")
	}
	var out bytes.Buffer
	if err := writeCanonical(&out, tree); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func writeCanonical(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(x.String())
	case string:
		writeString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // byte order of the UTF-8 keys
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeCanonical(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("evidence: canonical: unexpected %T", v)
	}
	return nil
}

// writeString writes s as encoding/json does with SetEscapeHTML(false).
func writeString(b *bytes.Buffer, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// Time is the canonical form of a time in records: UTC, RFC 3339 with
// nanoseconds and trailing zeros dropped ("2026-12-07T08:00:00.5Z"); the
// zero time is "".
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ParseTime reads what Time wrote.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("evidence: time %q: %w", s, err)
	}
	return t.UTC(), nil
}
