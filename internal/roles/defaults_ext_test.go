package roles_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// judgedExt is the day absences are judged at in the testdata (judged, in
// the package's own tests).
var judgedExt = time.Date(2026, 12, 24, 9, 30, 0, 0, time.UTC)

// The defaults of every older kind, now declared with the kind in package
// rules and applied by the loader through the kind's spec.
func TestDefaults(t *testing.T) {
	org, err := roles.LoadAt("testdata/good/defaults.yaml", judgedExt)
	if err != nil {
		t.Fatal(err)
	}
	if org.Version != 1 || org.Organization != "Example" {
		t.Errorf("Version, Organization = %d, %q", org.Version, org.Organization)
	}
	byID := make(map[string]*roles.Rule)
	for _, r := range org.Rules {
		byID[r.ID] = r
	}
	tests := []struct {
		id   string
		want roles.Rule
	}{
		{"lead/code-review", roles.Rule{Kind: roles.KindCodeReview, Reviewers: 1, Approvals: 1, Line: 10, Col: 11}},
		{"lead/path-review", roles.Rule{Kind: roles.KindPathReview, Reviewers: 1, Approvals: 1, Paths: []string{"**/*.go"}, Line: 11, Col: 11}},
		{"lead/unit-tests", roles.Rule{Kind: roles.KindUnitTests, SourcePaths: rules.DefaultSourcePaths(), TestPaths: rules.DefaultTestPaths(), Line: 12, Col: 11}},
		{"lead/deploy-approval", roles.Rule{Kind: roles.KindDeployApproval, Environments: []string{"production"}, InvalidateOnPush: true, Line: 13, Col: 11}},
		{"lead/test-plan", roles.Rule{Kind: roles.KindTestPlan, IssueTypes: []string{"Epic"}, Line: 14, Col: 11}},
		{"lead/design-review", roles.Rule{Kind: roles.KindDesignReview, IssueTypes: []string{"Design"}, Line: 15, Col: 11}},
		{"lead/story-points", roles.Rule{Kind: roles.KindStoryPoints, IssueTypes: []string{"Story"}, UserStoryPattern: rules.DefaultUserStoryPattern, Line: 16, Col: 11}},
		{"lead/report", roles.Rule{Kind: roles.KindReport, Line: 17, Col: 11}},
	}
	if len(org.Rules) != len(tests) {
		t.Fatalf("%d rules, want %d", len(org.Rules), len(tests))
	}
	for i, tt := range tests {
		got := byID[tt.id]
		if got == nil {
			t.Errorf("no rule %s", tt.id)
			continue
		}
		if org.Rules[i] != got {
			t.Errorf("rule %d is %s, want %s (file order)", i, org.Rules[i].ID, tt.id)
		}
		want := tt.want
		want.ID, want.Role, want.Responsibility = tt.id, "lead", "Everything at once"
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.id, *got, want)
		}
	}
	role := org.Role("lead")
	if role.Scope != roles.ScopeTeam {
		t.Errorf("scope %q, want team by default", role.Scope)
	}
	if len(role.Responsibilities) != 3 || role.Responsibilities[0].Manual() || !role.Responsibilities[1].Manual() || !role.Responsibilities[2].Manual() {
		t.Errorf("responsibilities: want one enforced then two manual")
	}
	for i, resp := range role.Responsibilities {
		if resp.Index != i || resp.Role != "lead" {
			t.Errorf("responsibility %d: Index %d Role %q", i, resp.Index, resp.Role)
		}
	}
	if len(role.Responsibilities[0].Rules) != 8 {
		t.Errorf("first responsibility has %d rules, want 8", len(role.Responsibilities[0].Rules))
	}
}
