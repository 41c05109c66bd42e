package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

const issueRolesYAML = `version: 1
organization: Test
roles:
  qa-lead:
    title: QA Lead
    scope: organization
    responsibilities:
      - text: Creates a test plan for feature releases and large projects
        enforce:
          test-plan: {issue_types: [Epic, "Feature"]}
  architect:
    title: Chief Architect
    scope: organization
    responsibilities:
      - text: Reviews engineering design
        enforce:
          design-review: {}
  product-owner:
    title: Product owner
    responsibilities:
      - text: Assigns each task a user story and story points
        enforce:
          story-points: {issue_types: [story]}
teams:
  payments:
    jira_projects: [PAY]
people:
  - id: qa1
    name: Quinn
    account_id: "712020:qa1"
    roles: [qa-lead]
  - id: qa2
    name: Rae
    account_id: "712020:qa2"
    roles: [qa-lead]
    away:
      - {from: 2026-11-01, to: 2026-11-10}
  - id: qa3
    name: Sol
    account_id: "712020:qa3"
    roles: [qa-lead]
  - id: arch
    name: Ada
    account_id: "712020:arch"
    roles: [architect]
  - id: po
    name: Pat
    account_id: "712020:po"
    roles: [product-owner]
    teams: [payments]
`

func issueOrg(t *testing.T) *roles.Org {
	t.Helper()
	org, err := roles.ParseAt("roles.yaml", []byte(issueRolesYAML), time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return org
}

func points(f float64) *float64 { return &f }

func TestEvaluateIssue(t *testing.T) {
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	active := []model.Sprint{{ID: 1, Name: "Sprint 7", State: "active"}}
	story := `As a payer, I want to see fees, so that I am not surprised.`
	tests := []struct {
		name      string
		issue     model.Issue
		noSPField bool
		load      map[string]int
		skipped   string
		check     func(t *testing.T, d IssueDecision)
	}{
		{name: "project owned by no team", issue: model.Issue{Key: "OPS-1", Project: "OPS", Type: "Epic"},
			skipped: "project OPS is owned by no team"},
		{name: "sub-task", issue: model.Issue{Key: "PAY-2", Project: "PAY", Type: "Sub-task", Subtask: true},
			skipped: "PAY-2 is a sub-task"},
		{name: "epic without test plan: least loaded QA lead not away", issue: model.Issue{Key: "PAY-1", Project: "PAY", Type: "epic", Summary: "Wallet top-ups"},
			load: map[string]int{"712020:qa1": 3, "712020:qa3": 1},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "test-plan")
				if !r.Applies || !r.NeedsTask || r.TaskSummary != "Test plan: Wallet top-ups" {
					t.Errorf("result %+v", r)
				}
				if len(r.Picks) != 1 || r.Picks[0].AccountID != "712020:qa3" {
					t.Errorf("picks %+v (qa2 is away, qa1 busier)", r.Picks)
				}
				if !strings.Contains(r.Reason, "QA Lead") || !strings.Contains(r.Reason, "Creates a test plan") || !strings.Contains(r.Reason, "Sol") {
					t.Errorf("reason %q names no role, responsibility or person", r.Reason)
				}
				if !strings.Contains(strings.Join(r.Notes, ";"), "Rae is away") {
					t.Errorf("notes %v", r.Notes)
				}
				if !d.NeedsAssignment() || !d.Acting() {
					t.Error("decision does not ask for a task")
				}
			}},
		{name: "configured extra type matches case-insensitively", issue: model.Issue{Key: "PAY-3", Project: "pay", Type: "FEATURE", Summary: "x"},
			check: func(t *testing.T, d IssueDecision) {
				if r := ruleOf(t, d, "test-plan"); !r.NeedsTask {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "test plan exists as sub-task", issue: model.Issue{Key: "PAY-4", Project: "PAY", Type: "Epic",
			Subtasks: []model.IssueRef{{Key: "PAY-5", Summary: "test PLAN: Wallet", Status: "In Progress"}}},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "test-plan")
				if r.NeedsTask || r.Existing != "PAY-5" || r.ExistingDone || len(r.Picks) != 0 {
					t.Errorf("result %+v", r)
				}
				if d.Acting() {
					t.Error("acting with a plan in place")
				}
			}},
		{name: "test plan exists as linked issue (site without sub-tasks)", issue: model.Issue{Key: "PAY-6", Project: "PAY", Type: "Epic",
			Links: []model.IssueRef{{Key: "PAY-9", Summary: "Test plan: Wallet", StatusDone: true, Status: "Done"}}},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "test-plan")
				if r.NeedsTask || r.Existing != "PAY-9" || !r.ExistingDone {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "story is no epic", issue: model.Issue{Key: "PAY-7", Project: "PAY", Type: "Story"},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "test-plan")
				if r.Applies || r.NeedsTask || !strings.Contains(r.Reason, "not one of Epic, Feature") {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "design gets a review, never by its reporter", issue: model.Issue{Key: "PAY-8", Project: "PAY", Type: "Design", Summary: "Ledger",
			Reporter: &model.Actor{AccountID: "712020:arch"}},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "design-review")
				if !r.NeedsTask || r.TaskSummary != "Design review: Ledger" || len(r.Picks) != 0 {
					t.Errorf("result %+v", r)
				}
				if !strings.Contains(r.Reason, "unassigned") || !strings.Contains(strings.Join(r.Notes, ";"), "reported the design") {
					t.Errorf("reason %q notes %v", r.Reason, r.Notes)
				}
			}},
		{name: "story in open sprint without points nor user story", issue: model.Issue{Key: "PAY-10", Project: "PAY", Type: "Story",
			Sprints: active, Description: "make it faster"},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "story-points")
				if !r.Violation || !r.MissingPoints || !r.MissingUserStory || r.Sprint != "Sprint 7" {
					t.Errorf("result %+v", r)
				}
				if !strings.Contains(r.Reason, "Product owner") || !strings.Contains(r.Reason, "has no story points and no user story") {
					t.Errorf("reason %q", r.Reason)
				}
			}},
		{name: "story estimated with user story", issue: model.Issue{Key: "PAY-11", Project: "PAY", Type: "Story",
			Sprints: active, Description: story, StoryPoints: points(3)},
			check: func(t *testing.T, d IssueDecision) {
				if r := ruleOf(t, d, "story-points"); r.Violation || !r.Applies {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "zero points is an estimate", issue: model.Issue{Key: "PAY-12", Project: "PAY", Type: "Story",
			Sprints: active, Description: story, StoryPoints: points(0)},
			check: func(t *testing.T, d IssueDecision) {
				if r := ruleOf(t, d, "story-points"); r.Violation {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "site without story points field: user story only", noSPField: true, issue: model.Issue{Key: "PAY-13", Project: "PAY", Type: "Story",
			Sprints: active, Description: story},
			check: func(t *testing.T, d IssueDecision) {
				r := ruleOf(t, d, "story-points")
				if r.Violation || r.MissingPoints || !strings.Contains(strings.Join(r.Notes, ";"), "no story-points field") {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "story in a future sprint only", issue: model.Issue{Key: "PAY-14", Project: "PAY", Type: "Story",
			Sprints: []model.Sprint{{ID: 2, Name: "Sprint 8", State: "future"}}},
			check: func(t *testing.T, d IssueDecision) {
				if r := ruleOf(t, d, "story-points"); r.Applies || r.Violation {
					t.Errorf("result %+v", r)
				}
			}},
	}
	org := issueOrg(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := IssueSnapshot{Issue: tt.issue, StoryPointsField: !tt.noSPField, Load: tt.load, Now: now}
			d := EvaluateIssue(org, s)
			if d.Skipped != tt.skipped {
				t.Fatalf("skipped %q, want %q", d.Skipped, tt.skipped)
			}
			if tt.skipped != "" {
				if len(d.Rules) != 0 || d.Acting() {
					t.Errorf("rules %+v on a skipped issue", d.Rules)
				}
				return
			}
			if d.Team != "payments" {
				t.Errorf("team %q", d.Team)
			}
			tt.check(t, d)
			// Deterministic: the same snapshot, the same decision.
			again := EvaluateIssue(org, s)
			if len(again.Rules) != len(d.Rules) {
				t.Fatal("not deterministic")
			}
			for i := range d.Rules {
				if again.Rules[i].Reason != d.Rules[i].Reason {
					t.Errorf("reason %q then %q", d.Rules[i].Reason, again.Rules[i].Reason)
				}
			}
		})
	}
}

func ruleOf(t *testing.T, d IssueDecision, kind string) IssueRuleResult {
	t.Helper()
	for _, r := range d.Rules {
		if r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no %s result in %+v", kind, d.Rules)
	return IssueRuleResult{}
}

func TestFindTaskAndTypes(t *testing.T) {
	is := model.Issue{
		Subtasks: []model.IssueRef{{Key: "A-2", Summary: "Unrelated"}, {Key: "A-3", Summary: "  Design review: x"}},
		Links:    []model.IssueRef{{Key: "A-4", Summary: "Test plan: y"}, {Key: "A-5", Summary: "Design review: z"}},
	}
	for prefix, want := range map[string]string{TestPlanPrefix: "A-4", DesignReviewPrefix: "A-3"} {
		if got, ok := FindTask(is, prefix); !ok || got.Key != want {
			t.Errorf("FindTask(%q) = %v %v, want %s", prefix, got, ok, want)
		}
	}
	if _, ok := FindTask(model.Issue{Subtasks: []model.IssueRef{{Summary: "Test"}}}, TestPlanPrefix); ok {
		t.Error("short summary matched")
	}
	if got := IssueTypes(&roles.Rule{Kind: roles.KindDesignReview}); len(got) != 1 || got[0] != "Design" {
		t.Errorf("default design types %v", got)
	}
	if got := TaskPrefix(roles.KindStoryPoints); got != "" {
		t.Errorf("story points prefix %q", got)
	}
}
