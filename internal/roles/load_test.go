package roles

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden .err and .warn files")

// judged is the day absences are judged at in the testdata.
var judged = time.Date(2026, 12, 24, 9, 30, 0, 0, time.UTC)

func render(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs.\ngot:\n%s\nwant:\n%s", file, got, want)
	}
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("found %d bad files, want at least 12", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			org, err := ParseAt(filepath.ToSlash(file), data, judged)
			if err == nil {
				t.Fatalf("loaded without error (%d rules); want the errors in the .err file", len(org.Rules))
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T %v, want *Errors", err, err)
			}
			for i, p := range errs.Problems {
				if p.Warning {
					t.Errorf("problem %d is a warning: %s", i, p)
				}
				if i > 0 {
					q := errs.Problems[i-1]
					if p.Line < q.Line || p.Line == q.Line && p.Col < q.Col {
						t.Errorf("problems not sorted: %s after %s", p, q)
					}
				}
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".err", err.Error()+"\n")
		})
	}
}

func TestWarnFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/warn/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no warn files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			org, err := ParseAt(filepath.ToSlash(file), data, judged)
			if err != nil {
				t.Fatalf("want warnings only, got errors:\n%v", err)
			}
			if len(org.Warnings) == 0 {
				t.Fatal("no warnings")
			}
			for _, w := range org.Warnings {
				if !w.Warning {
					t.Errorf("warning without Warning set: %s", w)
				}
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".warn", render(org.Warnings))
		})
	}
}

func TestGoodFilesLoadCleanly(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../roles.yaml")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			org, err := LoadAt(file, judged)
			if err != nil {
				t.Fatalf("errors:\n%v", err)
			}
			if len(org.Warnings) > 0 {
				t.Errorf("warnings:\n%s", render(org.Warnings))
			}
			data, _ := os.ReadFile(file)
			sum := sha256.Sum256(data)
			if org.Hash != hex.EncodeToString(sum[:]) || org.Path != file {
				t.Errorf("Hash, Path = %s, %s; want the file's sha256 and %s", org.Hash, org.Path, file)
			}
			// Index ran: every person is found by account.
			for _, p := range org.People {
				if org.PersonByAccount(p.AccountID) != p {
					t.Errorf("PersonByAccount(%q) does not return %s", p.AccountID, p.ID)
				}
			}
		})
	}
}

func TestAnchorsAndNumbering(t *testing.T) {
	org, err := LoadAt("testdata/good/anchors.yaml", judged)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range org.Rules {
		ids = append(ids, r.ID)
	}
	want := []string{"technical-lead/path-review#1", "technical-lead/path-review#2", "technical-lead/code-review"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("rule ids %v, want %v", ids, want)
	}
	p2 := org.Rules[1]
	if !reflect.DeepEqual(p2.Paths, []string{"helm/**", "**/Dockerfile"}) || p2.Approvals != 1 || p2.Responsibility != "Oversees deployments" || p2.Line != 12 {
		t.Errorf("aliased rule: %+v", *p2)
	}
	cr := org.Rules[2]
	if cr.Reviewers != 2 || !cr.AppliesToTeam("payments") || cr.AppliesToTeam("checkout") {
		t.Errorf("code-review: %+v", *cr)
	}
	if got := org.Person("kofi").Roles; !reflect.DeepEqual(got, []string{"technical-lead"}) {
		t.Errorf("kofi's roles through an alias: %v", got)
	}
}

func TestCoverageAndAvailable(t *testing.T) {
	org, err := LoadAt("testdata/warn/coverage.yaml", judged)
	if err != nil {
		t.Fatal(err)
	}
	cov := org.Coverage()
	want := map[string][2]int{"technical-lead": {3, 0}, "chief-architect": {1, 0}, "qa-lead": {1, 0}, "cto": {1, 0}}
	if len(cov) != len(want) {
		t.Fatalf("%d roles covered, want %d", len(cov), len(want))
	}
	for _, c := range cov {
		if w := want[c.Role.ID]; c.Enforced != w[0] || c.Manual != w[1] {
			t.Errorf("%s: enforced %d manual %d, want %v", c.Role.ID, c.Enforced, c.Manual, w)
		}
	}
	review := org.Rules[0] // technical-lead/code-review
	names := func(ps []*Person) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	tests := []struct {
		team string
		now  time.Time
		want []string
	}{
		{"payments", judged, []string{"amara"}},
		{"payments", time.Date(2027, 1, 3, 0, 0, 0, 0, time.UTC), []string{"amara", "kofi"}},
		{"payments", time.Date(2027, 1, 2, 23, 59, 0, 0, time.UTC), []string{"amara"}},
		{"checkout", judged, nil},
		{"checkout", time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC), []string{"kofi"}},
		{"nowhere", judged, nil},
	}
	for _, tt := range tests {
		if got := names(org.Available(review, tt.team, tt.now)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Available(%s, %s, %s) = %v, want %v", review.ID, tt.team, tt.now.Format(time.RFC3339), got, tt.want)
		}
	}
	restricted := &Rule{ID: "x/code-review", Kind: KindCodeReview, Role: "technical-lead", Teams: []string{"checkout"}}
	if got := org.Available(restricted, "payments", time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); got != nil {
		t.Errorf("a rule restricted to checkout is available in payments: %v", names(got))
	}
}

func TestMatchAny(t *testing.T) {
	org, err := LoadAt("testdata/good/anchors.yaml", judged)
	if err != nil {
		t.Fatal(err)
	}
	paths := org.Rules[0].Paths
	tests := []struct {
		globs []string
		path  string
		want  bool
	}{
		{paths, "helm/values.yaml", true},
		{paths, "svc/Dockerfile", true},
		{paths, "svc/main.go", false},
		{[]string{"**/*.go"}, "svc/main.go", true}, // not one of the file's globs: compiled on the fly
		{[]string{"[bad", "**/*.go"}, "svc/main.go", true},
		{[]string{"[bad"}, "[bad", false},
		{nil, "a", false},
	}
	for _, tt := range tests {
		if got := org.MatchAny(tt.globs, tt.path); got != tt.want {
			t.Errorf("MatchAny(%q, %q) = %v, want %v", tt.globs, tt.path, got, tt.want)
		}
	}
}

func TestParseNowMatters(t *testing.T) {
	data, err := os.ReadFile("testdata/warn/coverage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	count := func(now time.Time) int {
		org, err := ParseAt("c.yaml", data, now)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, w := range org.Warnings {
			if strings.Contains(w.Msg, "is away today") {
				n++
			}
		}
		return n
	}
	if on, after := count(judged), count(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)); on == 0 || after != 0 {
		t.Errorf("away warnings: %d on %s, %d in February; want some, then none", on, judged.Format(time.DateOnly), after)
	}
}

func TestTooBig(t *testing.T) {
	data := bytes.Repeat([]byte("# padding\n"), MaxFileSize/10+1)
	_, err := Parse("big.yaml", data)
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.Problems) != 1 || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("Parse of %d bytes: %v", len(data), err)
	}
}

// TestAliasBomb: aliases multiply the values to check; the visit budget
// and the error cap keep the answer small.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nroles:\n  r0: {title: x}\nteams:\n  t: {}\npeople:\n  - &p {id: a, account_id: b, roles: [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("role" + strconv.Itoa(i))
	}
	b.WriteString("], teams: [t]}\n")
	b.WriteString(strings.Repeat("  - *p\n", 2000))
	_, err := Parse("bomb.yaml", []byte(b.String()))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v, want *Errors", err)
	}
	if n := len(errs.Problems); n != maxErrors+1 || !strings.Contains(errs.Problems[0].Msg, "more than 500 errors") {
		t.Errorf("%d problems, first %q; want %d with the cap's notice first", n, errs.Problems[0], maxErrors+1)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.yaml", "../../roles.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		org, err := ParseAt("f.yaml", data, judged)
		if (org == nil) == (err == nil) {
			t.Fatalf("ParseAt returned org %v and error %v; want exactly one", org != nil, err)
		}
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("error %T %v, want *Errors with problems", err, err)
			}
			return
		}
		// A loaded file is consistent: rule ids unique, references resolve.
		seen := make(map[string]bool)
		for _, r := range org.Rules {
			if seen[r.ID] {
				t.Fatalf("rule id %s twice", r.ID)
			}
			seen[r.ID] = true
			if org.Role(r.Role) == nil {
				t.Fatalf("rule %s of undefined role", r.ID)
			}
		}
		for _, p := range org.People {
			for _, role := range p.Roles {
				if org.Role(role) == nil {
					t.Fatalf("person %s holds undefined role %s", p.ID, role)
				}
			}
		}
	})
}
