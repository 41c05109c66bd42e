package rules

import (
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// contractYAML is the roles.yaml of CONTRACT.md, with a second lead and an
// engineer so that someone can be asked.
const contractYAML = `version: 1
organization: Reloadly

roles:
  technical-lead:
    title: Technical lead / Lead engineer
    responsibilities:
      - text: Reviews code written by the engineers in the team
        enforce:
          code-review: {reviewers: 1, approvals: 1}
      - text: Maintains and manages infrastructure and tools
        enforce:
          path-review: {paths: ["helm/**", "Dockerfile", "bitbucket-pipelines.yml"], approvals: 1}
      - Documents best practices
  backend-engineer:
    title: Back-end engineer
    responsibilities:
      - text: Writes unit tests to test the behavior of each task built
        enforce:
          unit-tests: {}
  product-owner:
    title: Product owner
    responsibilities:
      - text: Performs and oversees production deployments
        enforce:
          deploy-approval: {environments: [production]}

teams:
  payments:
    repositories: [reloadly/payments-api, reloadly/payments-web]
    jira_projects: [PAY]

people:
  - id: amara
    name: Amara Okafor
    account_id: "712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11"
    roles: [technical-lead, product-owner]
    teams: [payments]
    away:
      - {from: 2026-12-21, to: 2027-01-02}
  - id: kofi
    name: Kofi Mensah
    account_id: "712020:kofi"
    roles: [technical-lead]
    teams: [payments]
  - id: lena
    name: Lena Berg
    account_id: "712020:lena"
    roles: [backend-engineer]
    teams: [payments]
`

// TestEvaluateParsedRoles runs the engine on what the roles loader
// produces (rule ids, default globs), not only on hand-built orgs.
func TestEvaluateParsedRoles(t *testing.T) {
	org, err := roles.ParseAt("roles.yaml", []byte(contractYAML), june)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	s := PRSnapshot{
		Repository: "Reloadly/Payments-Web", Number: 7, State: model.PROpen,
		Author:       model.Actor{AccountID: "712020:lena"},
		ChangedFiles: []string{"src/pay/Charge.java", "helm/values.yaml"},
		Load:         map[string]int{"712020:kofi": 3},
		Now:          newYear,
	}
	d := Evaluate(org, s)
	wantEq(t, "team", d.Team, "payments")
	var ids []string
	for _, r := range d.Rules {
		ids = append(ids, r.RuleID)
		if !r.Triggered {
			t.Errorf("rule %s not triggered: %s", r.RuleID, r.Reason)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("rules = %v, want code-review, path-review and unit-tests", ids)
	}
	// Amara is less loaded but away: Kofi is asked, once, for both rules.
	wantEq(t, "request", requestIDs(d), []string{"712020:kofi"})
	wantStatus(t, d, StatusTests, StateFailed, "source changed without tests: src/pay/Charge.java")

	s.ChangedFiles = append(s.ChangedFiles, "src/pay/ChargeTest.java")
	wantStatus(t, Evaluate(org, s), StatusTests, StateSuccessful, "tests changed with the source")

	res, err := DeployPolicy(org, "reloadly/payments-api", "production", []string{"712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11"}, newYear)
	if err != nil {
		t.Fatal(err)
	}
	wantEq(t, "gated", res.Gated, true)
	wantEq(t, "eligible", len(res.Eligible), 0)
	wantEq(t, "excluded", res.Excluded, []string{"Amara Okafor authored a pull request that brought this commit"})
	wantEq(t, "environments", Environments(org, "payments"), []string{"production"})
}
