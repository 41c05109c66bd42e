package gate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// policyFrom is testPolicy over another roles file.
func policyFrom(t *testing.T, yml string) Policy {
	t.Helper()
	org, err := roles.ParseAt("roles.yaml", []byte(yml), t0)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := rules.DeployPolicy(org, testRepo, "production", nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Deploy: dr, Glass: rules.BreakGlassOf(org, dr.Team, "production")}
	p.BreakGlass = p.Glass.Holders
	return p
}

// The gate reads the break-glass role from roles.yaml: renaming the CTO
// role keeps break-glass working, and a file without a break-glass rule
// leaves nobody able to break the glass (no hidden role id in the code).
func TestBreakGlassRoleComesFromRolesFile(t *testing.T) {
	later := t0.Add(time.Hour)
	comment := func(id, who, body string, at time.Time) Input {
		return Input{Kind: InComment, At: at, Account: who, PR: 7, CommentID: id, Text: body}
	}
	start := State{Phase: store.GatePending, Environment: "production", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), PRs: []int{7}, Notified: true}
	renamed := strings.ReplaceAll(orgYAML, "cto", "head-of-engineering")
	if strings.Contains(renamed, "cto") {
		t.Fatal("the rename left a cto behind")
	}
	p := policyFrom(t, renamed)
	if p.Glass.Role != "head-of-engineering" || !slices.Contains(p.BreakGlass, "acc-raj") {
		t.Fatalf("break-glass after the rename: %+v", p.Glass)
	}
	st, _ := Apply(start, comment("c1", "acc-raj", "/break-glass production payments are down", later), p)
	if st.Phase != store.GateApproved || !st.BreakGlass {
		t.Errorf("renamed role: %s glass=%v, want approved by break-glass (history %+v)", st.Phase, st.BreakGlass, st.History)
	}

	without := strings.Replace(orgYAML, "          break-glass: {environments: [production], follow_up: product-owner}\n", "          report: {}\n", 1)
	if without == orgYAML {
		t.Fatal("the test file lost its break-glass rule")
	}
	p = policyFrom(t, without)
	st, _ = Apply(start, comment("c1", "acc-raj", "/break-glass production payments are down", later), p)
	if st.Phase != store.GatePending || !slices.ContainsFunc(st.History, func(e Entry) bool { return strings.Contains(e.Detail, "no break-glass rule") }) {
		t.Errorf("without a break-glass rule: %s, history %+v; want refused naming the missing rule", st.Phase, st.History)
	}
}
