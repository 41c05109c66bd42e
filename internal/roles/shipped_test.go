package roles

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const shipped = "../../roles.yaml"

// handbookTitles maps the handbook's role names to the shipped role ids.
var handbookTitles = map[string]string{
	"Product owner":                  "product-owner",
	"Chief Technology Officer":       "cto",
	"Back-end engineer":              "back-end-engineer",
	"Front-end engineer":             "front-end-engineer",
	"Chief Architect":                "chief-architect",
	"QA Lead":                        "qa-lead",
	"Technical lead / Lead engineer": "technical-lead",
	"Developer Relations Engineer":   "developer-relations-engineer",
}

// handbook reads the roles table of the handbook from shared/seed, found by
// walking up from the package directory; ok is false when it is absent.
func handbook(t *testing.T) (roles []string, texts map[string][]string, ok bool) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for dir := wd; ; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(dir, "shared", "seed", "engineering-roles-and-responsibilities.md"))
		if err == nil {
			data = b
			break
		}
		if filepath.Dir(dir) == dir {
			return nil, nil, false
		}
	}
	texts = make(map[string][]string)
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 2 {
			continue
		}
		name := strings.TrimSpace(cells[0])
		if name == "" || name == "**Role**" || strings.Trim(name, "-") == "" {
			continue
		}
		for _, text := range strings.Split(cells[1], "<br></br>") {
			texts[name] = append(texts[name], strings.TrimSpace(text))
		}
		roles = append(roles, name)
	}
	return roles, texts, true
}

func TestShippedRolesFile(t *testing.T) {
	org, err := LoadAt(shipped, judged)
	if err != nil {
		t.Fatalf("the shipped roles.yaml does not load:\n%v", err)
	}
	if len(org.Warnings) > 0 {
		t.Errorf("the shipped roles.yaml has warnings:\n%s", render(org.Warnings))
	}
	wantIDs := []string{"product-owner", "cto", "back-end-engineer", "front-end-engineer",
		"chief-architect", "qa-lead", "technical-lead", "developer-relations-engineer"}
	var ids []string
	total := 0
	for _, r := range org.Roles {
		ids = append(ids, r.ID)
		total += len(r.Responsibilities)
	}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Errorf("roles %v, want %v", ids, wantIDs)
	}
	if total != 45 {
		t.Errorf("%d responsibilities, want the handbook's 45", total)
	}
	for id, scope := range map[string]Scope{"cto": ScopeOrganization, "chief-architect": ScopeOrganization,
		"qa-lead": ScopeOrganization, "technical-lead": ScopeTeam, "product-owner": ScopeTeam} {
		if r := org.Role(id); r == nil || r.Scope != scope {
			t.Errorf("role %s: want scope %s", id, scope)
		}
	}

	// The enforced kinds, per role, in file order.
	// (Kinds declared in package rules are named by their string.)
	backlog, analysis, requirements, breakGlass := Kind("backlog"), Kind("analysis"), Kind("requirements"), Kind("break-glass")
	wantKinds := map[string][]Kind{
		"product-owner":                {backlog, KindStoryPoints, analysis, KindDeployApproval, KindReport},
		"cto":                          {KindReport, breakGlass},
		"back-end-engineer":            {KindStoryPoints, KindUnitTests, requirements},
		"front-end-engineer":           {KindStoryPoints, KindUnitTests, requirements},
		"chief-architect":              {KindPathReview, KindDesignReview, KindPathReview},
		"qa-lead":                      {KindReport, KindPathReview, KindTestPlan},
		"technical-lead":               {KindCodeReview, KindPathReview, analysis, KindPathReview, KindPathReview},
		"developer-relations-engineer": {KindPathReview, KindPathReview, KindPathReview},
	}
	// Issue 14: at least 22 of the handbook's 45 lines enforced.
	enforced := 0
	for _, c := range org.Coverage() {
		enforced += c.Enforced
	}
	if enforced < 22 {
		t.Errorf("%d of %d responsibilities enforced, want at least 22", enforced, total)
	}
	for _, r := range org.Roles {
		var kinds []Kind
		for _, resp := range r.Responsibilities {
			for _, rule := range resp.Rules {
				kinds = append(kinds, rule.Kind)
			}
		}
		if !reflect.DeepEqual(kinds, wantKinds[r.ID]) {
			t.Errorf("role %s enforces %v, want %v", r.ID, kinds, wantKinds[r.ID])
		}
	}
	checks := []struct {
		rule, path string
		want       bool
	}{
		{"technical-lead/path-review#3", "services/api/Dockerfile", true},
		{"technical-lead/path-review#3", "helm/api/values.yaml", true},
		{"technical-lead/path-review#3", "bitbucket-pipelines.yml", true},
		{"technical-lead/path-review#3", "cmd/api/main.go", false},
		{"technical-lead/path-review#2", "internal/auth/token.go", true},
		{"developer-relations-engineer/path-review#2", "api/openapi.yaml", true},
		{"developer-relations-engineer/path-review#2", "proto/payments/v1/payments.proto", true},
		{"developer-relations-engineer/path-review#1", "sdk/java/src/Client.java", true},
		{"developer-relations-engineer/path-review#1", "services/api/main.go", false},
		{"developer-relations-engineer/path-review#3", "docs/guides/top-up.md", true},
		{"qa-lead/path-review", "e2e/cypress/support/commands.ts", true},
		{"qa-lead/path-review", "web/playwright.config.ts", true},
		{"qa-lead/path-review", "web/src/app.ts", false},
		{"chief-architect/path-review#1", "go.mod", true},
		{"chief-architect/path-review#1", "web/package.json", true},
		{"chief-architect/path-review#2", "docs/adr/0007-queues.md", true},
	}
	for _, c := range checks {
		var rule *Rule
		for _, r := range org.Rules {
			if r.ID == c.rule {
				rule = r
			}
		}
		if rule == nil {
			t.Errorf("no rule %s", c.rule)
			continue
		}
		if got := org.MatchAny(rule.Paths, c.path); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.rule, c.path, got, c.want)
		}
	}
	if deploy := org.RulesOfKind(KindDeployApproval); len(deploy) != 1 || deploy[0].Role != "product-owner" ||
		!reflect.DeepEqual(deploy[0].Environments, []string{"production"}) {
		t.Errorf("deploy-approval rules: want product-owner on production only")
	}

	// Each team: two technical leads, one product owner, engineers of
	// both kinds; everyone's account id distinct; one person holds two roles.
	for _, team := range org.Teams {
		if n := len(org.Holders("technical-lead", team.ID)); n < 2 {
			t.Errorf("team %s has %d technical leads, want at least 2", team.ID, n)
		}
		if n := len(org.Holders("product-owner", team.ID)); n != 1 {
			t.Errorf("team %s has %d product owners, want 1", team.ID, n)
		}
		for _, role := range []string{"back-end-engineer", "front-end-engineer"} {
			if len(org.Holders(role, team.ID)) == 0 {
				t.Errorf("team %s has no %s", team.ID, role)
			}
		}
	}
	twoRoles := false
	for _, p := range org.People {
		twoRoles = twoRoles || len(p.Roles) > 1
	}
	if !twoRoles {
		t.Error("nobody holds two roles")
	}
	if kofi := org.Person("kofi"); kofi == nil {
		t.Error("no kofi")
	} else if away, until := kofi.AwayAt(judged); !away || until.Format("2006-01-02") != "2027-01-02" {
		t.Errorf("kofi away at %s: %v until %s", judged, away, until)
	}

	// The texts, verbatim from the handbook.
	names, texts, ok := handbook(t)
	if !ok {
		t.Skip("shared/seed/engineering-roles-and-responsibilities.md not found above the package; texts not compared")
	}
	if len(names) != len(org.Roles) {
		t.Fatalf("handbook has %d roles, roles.yaml %d", len(names), len(org.Roles))
	}
	for i, name := range names {
		r := org.Roles[i]
		if handbookTitles[name] != r.ID || r.Title != name {
			t.Errorf("role %d: %s %q, want the handbook's %q", i, r.ID, r.Title, name)
			continue
		}
		var got []string
		for _, resp := range r.Responsibilities {
			got = append(got, resp.Text)
		}
		if !reflect.DeepEqual(got, texts[name]) {
			t.Errorf("role %s responsibilities differ from the handbook:\n got %q\nwant %q", r.ID, got, texts[name])
		}
	}
}
