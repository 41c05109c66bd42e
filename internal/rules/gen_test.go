package rules

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Default unit-tests globs, as the roles loader fills them in.
var (
	genSourcePaths = DefaultSourcePaths()
	genTestPaths   = DefaultTestPaths()
)

// genSpec shapes a generated organisation.
type genSpec struct {
	people, teams, reposPerTeam int
	leadsPerTeam                [2]int  // min, max technical leads per team
	noAccount, away             float64 // share of people without account id, away at genNow
	random                      bool    // random rule settings (property tests)
}

var genNow = time.Date(2026, 9, 15, 10, 0, 0, 0, time.UTC)

// genOrg builds an organisation like the contract's: technical leads
// (code-review, infrastructure path-review), a chief architect (API
// path-review), a security lead (path-review), engineers (unit-tests).
func genOrg(rng *rand.Rand, g genSpec) *roles.Org {
	b := newOrgBuilder()
	reviewers := func(def int) int {
		if g.random {
			return rng.IntN(3)
		}
		return def
	}
	approvals := func(def int) int {
		if g.random {
			return rng.IntN(3)
		}
		return def
	}
	tl := b.role("technical-lead", "Technical lead / Lead engineer", roles.ScopeTeam)
	b.enforce(tl, "Reviews code written by the engineers in the team",
		&roles.Rule{Kind: roles.KindCodeReview, Reviewers: reviewers(1), Approvals: approvals(1)})
	b.enforce(tl, "Maintains and manages infrastructure and tools",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: reviewers(1), Approvals: approvals(1),
			Paths: []string{"helm/**", "Dockerfile", "bitbucket-pipelines.yml", "terraform/**/*.tf"}})
	ca := b.role("chief-architect", "Chief Architect", roles.ScopeOrganization)
	b.enforce(ca, "Establishes the overall architecture for new products and services",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: reviewers(1), Approvals: approvals(1),
			Paths: []string{"**/openapi*.yaml", "**/*.proto", "docs/adr/**"}})
	sec := b.role("security-lead", "Security lead", roles.ScopeTeam)
	b.enforce(sec, "Reviews end-to-end security needs for every software product",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: reviewers(1), Approvals: approvals(0),
			Paths: []string{"**/auth/**", "**/crypto/**", "**/*secret*"}})
	be := b.role("backend-engineer", "Back-end engineer", roles.ScopeTeam)
	b.enforce(be, "Writes unit tests to test the behavior of each task built",
		&roles.Rule{Kind: roles.KindUnitTests, SourcePaths: genSourcePaths, TestPaths: genTestPaths})

	for t := 0; t < g.teams; t++ {
		var repos []string
		for r := 0; r < g.reposPerTeam; r++ {
			repos = append(repos, fmt.Sprintf("ws/team%02d-repo%d", t, r))
		}
		b.team(fmt.Sprintf("team%02d", t), repos...)
	}
	leads := make([]int, g.teams)
	for t := range leads {
		leads[t] = g.leadsPerTeam[0] + rng.IntN(g.leadsPerTeam[1]-g.leadsPerTeam[0]+1)
	}
	for i := 0; i < g.people; i++ {
		team := fmt.Sprintf("team%02d", i%g.teams)
		p := &roles.Person{ID: fmt.Sprintf("p%03d", i), Name: fmt.Sprintf("Person %03d", i),
			AccountID: fmt.Sprintf("712020:%04x", i), Teams: []string{team}}
		switch {
		case i/g.teams < leads[i%g.teams]:
			p.Roles = []string{"technical-lead"}
		case i/g.teams == leads[i%g.teams]:
			p.Roles = []string{"security-lead", "backend-engineer"}
		default:
			p.Roles = []string{"backend-engineer"}
		}
		if i%97 == 5 {
			p.Roles = append(p.Roles, "chief-architect")
		}
		if g.random && rng.IntN(4) == 0 {
			p.Roles = append(p.Roles, "technical-lead") // extra holders, sometimes twice
		}
		if g.random && rng.IntN(5) == 0 {
			p.Teams = append(p.Teams, fmt.Sprintf("team%02d", rng.IntN(g.teams)))
		}
		if rng.Float64() < g.noAccount {
			p.AccountID = ""
		}
		if rng.Float64() < g.away {
			from := genNow.Truncate(24*time.Hour).AddDate(0, 0, -rng.IntN(5))
			p.Away = []roles.Period{{From: from, To: from.AddDate(0, 0, rng.IntN(10))}}
		}
		b.person(p)
	}
	return b.build()
}

var genFiles = []string{
	"cmd/server/main.go", "internal/pay/charge.go", "internal/pay/charge_test.go", "internal/auth/token.go",
	"api/openapi.yaml", "api/v1/pay.proto", "helm/values.yaml", "helm/templates/deploy.yaml", "Dockerfile",
	"bitbucket-pipelines.yml", "terraform/modules/db/main.tf", "web/src/App.tsx", "web/src/App.test.tsx",
	"svc/src/main/java/com/x/Pay.java", "svc/src/test/java/com/x/PayTest.java", "docs/adr/0001-record.md",
	"README.md", "scripts/test_tool.py", "config/app_secret.yaml", "internal/crypto/aes.go",
	"services/ledger/internal/store/postgres/queries.go", "web/src/components/checkout/Basket.jsx",
}

// genSnapshot builds a random pull request against the organisation.
func genSnapshot(rng *rand.Rand, org *roles.Org) PRSnapshot {
	repos := org.Repositories()
	s := PRSnapshot{
		Repository:   repos[rng.IntN(len(repos))],
		Number:       1 + rng.IntN(500),
		SourceCommit: fmt.Sprintf("%040x", rng.Uint64()),
		State:        []model.PRState{model.PROpen, model.PROpen, model.PROpen, model.PRMerged, model.PRDeclined}[rng.IntN(5)],
		Draft:        rng.IntN(5) == 0,
		AssignDrafts: rng.IntN(2) == 0,
		Load:         map[string]int{},
		Now:          genNow.Add(time.Duration(rng.IntN(72)-36) * time.Hour),
	}
	if rng.IntN(10) == 0 {
		s.Repository = "ws/unknown"
	}
	pick := func() string {
		if rng.IntN(8) == 0 {
			return "712020:stranger"
		}
		return org.People[rng.IntN(len(org.People))].AccountID
	}
	s.Author = model.Actor{AccountID: pick()}
	for i, n := 0, rng.IntN(8); i < n; i++ {
		s.ChangedFiles = append(s.ChangedFiles, genFiles[rng.IntN(len(genFiles))])
	}
	for i, n := 0, rng.IntN(4); i < n; i++ {
		s.Reviewers = append(s.Reviewers, pick())
	}
	for i, n := 0, rng.IntN(5); i < n; i++ {
		st := model.ReviewApproved
		if rng.IntN(4) == 0 {
			st = model.ReviewChangesRequested
		}
		s.Approvals = append(s.Approvals, model.Approval{AccountID: pick(), State: st})
	}
	for _, p := range org.People {
		if rng.IntN(2) == 0 {
			s.Load[p.AccountID] = rng.IntN(4)
		}
	}
	return s
}
