package rules

import (
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Account ids of the test organisation.
const (
	accMei   = "712020:mei"
	accKofi  = "712020:kofi"
	accAmara = "712020:amara"
	accRavi  = "712020:ravi"
	accLena  = "712020:lena"
	accOmar  = "712020:omar"
	accTom   = "712020:tom"
	accQA    = "712020:qa"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// orgBuilder assembles a roles.Org by hand, the way the loader would.
type orgBuilder struct{ org *roles.Org }

func newOrgBuilder() *orgBuilder {
	return &orgBuilder{org: &roles.Org{Version: 1, Organization: "Test"}}
}

func (b *orgBuilder) role(id, title string, scope roles.Scope) *roles.Role {
	r := &roles.Role{ID: id, Title: title, Scope: scope}
	b.org.Roles = append(b.org.Roles, r)
	return r
}

// enforce adds a responsibility to the role enforced by the rule, filling
// the rule's id, role and text.
func (b *orgBuilder) enforce(role *roles.Role, text string, rule *roles.Rule) *roles.Rule {
	resp := &roles.Responsibility{Role: role.ID, Index: len(role.Responsibilities), Text: text}
	rule.Role = role.ID
	rule.Responsibility = text
	if rule.ID == "" {
		rule.ID = role.ID + "/" + string(rule.Kind)
	}
	resp.Rules = []*roles.Rule{rule}
	role.Responsibilities = append(role.Responsibilities, resp)
	b.org.Rules = append(b.org.Rules, rule)
	return rule
}

func (b *orgBuilder) team(id string, repos ...string) {
	b.org.Teams = append(b.org.Teams, &roles.Team{ID: id, Repositories: repos})
}

func (b *orgBuilder) person(p *roles.Person) { b.org.People = append(b.org.People, p) }

func (b *orgBuilder) build() *roles.Org {
	b.org.Index()
	return b.org
}

// testOrg is a small organisation with every pull-request rule kind:
//
//	checkout: leads Mei, Kofi (away over new year), Amara (also product
//	owner), one lead without an account id; engineer Lena; owner Omar.
//	payments: a single lead, Tom.
//	organisation-wide: Ravi (chief architect), Quinn (QA lead).
func testOrg() *roles.Org {
	b := newOrgBuilder()
	tl := b.role("technical-lead", "Technical lead / Lead engineer", roles.ScopeTeam)
	b.enforce(tl, "Reviews code written by the engineers in the team",
		&roles.Rule{Kind: roles.KindCodeReview, Reviewers: 1, Approvals: 1})
	b.enforce(tl, "Maintains and manages infrastructure and tools",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: 1, Approvals: 1,
			Paths: []string{"helm/**", "Dockerfile", "bitbucket-pipelines.yml"}})
	ca := b.role("chief-architect", "Chief Architect", roles.ScopeOrganization)
	b.enforce(ca, "Establishes the overall architecture for new products and services",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: 1, Approvals: 1,
			Paths: []string{"**/openapi*.yaml", "docs/adr/**"}})
	be := b.role("backend-engineer", "Back-end engineer", roles.ScopeTeam)
	b.enforce(be, "Writes unit tests to test the behavior of each task built",
		&roles.Rule{Kind: roles.KindUnitTests,
			SourcePaths: []string{"**/*.go", "**/*.java"},
			TestPaths:   []string{"**/*_test.go", "**/src/test/**"}})
	qa := b.role("qa-lead", "QA Lead", roles.ScopeOrganization)
	b.enforce(qa, "Creates automation tasks for regression testing",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: 1, Approvals: 0,
			Paths: []string{"tests/e2e/**"}, Teams: []string{"checkout"}})
	po := b.role("product-owner", "Product owner", roles.ScopeTeam)
	b.enforce(po, "Performs and oversees production deployments",
		&roles.Rule{Kind: roles.KindDeployApproval, Environments: []string{"production", "sandbox"}})

	b.team("checkout", "reloadly/checkout-api", "reloadly/checkout-web")
	b.team("payments", "reloadly/payments-api")

	b.person(&roles.Person{ID: "mei", Name: "Mei Chen", AccountID: accMei, Roles: []string{"technical-lead"}, Teams: []string{"checkout"}})
	b.person(&roles.Person{ID: "kofi", Name: "Kofi Mensah", AccountID: accKofi, Roles: []string{"technical-lead"}, Teams: []string{"checkout"},
		Away: []roles.Period{{From: day("2026-12-21"), To: day("2027-01-02")}}})
	b.person(&roles.Person{ID: "amara", Name: "Amara Okafor", AccountID: accAmara, Roles: []string{"technical-lead", "product-owner"}, Teams: []string{"checkout"}})
	b.person(&roles.Person{ID: "ghost", Name: "Gus Host", Roles: []string{"technical-lead"}, Teams: []string{"checkout"}})
	b.person(&roles.Person{ID: "lena", Name: "Lena Berg", AccountID: accLena, Roles: []string{"backend-engineer"}, Teams: []string{"checkout"}})
	b.person(&roles.Person{ID: "omar", Name: "Omar Haddad", AccountID: accOmar, Roles: []string{"product-owner"}, Teams: []string{"checkout"},
		Away: []roles.Period{{From: day("2026-06-01"), To: day("2026-06-20")}}})
	b.person(&roles.Person{ID: "tom", Name: "Tom Weber", AccountID: accTom, Roles: []string{"technical-lead"}, Teams: []string{"payments"}})
	b.person(&roles.Person{ID: "ravi", Name: "Ravi Patel", AccountID: accRavi, Roles: []string{"chief-architect"}})
	b.person(&roles.Person{ID: "quinn", Name: "Quinn Adams", AccountID: accQA, Roles: []string{"qa-lead"}})
	return b.build()
}

// june is an ordinary working day: only Omar is away.
var june = time.Date(2026, 6, 10, 9, 30, 0, 0, time.UTC)

// baseSnapshot is an open pull request by Lena in checkout-api changing one
// Go file and its test.
func baseSnapshot() PRSnapshot {
	return PRSnapshot{
		Repository:   "reloadly/checkout-api",
		Number:       12,
		Title:        "Add refunds",
		Author:       model.Actor{AccountID: accLena, DisplayName: "Lena Berg"},
		State:        model.PROpen,
		SourceCommit: "0123456789abcdef0123456789abcdef01234567",
		ChangedFiles: []string{"internal/refund/refund.go", "internal/refund/refund_test.go"},
		Load:         map[string]int{accMei: 1, accKofi: 3, accAmara: 5, accRavi: 2, accQA: 0},
		Now:          june,
	}
}

func ruleByID(d Decision, id string) *RuleResult {
	for i := range d.Rules {
		if d.Rules[i].RuleID == id {
			return &d.Rules[i]
		}
	}
	return nil
}

func statusByKey(d Decision, key string) *Status {
	for i := range d.Statuses {
		if d.Statuses[i].Key == key {
			return &d.Statuses[i]
		}
	}
	return nil
}

func requestIDs(d Decision) []string {
	out := make([]string, len(d.Request))
	for i, p := range d.Request {
		out[i] = p.AccountID
	}
	return out
}
