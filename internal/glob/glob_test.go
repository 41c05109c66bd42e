package glob

import (
	"path"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"Dockerfile", []string{"Dockerfile"}, []string{"svc/Dockerfile", "Dockerfile.dev", "dockerfile"}},
		{"**/Dockerfile", []string{"Dockerfile", "svc/Dockerfile", "a/b/c/Dockerfile"}, []string{"Dockerfile.dev", "svc/Dockerfile/x"}},
		{"helm/**", []string{"helm/a/b.yaml", "helm/values.yaml", "helm"}, []string{"chart/helm/a.yaml", "helmet/a.yaml"}},
		{"**/*.go", []string{"a.go", "x/y/a.go", "x/.go"}, []string{"a.go/x", "a.golang", "x/a.go.txt"}},
		{"**/openapi*.yaml", []string{"openapi.yaml", "api/openapi-v2.yaml", "a/b/openapi.public.yaml"}, []string{"openapi.yml", "api/swagger.yaml"}},
		{"*.proto", []string{"a.proto"}, []string{"x/a.proto"}},
		{"src/*/main.go", []string{"src/app/main.go"}, []string{"src/main.go", "src/a/b/main.go"}},
		{"a/**/b", []string{"a/b", "a/x/b", "a/x/y/b"}, []string{"a/x/y/c", "b", "x/a/b"}},
		{"**/test/**", []string{"test/a.go", "x/test/y/z.go", "test"}, []string{"testing/a.go", "x/tests/a.go"}},
		{"**", []string{"a", "a/b/c"}, []string{""}},
		{"**/**/x", []string{"x", "a/x", "a/b/x"}, []string{"a/y"}},
		{"a?c", []string{"abc", "aéc"}, []string{"ac", "abbc", "a/c"}},
		{"[abc]x", []string{"ax", "cx"}, []string{"dx", "x"}},
		{"[a-c0-9]", []string{"b", "7"}, []string{"d", "-"}},
		{"[!a-c]", []string{"d", "é"}, []string{"a", "c"}},
		{"[^a-c]", []string{"d"}, []string{"b"}},
		{`\*.md`, []string{"*.md"}, []string{"a.md"}},
		{`[\]]`, []string{"]"}, []string{`\`}},
		{"*Test.java", []string{"FooTest.java", "Test.java"}, []string{"FooTests.java", "a/FooTest.java"}},
		{"*crypto*", []string{"crypto", "libcrypto.so", "x-crypto-y"}, []string{"cryptography/x"}},
		// A trailing "**" may match no segment: the folder pattern also
		// matches a file of that name.
		{"**/*crypto*/**", []string{"pkg/crypto/aes.go", "crypto/x", "a/libcrypto/b/c", "pkg/crypto.go"}, []string{"a/crypt/b", "cryp/to"}},
		{"build.gradle*", []string{"build.gradle", "build.gradle.kts"}, []string{"x/build.gradle"}},
		{"a*b?c*d", []string{"abxcd", "aXXbYcZZd", "abbbcd"}, []string{"abcd", "abxc", "abxcdX"}},
		{"*a*a*a", []string{"aaa", "baaca", "aaaa"}, []string{"aa", "aaab"}},
		{"x/*", []string{"x/", "x/y"}, []string{"x", "x/y/z"}},
	}
	for _, tt := range tests {
		g, err := Compile(tt.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.pattern, err)
		}
		if g.String() != tt.pattern {
			t.Errorf("String() = %q, want %q", g.String(), tt.pattern)
		}
		for _, p := range tt.yes {
			if !g.Match(p) {
				t.Errorf("%q should match %q", tt.pattern, p)
			}
		}
		for _, p := range tt.no {
			if g.Match(p) {
				t.Errorf("%q should not match %q", tt.pattern, p)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string // part of the error
	}{
		{"", "empty pattern"},
		{"/helm/**", "starts with '/'"},
		{"helm/", "ends with '/'"},
		{"a//b", "empty segment"},
		{"[abc", "unclosed '['"},
		{"src/[a-", "unclosed '['"},
		{"[]", "empty character class"},
		{"[!]", "empty character class"},
		{"[z-a]", "reversed range"},
		{"[a-]", "unquoted ']'"},
		{"[-a]", "unquoted '-'"},
		{`a\`, `trailing '\'`},
		{`[a\`, `trailing '\'`},
	}
	for _, tt := range tests {
		g, err := Compile(tt.pattern)
		if err == nil {
			t.Errorf("Compile(%q) = %v, want an error", tt.pattern, g)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) error %q, want it to mention %q", tt.pattern, err, tt.want)
		}
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCompile of a bad pattern did not panic")
		}
	}()
	MustCompile("[")
}

func TestMatchDoesNotAllocate(t *testing.T) {
	globs := []*Glob{
		MustCompile("**/*.go"), MustCompile("helm/**"), MustCompile("**/openapi*.yaml"),
		MustCompile("**/test/**"), MustCompile("a*b?c[0-9]/**/x"),
	}
	paths := []string{"services/payments/internal/api/handler_test.go", "helm/charts/api/values.yaml", "a.go", "a1b2c3/q/x"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, g := range globs {
			for _, p := range paths {
				g.Match(p)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocated %.1f times per run, want 0", allocs)
	}
}

// reference matches with path.Match per segment and tries every split for
// "**"; it is slow but obviously right.
func reference(pat, name []string) (bool, error) {
	if len(pat) == 0 {
		return len(name) == 0, nil
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			ok, err := reference(pat[1:], name[i:])
			if ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	}
	if len(name) == 0 {
		return false, nil
	}
	ok, err := path.Match(pat[0], name[0])
	if !ok || err != nil {
		return false, err
	}
	return reference(pat[1:], name[1:])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"**/*.go", "a/b/c.go"}, {"helm/**", "helm/x"}, {"[a-c]?*x", "b1yyx"}, {"**/openapi*.yaml", "api/openapi.yaml"},
		{`\[*\]`, "[x]"}, {"a/**/b/**/c", "a/b/x/b/c"}, {"[!a]", "b"}, {"*é?", "xéé"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := Compile(pattern)
		if err != nil {
			return
		}
		got := g.Match(name)
		// path.Match steps over bytes where we step over characters, and
		// spells negation '^' only: compare on ASCII without '!'.
		if name == "" || !isASCII(pattern) || !isASCII(name) || strings.Contains(pattern, "!") {
			return
		}
		want, err := reference(strings.Split(pattern, "/"), strings.Split(name, "/"))
		if err != nil {
			return
		}
		if got != want {
			t.Errorf("Compile(%q).Match(%q) = %v, reference says %v", pattern, name, got, want)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ name, pattern, path string }{
		{"suffix-deep", "**/*.go", "services/payments/internal/api/handler_test.go"},
		{"prefix", "helm/**", "helm/charts/api/templates/deployment.yaml"},
		{"miss", "**/openapi*.yaml", "services/payments/internal/api/handler.go"},
		{"wild", "**/*Test[s].java", "src/test/java/com/reloadly/PaymentTests.java"},
		{"literal-root", "bitbucket-pipelines.yml", "bitbucket-pipelines.yml"},
	}
	for _, c := range cases {
		g := MustCompile(c.pattern)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Match(c.path)
			}
		})
	}
}
