package rules

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/glob"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// TestMatchSetAgreesWithGlob: the shortcuts of matchSet give the same
// answer as glob.Match on the whole path, pattern by pattern.
func TestMatchSetAgreesWithGlob(t *testing.T) {
	patterns := append(append([]string{
		"helm/**", "Dockerfile", "bitbucket-pipelines.yml", "**/openapi*.yaml", "docs/adr/**",
		"**/auth/**", "**/*secret*", "**/Dockerfile", "**/*", "**/*.go", "**/a*b/**", "**/[tT]est/**",
		"src/**/*.go", "**/x/**/y", "**/**", "*", "*.go", "**/.env", "**/\\*.go", "**/?.go",
		"src/test/**", "**/src/test/**", "a/b", "**/a/b", "src/*/test/**", "**/te?t/**", "**/*", "**/*.",
	}, genSourcePaths...), genTestPaths...)
	paths := append([]string{
		"a.go", ".go", "x/a.go", "x/y/z_test.go", "Dockerfile", "deploy/Dockerfile", "helm", "helm/a.yaml",
		"test", "a/test", "a/test/b.py", "a/Test/b", "auth", "x/auth/y/z", "my_secret.txt", "a/b/app_secret.yaml",
		"*.go", "a/*.go", "q.go", "ab.go", "x/y", "x/q/y", ".env", "a/.env", "src/a/b/c.go", "aXb/c",
		"svc/src/test/java/ATest.java", "src/test", "src/test/x", "x/src/test", "a/b", "x/a/b", "a/b/c", "src", "src/testing/x", "x.", "web/src/App.test.tsx", "scripts/test_tool.py", "docs/adr/0001.md",
	}, genFiles...)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 200; i++ {
		paths = append(paths, randomPath(rng))
	}
	for _, p := range patterns {
		var notes []string
		m := compileGlobs([]string{p}, "paths", &notes)
		if len(notes) > 0 {
			t.Fatalf("%q: %v", p, notes)
		}
		g := glob.MustCompile(p)
		for _, path := range paths {
			if got, want := m.match(path), g.Match(path); got != want {
				t.Errorf("pattern %q path %q: matchSet %v, glob %v", p, path, got, want)
			}
		}
	}
}

func randomPath(rng *rand.Rand) string {
	segs := []string{"a", "test", "tests", "src", "auth", "x.go", "x_test.go", "App.tsx", "openapi.yaml", "Dockerfile", "helm", "b.java", "BTest.java"}
	n := 1 + rng.IntN(5)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = segs[rng.IntN(len(segs))]
	}
	return strings.Join(parts, "/")
}

func TestInvalidPatternIsNoted(t *testing.T) {
	b := newOrgBuilder()
	tl := b.role("technical-lead", "Technical lead", roles.ScopeTeam)
	b.enforce(tl, "Maintains infrastructure", &roles.Rule{Kind: roles.KindPathReview, Reviewers: 1, Approvals: 1, Paths: []string{"helm/[", "Dockerfile"}})
	b.team("core", "ws/core")
	org := b.build()
	d := Evaluate(org, PRSnapshot{Repository: "ws/core", State: model.PROpen, ChangedFiles: []string{"Dockerfile"}, Now: june})
	r := ruleByID(d, "technical-lead/path-review")
	wantEq(t, "triggered", r.Triggered, true)
	if !containsSubstring(r.Notes, `paths pattern "helm/[" is ignored`) {
		t.Errorf("notes %q do not mention the bad pattern", r.Notes)
	}
}

// TestMatchSetShortcuts: the common shapes take their shortcut (otherwise
// the agreement test above would only compare glob with itself).
func TestMatchSetShortcuts(t *testing.T) {
	tests := []struct {
		pattern string
		field   func(m *matchSet) int
	}{
		{"Dockerfile", func(m *matchSet) int { return len(m.exact) }},
		{"helm/**", func(m *matchSet) int { return len(m.prefixes) }},
		{"**/src/test/**", func(m *matchSet) int { return len(m.contains) }},
		{"**/*_test.go", func(m *matchSet) int { return len(m.suffixes) }},
		{"**/test_*.py", func(m *matchSet) int { return len(m.last) }},
		{"**/te?t/**", func(m *matchSet) int { return len(m.anySeg) }},
		{"src/**/*.go", func(m *matchSet) int { return len(m.full) }},
	}
	for _, tc := range tests {
		var notes []string
		m := compileGlobs([]string{tc.pattern}, "paths", &notes)
		if tc.field(&m) != 1 {
			t.Errorf("%q did not take its shortcut: %+v", tc.pattern, m)
		}
	}
	var notes []string
	for _, list := range [][]string{genSourcePaths, genTestPaths} {
		if m := compileGlobs(list, "paths", &notes); len(m.full) != 0 {
			t.Errorf("default globs fall back to full matching: %v", m.full)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefghi…"},
		{"ééééééééééé", 10, "ééééééééé…"},
		{"éé", 2, "éé"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
