package rules

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// kindsYAML holds one rule of each kind of the registry's Jira kinds and
// break-glass; %s in the backlog line is replaced by the tests.
const kindsYAML = `version: 1
organization: Test
roles:
  product-owner:
    title: Product owner
    responsibilities:
      - text: Manages and prioritizes the backlog
        enforce:
          backlog: {untriaged_days: 14}
      - text: Performs technical analysis for complex problems
        enforce:
          analysis: {points: 8, labels: [complex], assign_to: technical-lead}
  technical-lead:
    title: Technical lead
    responsibilities:
      - text: Performs technical analysis for complex problems
        enforce:
          analysis: {}
  engineer:
    title: Back-end engineer
    responsibilities:
      - text: Creates and defines product requirements for each user story
        enforce:
          requirements: {}
  cto:
    title: Chief Technology Officer
    scope: organization
    responsibilities:
      - text: Owns the entire engineering process
        enforce:
          break-glass: {environments: [production], follow_up: product-owner}
teams:
  payments:
    repositories: [reloadly/payments-api]
    jira_projects: [PAY]
people:
  - {id: po, name: Pat, account_id: "acc-po", roles: [product-owner], teams: [payments]}
  - {id: tl1, name: Tia, account_id: "acc-tl1", roles: [technical-lead], teams: [payments]}
  - {id: tl2, name: Uma, account_id: "acc-tl2", roles: [technical-lead], teams: [payments], away: [{from: 2026-11-20, to: 2026-11-30}]}
  - {id: tl3, name: Vic, account_id: "acc-tl3", roles: [technical-lead], teams: [payments]}
  - {id: eng, name: Eli, account_id: "acc-eng", roles: [engineer], teams: [payments]}
  - {id: raj, name: Raj, account_id: "acc-raj", roles: [cto]}
`

var kindsNow = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func kindsOrg(t *testing.T, yml string) *roles.Org {
	t.Helper()
	org, err := roles.ParseAt("roles.yaml", []byte(yml), kindsNow)
	if err != nil {
		t.Fatal(err)
	}
	return org
}

// Bad settings of the registered kinds are FILE:LINE:COL errors, and the
// file does not load.
func TestRegisteredKindSettingsErrors(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown setting", "backlog: {untriaged_days: 14}", "backlog: {untriaged_dayz: 14}",
			`roles.yaml:9:21: unknown key "untriaged_dayz" in role product-owner: backlog; allowed keys: issue_types, bug_types, untriaged_days, teams`},
		{"threshold out of range", "backlog: {untriaged_days: 14}", "backlog: {untriaged_days: 400}",
			"roles.yaml:9:37: role product-owner: backlog: untriaged_days must be at most 365, got 400"},
		{"threshold below range", "analysis: {}", "analysis: {points: 0}",
			"roles.yaml:18:30: role technical-lead: analysis: points must be at least 1, got 0"},
		{"pattern that does not compile", "requirements: {}", "requirements: {acceptance_pattern: \"(unclosed\"}",
			"roles.yaml:24:46: role engineer: requirements: acceptance_pattern is not a valid regular expression (Go syntax)"},
		{"break-glass follow_up names an unknown role", "follow_up: product-owner}", "follow_up: nobody}",
			`roles.yaml:31:64: role cto: break-glass: follow_up: undefined role "nobody"; defined roles: cto, engineer, product-owner, technical-lead`},
		{"break-glass without environments", "break-glass: {environments: [production], follow_up: product-owner}", "break-glass: {follow_up: product-owner}",
			"roles.yaml:31:11: role cto: break-glass: missing environments"},
		{"analysis assign_to an unknown role", "assign_to: technical-lead}", "assign_to: tech-lead}",
			`roles.yaml:12:63: role product-owner: analysis: assign_to: undefined role "tech-lead"`},
		{"break-glass is organisation-only? no: teams must exist", "follow_up: product-owner}", "follow_up: product-owner, teams: [nope]}",
			`role cto: break-glass: undefined team "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := strings.Replace(kindsYAML, tt.from, tt.to, 1)
			if yml == kindsYAML {
				t.Fatalf("%q not in the test file", tt.from)
			}
			_, err := roles.ParseAt("roles.yaml", []byte(yml), kindsNow)
			if err == nil {
				t.Fatalf("loaded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestBreakGlassOf(t *testing.T) {
	org := kindsOrg(t, kindsYAML)
	bg := BreakGlassOf(org, "payments", "Production")
	if bg.Role != "cto" || bg.FollowUp != "product-owner" || bg.RuleID != "cto/break-glass" || len(bg.Holders) != 1 || bg.Holders[0] != "acc-raj" {
		t.Errorf("production: %+v", bg)
	}
	if bg := BreakGlassOf(org, "payments", "staging"); bg.Role != "" || len(bg.Holders) != 0 {
		t.Errorf("staging is covered by no rule, got %+v", bg)
	}
}

func issueRule(d IssueDecision, id string) (IssueRuleResult, bool) {
	for _, r := range d.Rules {
		if r.RuleID == id {
			return r, true
		}
	}
	return IssueRuleResult{}, false
}

func pts(v float64) *float64 { return &v }

func TestBacklogKind(t *testing.T) {
	org := kindsOrg(t, kindsYAML)
	old := kindsNow.Add(-20 * 24 * time.Hour)
	recent := kindsNow.Add(-3 * 24 * time.Hour)
	tests := []struct {
		name      string
		is        model.Issue
		noField   bool
		violation bool
		reason    string
	}{
		{"prioritised story", model.Issue{Type: "Story", Priority: "High", StatusCategory: "new", Created: old}, false, false, "prioritised and triaged"},
		{"story without priority", model.Issue{Type: "Story", StatusCategory: "new", Created: recent}, false, true, "has no priority"},
		{"bug to do for 20 days", model.Issue{Type: "Bug", Priority: "Medium", Status: "To Do", StatusCategory: "new", Created: old}, false, true, "20 days after it was reported (more than 14)"},
		{"bug to do for 3 days", model.Issue{Type: "Bug", Priority: "Medium", StatusCategory: "new", Created: recent}, false, false, "prioritised and triaged"},
		{"bug in progress for 20 days is triaged", model.Issue{Type: "Bug", Priority: "Medium", StatusCategory: "indeterminate", Created: old}, false, false, "prioritised and triaged"},
		{"done issue without priority", model.Issue{Type: "Story", StatusCategory: "done", StatusDone: true, Created: old}, false, false, "is done"},
		{"site without priority: no priority finding", model.Issue{Type: "Story", StatusCategory: "new", Created: recent}, true, false, "prioritised and triaged"},
		{"site without priority: untriaged bug still found", model.Issue{Type: "Bug", StatusCategory: "new", Created: old}, true, true, "still"},
		{"epic is not looked at", model.Issue{Type: "Epic", StatusCategory: "new", Created: old}, false, false, "not one of Story, Task, Bug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.is.Key, tt.is.Project = "PAY-1", "PAY"
			d := EvaluateIssue(org, IssueSnapshot{Issue: tt.is, PriorityField: !tt.noField, Now: kindsNow})
			r, ok := issueRule(d, "product-owner/backlog")
			if !ok {
				t.Fatalf("no backlog result: %+v", d)
			}
			if r.Violation != tt.violation || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("violation %v reason %q; want %v containing %q", r.Violation, r.Reason, tt.violation, tt.reason)
			}
			if tt.violation && (r.FindingKey != "backlog:PAY-1" || !strings.Contains(r.Comment, "Product owner")) {
				t.Errorf("finding key %q, comment %q", r.FindingKey, r.Comment)
			}
			if tt.noField && !strings.Contains(strings.Join(r.Notes, ";"), "no priority field") {
				t.Errorf("notes %v lack the missing field", r.Notes)
			}
		})
	}
}

func TestAnalysisKind(t *testing.T) {
	org := kindsOrg(t, kindsYAML)
	tests := []struct {
		name   string
		is     model.Issue
		needs  bool
		reason string
	}{
		{"small story", model.Issue{Type: "Story", StoryPoints: pts(3)}, false, "is not complex"},
		{"unestimated story", model.Issue{Type: "Story"}, false, "is not complex"},
		{"story at the threshold", model.Issue{Type: "Story", StoryPoints: pts(8)}, true, "estimated at 8 points (at least 8)"},
		{"story labelled complex", model.Issue{Type: "Story", Labels: []string{"Complex"}}, true, "labelled Complex"},
		{"existing analysis sub-task", model.Issue{Type: "Story", StoryPoints: pts(13),
			Subtasks: []model.IssueRef{{Key: "PAY-9", Summary: "analysis: the thing", Status: "In Progress"}}}, false, "analysis PAY-9 exists"},
		{"bug is not looked at", model.Issue{Type: "Bug", StoryPoints: pts(13)}, false, "not one of Story"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.is.Key, tt.is.Project, tt.is.Summary = "PAY-1", "PAY", "Rework settlement"
			d := EvaluateIssue(org, IssueSnapshot{Issue: tt.is, Now: kindsNow, Load: map[string]int{"acc-tl1": 4, "acc-tl3": 1}})
			po, _ := issueRule(d, "product-owner/analysis")
			tl, _ := issueRule(d, "technical-lead/analysis")
			if po.NeedsTask != tt.needs || !strings.Contains(po.Reason, tt.reason) {
				t.Errorf("product-owner/analysis: needs %v reason %q; want %v containing %q", po.NeedsTask, po.Reason, tt.needs, tt.reason)
			}
			if tl.NeedsTask {
				t.Errorf("technical-lead/analysis asks for a second task: %q", tl.Reason)
			}
			if !tt.needs {
				return
			}
			if po.TaskSummary != "Analysis: Rework settlement" || po.AssignRole != "technical-lead" {
				t.Errorf("task %q for role %q", po.TaskSummary, po.AssignRole)
			}
			// Least loaded technical lead who is not away: Vic (1 open task; Uma is away).
			if len(po.Picks) != 1 || po.Picks[0].AccountID != "acc-tl3" {
				t.Errorf("picks %+v, want Vic", po.Picks)
			}
			if !strings.Contains(tl.Reason, "asked for by rule product-owner/analysis") {
				t.Errorf("technical-lead/analysis: %q", tl.Reason)
			}
		})
	}
	if got := TaskPrefix(KindAnalysis); got != AnalysisPrefix {
		t.Errorf("TaskPrefix(analysis) = %q", got)
	}
}

func TestRequirementsKind(t *testing.T) {
	org := kindsOrg(t, kindsYAML)
	custom := kindsOrg(t, strings.Replace(kindsYAML, "requirements: {}", `requirements: {acceptance_pattern: "(?m)^AC:"}`, 1))
	tests := []struct {
		name      string
		org       *roles.Org
		is        model.Issue
		violation bool
		reason    string
	}{
		{"story to do without criteria", org, model.Issue{Type: "Story", Status: "To Do", StatusCategory: "new"}, false, "not in progress"},
		{"story in progress without criteria", org, model.Issue{Type: "Story", Status: "In Progress", StatusCategory: "indeterminate", Description: "Build it."}, true, "without acceptance criteria"},
		{"story in progress with acceptance criteria", org, model.Issue{Type: "Story", StatusCategory: "indeterminate", Description: "h3. Acceptance Criteria\n* pays"}, false, "with acceptance criteria"},
		{"story in progress with a scenario", org, model.Issue{Type: "Story", StatusCategory: "indeterminate", Description: "Given a wallet\nWhen I top up\nThen it grows"}, false, "with acceptance criteria"},
		{"custom pattern: default words do not count", custom, model.Issue{Type: "Story", StatusCategory: "indeterminate", Description: "Acceptance criteria: pays"}, true, "without acceptance criteria"},
		{"custom pattern matched", custom, model.Issue{Type: "Story", StatusCategory: "indeterminate", Description: "AC: pays"}, false, "with acceptance criteria"},
		{"done story", org, model.Issue{Type: "Story", StatusCategory: "done", StatusDone: true}, false, "not in progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.is.Key, tt.is.Project = "PAY-1", "PAY"
			d := EvaluateIssue(tt.org, IssueSnapshot{Issue: tt.is, Now: kindsNow})
			r, _ := issueRule(d, "engineer/requirements")
			if r.Violation != tt.violation || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("violation %v reason %q; want %v containing %q", r.Violation, r.Reason, tt.violation, tt.reason)
			}
			if tt.violation && (r.FindingKey != "requirements:PAY-1" || r.Comment == "") {
				t.Errorf("finding key %q, comment %q", r.FindingKey, r.Comment)
			}
			if got := d.Acting(); got != tt.violation {
				t.Errorf("Acting() = %v", got)
			}
		})
	}
}

// Every kind of the registry is documented in the README and in the guide
// at the top of the shipped roles.yaml, with the registry's line.
func TestEveryKindDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("../../roles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[roles.Kind]bool{}
	for _, k := range Registry {
		if seen[k.Kind] {
			t.Errorf("kind %s registered twice", k.Kind)
		}
		seen[k.Kind] = true
		if k.Doc == "" {
			t.Errorf("kind %s has no documentation line", k.Kind)
		}
		if k.Kind != roles.KindReport && k.Action == "" { // the report makes no findings
			t.Errorf("kind %s has no action for the weekly report", k.Kind)
		}
		if !strings.Contains(string(readme), "`"+string(k.Kind)+"`") {
			t.Errorf("README.md does not document rule kind `%s`", k.Kind)
		}
		guide := "#   " + string(k.Kind) + strings.Repeat(" ", max(1, 17-len(k.Kind))) + k.Doc
		if !strings.Contains(string(shipped), guide) {
			t.Errorf("the guide of roles.yaml lacks the line %q", guide)
		}
	}
	for _, k := range roles.Kinds {
		if !seen[k] {
			t.Errorf("kind %s is known to package roles but not in the registry", k)
		}
	}
}

// Every kind, the older ones included, declares its settings here and is
// registered with package roles by this package's init: a kind missing
// from roles' registry would make roles.yaml refuse it as unknown.
func TestOlderKindsRegistered(t *testing.T) {
	older := []roles.Kind{roles.KindCodeReview, roles.KindPathReview, roles.KindUnitTests, roles.KindDeployApproval,
		roles.KindTestPlan, roles.KindDesignReview, roles.KindStoryPoints, roles.KindReport}
	for i, k := range older {
		spec, ok := roles.Spec(k)
		if !ok {
			t.Errorf("kind %s is not registered with package roles", k)
			continue
		}
		if spec.Apply == nil || len(spec.Settings) == 0 {
			t.Errorf("kind %s: spec reads no settings into the rule (Apply %v, Settings %v)", k, spec.Apply != nil, spec.Settings)
		}
		if i >= len(roles.Kinds) || roles.Kinds[i] != k {
			t.Errorf("roles.Kinds = %v: want %s at %d (the contract's order)", roles.Kinds, k, i)
		}
		row, ok := kindInfo(k)
		if !ok || row.Spec == nil || row.Spec.Kind != k {
			t.Errorf("kind %s: its registry row carries no spec of its own", k)
		}
	}
}

func TestExplainIssue(t *testing.T) {
	org := kindsOrg(t, kindsYAML)
	is := model.Issue{Key: "PAY-4", Project: "PAY", Type: "Story", Summary: "Rework settlement", Status: "In Progress",
		StatusCategory: "indeterminate", Labels: []string{"complex"}, Description: "do it"}
	text := ExplainIssue(EvaluateIssue(org, IssueSnapshot{Issue: is, PriorityField: true, Now: kindsNow}))
	for _, want := range []string{
		"PAY-4: team payments",
		"[task] product-owner/analysis: PAY-4 is labelled complex",
		"for Tia",
		"[finding] engineer/requirements: PAY-4 is in progress (In Progress) without acceptance criteria",
		"finding requirements:PAY-4, one comment on the issue",
		"[finding] product-owner/backlog: PAY-4 has no priority",
		"rules with nothing to ask:",
		"technical-lead/analysis: PAY-4 is labelled complex: PAY-4 without an analysis: asked for by rule product-owner/analysis",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("explain lacks %q:\n%s", want, text)
		}
	}
	if text := ExplainIssue(EvaluateIssue(org, IssueSnapshot{Issue: model.Issue{Key: "OPS-1", Project: "OPS"}, Now: kindsNow})); !strings.Contains(text, "nothing to do: project OPS is owned by no team") {
		t.Errorf("unowned project:\n%s", text)
	}
}

// The shipped roles.yaml declares break-glass on the CTO, and renaming the
// role there keeps it working: nothing names the role in code.
func TestShippedBreakGlassFollowsRename(t *testing.T) {
	data, err := os.ReadFile("../../roles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"cto", "head-of-engineering"} {
		text := strings.NewReplacer("  cto:\n", "  "+role+":\n", "roles: [cto, ", "roles: ["+role+", ").Replace(string(data))
		org, err := roles.ParseAt("roles.yaml", []byte(text), kindsNow)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		bg := BreakGlassOf(org, "payments", "production")
		priya := org.Person("priya")
		if bg.Role != role || bg.FollowUp != "product-owner" || priya == nil || len(bg.Holders) != 1 || bg.Holders[0] != priya.AccountID {
			t.Errorf("role %s: break-glass %+v", role, bg)
		}
	}
}
