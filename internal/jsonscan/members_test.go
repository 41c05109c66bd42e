package jsonscan

import "testing"

func TestPick(t *testing.T) {
	names := []string{"id", "key"}
	tests := []struct {
		obj     string
		plain   bool
		id, key string // raw values; "" when absent
	}{
		{`{"id": 1, "key": "A-1", "other": {"id": 2}}`, true, `1`, `"A-1"`},
		{`{"other": true}`, true, ``, ``},
		{`{"id": 1, "id": 2}`, false, ``, ``},  // repeated: encoding/json keeps the last
		{`{"i\u0064": 1}`, false, ``, ``},      // escaped name
		{`{"ID": 1}`, false, ``, ``},           // matched case-insensitively by encoding/json
		{`{"\u212aey": "A-1"}`, false, ``, ``}, // the Kelvin sign folds to k
		{`[{"id": 1}]`, false, ``, ``},         // not an object
	}
	for _, tt := range tests {
		out := make([][]byte, len(names))
		plain := Pick([]byte(tt.obj), names, out)
		if plain != tt.plain {
			t.Errorf("Pick(%s) = %v, want %v", tt.obj, plain, tt.plain)
			continue
		}
		if plain && (string(out[0]) != tt.id || string(out[1]) != tt.key) {
			t.Errorf("Pick(%s): id %q key %q, want %q %q", tt.obj, out[0], out[1], tt.id, tt.key)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"plain"`, "plain", true},
		{`"tab\there \u00e9"`, "tab\there é", true},
		{`null`, "", true},
		{``, "", true}, // absent
		{`5`, "", false},
		{`{"a": 1}`, "", false},
		{"\"\xff\"", "\ufffd", true}, // invalid UTF-8 is replaced, as encoding/json does
	}
	for _, tt := range tests {
		var raw []byte
		if tt.raw != "" {
			raw = []byte(tt.raw)
		}
		got, ok := String(raw)
		if got != tt.want || ok != tt.ok {
			t.Errorf("String(%s) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}
