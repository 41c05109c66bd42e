package jsonscan

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// eachChecked is Each as it was before it skipped values unchecked: it
// validates every key and value. It is the oracle for Each on valid input.
func eachChecked(obj []byte, fn func(key, value []byte)) bool {
	i := space(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = space(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) {
		k, ok := str(obj, i)
		if !ok {
			return false
		}
		key := obj[i+1 : k-1]
		v := space(obj, space(obj, k)+1)
		end, ok := value(obj, v, 1)
		if !ok {
			return false
		}
		fn(key, obj[v:end])
		i = space(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			break
		}
		i = space(obj, i+1)
	}
	return true
}

// calls lists what each calls its function with, and its answer.
func calls(each func([]byte, func(k, v []byte)) bool, obj []byte) string {
	var b strings.Builder
	ok := each(obj, func(k, v []byte) { fmt.Fprintf(&b, "%q=%q ", k, v) })
	fmt.Fprintf(&b, "%v", ok)
	return b.String()
}

// checkString puts s as a string value in an object (closed by tail, or
// by "}" when tail is empty) and as a key, and holds Valid to encoding/json
// and, on valid input, Each to eachChecked.
func checkString(t *testing.T, s []byte, tail string) {
	t.Helper()
	if tail == "" {
		tail = "}"
	}
	for _, doc := range [][]byte{
		[]byte(`"` + string(s) + `"`),
		[]byte(`{"a":"` + string(s) + `"` + tail),
		[]byte(`{"` + string(s) + `":[1,{"c":"` + string(s) + `"}]` + tail),
	} {
		valid := json.Valid(doc)
		if got := Valid(doc); got != valid {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", doc, got, valid)
		}
		if !valid {
			calls(Each, doc) // must not panic
			continue
		}
		if got, want := calls(Each, doc), calls(eachChecked, doc); got != want {
			t.Fatalf("Each(%q) = %s, want %s", doc, got, want)
		}
	}
}

// Runs of backslashes before a quote: an even run leaves the quote
// closing the string, an odd one escapes it.
func TestEachBackslashRuns(t *testing.T) {
	for n := 0; n <= 20; n++ {
		run := strings.Repeat(`\\`, n) // n escaped backslashes
		for _, doc := range []string{
			`{"a":"` + run + `","b":"` + run + `\"}"}`,
			`{"a` + run + `":{"x":"` + run + `\"{[","y":["]` + run + `"]},"c":1}`,
			`{"a":[` + `"` + run + `\""` + `,"}"],"d":{"e":"` + run + `"}}`,
		} {
			if !json.Valid([]byte(doc)) {
				t.Fatalf("test case %q is not JSON", doc)
			}
			if got, want := calls(Each, []byte(doc)), calls(eachChecked, []byte(doc)); got != want {
				t.Errorf("Each(%s) = %s, want %s", doc, got, want)
			}
		}
	}
}

// Each on every prefix of the fixtures: whatever it answers for input that
// is not valid, it neither panics nor reads past the end.
func TestEachOnCutInput(t *testing.T) {
	for _, path := range fixtureFiles(t)[:4] {
		b := readFile(t, path)
		for cut := range len(b) {
			Each(b[:cut], func(k, v []byte) {})
		}
	}
	for _, c := range cases {
		Each([]byte(c), func(k, v []byte) {})
	}
}

// FuzzEachAgrees holds Each, which skips values unchecked, to the
// validating walk on valid input, and to not panicking on any input.
func FuzzEachAgrees(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"a\\":"\\\\\"","b":{"c":"]}\\"}}`))
	for _, path := range fixtureFiles(f) {
		f.Add(readFile(f, path))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := calls(Each, b)
		checkValidEach(t, b)
		if !Valid(b) {
			return
		}
		if want := calls(eachChecked, b); got != want {
			t.Fatalf("Each(%q) = %s, want %s", b, got, want)
		}
	})
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkValidEach holds ValidEach to Valid, and on valid input to Each.
func checkValidEach(t *testing.T, b []byte) {
	t.Helper()
	var valid, isObject bool
	got := calls(func(b []byte, fn func(k, v []byte)) bool {
		valid, isObject = ValidEach(b, fn)
		return isObject
	}, b)
	if valid != Valid(b) {
		t.Fatalf("ValidEach(%q) valid = %v, Valid says %v", b, valid, !valid)
	}
	if !valid {
		return
	}
	if want := calls(Each, b); got != want {
		t.Fatalf("ValidEach(%q) = %s, Each %s", b, got, want)
	}
}

func TestValidEach(t *testing.T) {
	for _, c := range cases {
		checkValidEach(t, []byte(c))
	}
	for _, path := range fixtureFiles(t) {
		b := readFile(t, path)
		for _, cut := range []int{len(b), len(b) - 1, len(b) / 2, 1} {
			checkValidEach(t, b[:cut])
		}
	}
	checkValidEach(t, []byte(` {"a" : 1 , "b\"c":{"x":[1,{"y":2}]}, "d":"e" ,"f":null} `))
}
