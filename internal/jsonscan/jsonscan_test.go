package jsonscan

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/fixtures"
)

var cases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5, -0, 1e3, 1E+3, 1.0e-3] } `, `"x"`, `null`, `true`, `false`,
	`01`, `-`, `1.`, `.1`, `1e`, `1e+`, `+1`, `-01`, `--1`, `1.5e3.2`, `NaN`, `tru`, `nul`, `nulll`, `truex`,
	`{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `[1,]`, `[,1]`, `{"a":1 "b":2}`, `{"a" 1}`, `{1:2}`, `{"a":1}}`, `[1]]`, `{"a":1`,
	`"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`, "\"\x01\"", "\"\x7f\"", "\"\xff\xfe\"", "\"tab\there\"",
	`"unterminated`, `"\`, "{\"a\":1}\x00", "\u00a0{}", "{}\v", `[[[[]]]]`, `{"a":{"b":{"c":[{}]}}}`, `1 2`, `{} {}`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
	for _, path := range fixtureFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Errorf("%s: Valid = %v, encoding/json says %v", path, got, want)
		}
		for _, cut := range []int{1, len(b) / 3, len(b) / 2, len(b) - 2} {
			if cut > 0 && cut < len(b) {
				if got, want := Valid(b[:cut]), json.Valid(b[:cut]); got != want {
					t.Errorf("%s cut at %d: Valid = %v, encoding/json says %v", path, cut, got, want)
				}
			}
		}
	}
}

// encoding/json refuses nesting deeper than 10,000; so must Valid.
func TestValidNestingLimit(t *testing.T) {
	for _, depth := range []int{9999, 10000, 10001} {
		for _, open := range []string{"[", `{"a":`} {
			closer := "]"
			if open != "[" {
				closer = "}"
			}
			b := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closer, depth))
			if got, want := Valid(b), json.Valid(b); got != want {
				t.Errorf("depth %d of %q: Valid = %v, encoding/json says %v", depth, open, got, want)
			}
		}
	}
}

func TestEach(t *testing.T) {
	var got []string
	ok := Each([]byte(` { "a" : 1 , "b\"c":{"x":[1,{"y":2}]}, "d":"e" ,"f":null} `), func(k, v []byte) {
		got = append(got, string(k)+"="+string(v))
	})
	want := []string{`a=1`, `b\"c={"x":[1,{"y":2}]}`, `d="e"`, `f=null`}
	if !ok || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Each = %v %q, want %q", ok, got, want)
	}
	if Each([]byte(`[1]`), func(k, v []byte) { t.Errorf("member %s of an array", k) }) {
		t.Error("Each accepted an array")
	}
	if !Each([]byte(`{}`), func(k, v []byte) { t.Errorf("member %s of {}", k) }) {
		t.Error("Each refused {}")
	}
}

func FuzzValidAgrees(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	for _, path := range fixtureFiles(f) {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
		if !json.Valid(b) {
			return
		}
		// Each splits an object into the members encoding/json sees.
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			if Each(b, func(k, v []byte) {}) {
				t.Fatalf("Each accepted a non-object %q", b)
			}
			return
		}
		n := 0
		Each(b, func(k, v []byte) {
			n++
			var key string
			if err := json.Unmarshal([]byte(`"`+string(k)+`"`), &key); err != nil {
				t.Fatalf("key %q: %v", k, err)
			}
			if !json.Valid(v) {
				t.Fatalf("value %q of %q is not JSON", v, key)
			}
		})
		if n < len(m) {
			t.Fatalf("Each saw %d members, encoding/json %d", n, len(m))
		}
	})
}

func fixtureFiles(tb testing.TB) []string {
	tb.Helper()
	out := fixtures.Glob(tb, "bitbucket/webhooks/*.json")
	return append(out, fixtures.Glob(tb, "jira/webhooks/*.json")...)
}
