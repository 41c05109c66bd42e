package rules

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
)

// benchSnapshot is a pull request of 20 changed files touching every rule
// kind, in a team of the generated organisation.
func benchSnapshot(b *testing.B, rng *rand.Rand, e *Engine) PRSnapshot {
	files := []string{
		"helm/values.yaml", "api/openapi.yaml", "internal/auth/token.go", "README.md", "Dockerfile",
	}
	for i := len(files); i < 20; i++ {
		files = append(files, fmt.Sprintf("services/ledger/internal/store/pkg%02d/file%02d.go", i%4, i))
	}
	load := map[string]int{}
	for _, p := range e.org.People {
		load[p.AccountID] = rng.IntN(6)
	}
	author := e.org.Holders("backend-engineer", "team07")[0].AccountID
	s := PRSnapshot{
		Repository:   "ws/team07-repo1",
		Number:       4242,
		Author:       model.Actor{AccountID: author},
		State:        model.PROpen,
		SourceCommit: "0123456789abcdef0123456789abcdef01234567",
		ChangedFiles: files,
		Approvals:    []model.Approval{approved(author), approved(e.org.People[3].AccountID)},
		Load:         load,
		Now:          genNow,
	}
	d := e.Evaluate(s)
	if d.Team != "team07" || len(d.Request) == 0 || len(d.Rules) != 5 {
		b.Fatalf("benchmark pull request does not exercise the engine: %+v", d)
	}
	for _, r := range d.Rules {
		if !r.Triggered {
			b.Fatalf("rule %s not triggered: %s", r.RuleID, r.Reason)
		}
	}
	return s
}

// BenchmarkEvaluate: 500 people, 50 teams of ~10 (2–3 leads), 2 repositories
// each; code-review, 3 path-reviews and unit-tests (default globs); a pull
// request of 20 files.
func BenchmarkEvaluate(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	org := genOrg(rng, genSpec{people: 500, teams: 50, reposPerTeam: 2, leadsPerTeam: [2]int{2, 3}, away: 0.05})
	e := Compile(org)
	s := benchSnapshot(b, rng, e)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = e.Evaluate(s)
	}
}

// BenchmarkCompile is the per-Org cost paid once per roles.yaml load.
func BenchmarkCompile(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	org := genOrg(rng, genSpec{people: 500, teams: 50, reposPerTeam: 2, leadsPerTeam: [2]int{2, 3}, away: 0.05})
	b.ReportAllocs()
	for b.Loop() {
		_ = Compile(org)
	}
}
