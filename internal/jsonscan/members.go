package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Members picks the named members out of an object's walk (Add is the
// callback of Each or ValidEach) as encoding/json would match them, as
// long as the object is written plainly: Plain is false when a name is
// repeated (encoding/json keeps the last), escaped, or matches one of
// Names only case-insensitively (encoding/json matches those too). Callers
// leave such objects to encoding/json itself. The webhook checks of both
// upstreams use it.
type Members struct {
	Names []string
	Out   [][]byte // Out[i]: the raw value of Names[i]; nil when absent
	odd   bool
}

// Add takes one member of the object.
func (m *Members) Add(key, value []byte) {
	if m.odd {
		return
	}
	if bytes.IndexByte(key, '\\') >= 0 {
		m.odd = true
		return
	}
	for i, n := range m.Names {
		if string(key) == n {
			if m.Out[i] != nil {
				m.odd = true // repeated
			}
			m.Out[i] = value
			return
		}
		if strings.EqualFold(string(key), n) {
			m.odd = true
			return
		}
	}
}

// Plain reports whether every member added so far was written plainly.
func (m *Members) Plain() bool { return !m.odd }

// Pick is Members over Each: it fills out with the raw values of names in
// the valid object obj, and is false when obj is not an object or not
// written plainly.
func Pick(obj []byte, names []string, out [][]byte) bool {
	m := Members{Names: names, Out: out}
	return Each(obj, m.Add) && m.Plain()
}

// String decodes a raw JSON string or null (""); ok is false for any other
// value. A string without escapes, in valid UTF-8, is taken as written.
func String(v []byte) (s string, ok bool) {
	switch {
	case v == nil || v[0] == 'n':
		return "", true
	case v[0] != '"':
		return "", false
	case bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v):
		return string(v[1 : len(v)-1]), true
	}
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}
