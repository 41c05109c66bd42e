package jiraflow

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// kindsRoles adds the registry's Jira kinds to the test organisation: two
// technical leads (one away), an engineer.
const kindsRoles = `
  technical-lead:
    title: Technical lead
    responsibilities:
      - text: Performs technical analysis for complex problems
        enforce:
          analysis: {points: 8}
  engineer:
    title: Back-end engineer
    responsibilities:
      - text: Creates and defines product requirements for each user story
        enforce:
          requirements: {}
  backlog-owner:
    title: Product owner
    responsibilities:
      - text: Manages and prioritizes the backlog
        enforce:
          backlog: {untriaged_days: 14}
`

func kindsEnv(t *testing.T, opts jiratest.Options) *env {
	t.Helper()
	e := newEnv(t, opts, false)
	yml := strings.Replace(rolesYAML, "teams:\n", strings.TrimPrefix(kindsRoles, "\n")+"teams:\n", 1)
	yml += `  - {id: tia, name: Tia, account_id: "712020:tia", roles: [technical-lead], teams: [payments]}
  - {id: uma, name: Uma, account_id: "712020:uma", roles: [technical-lead], teams: [payments], away: [{from: 2026-11-01, to: 2026-11-30}]}
  - {id: eli, name: Eli, account_id: "712020:eli", roles: [engineer], teams: [payments]}
  - {id: bea, name: Bea, account_id: "712020:bea", roles: [backlog-owner], teams: [payments]}
`
	org, err := roles.ParseAt("roles.yaml", []byte(yml), now)
	if err != nil {
		t.Fatal(err)
	}
	e.roles.Set(org)
	for id, name := range map[string]string{"712020:tia": "Tia", "712020:uma": "Uma", "712020:eli": "Eli", "712020:bea": "Bea"} {
		e.fake.AddUser(id, name)
	}
	return e
}

func (e *env) deliverUpdate(key string, items ...model.ChangeItem) {
	e.t.Helper()
	for range 3 { // redeliveries change nothing
		if err := e.deliver(e.fake.IssueEventBody("jira:issue_updated", key, items...)); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) findingKeys() map[string]bool {
	keys := map[string]bool{}
	for _, f := range e.findings() {
		keys[f.Key] = true
	}
	return keys
}

func TestBacklogCommentsOnce(t *testing.T) {
	e := kindsEnv(t, jiratest.Options{})
	ok := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "prioritised"})
	none := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "no priority", NoPriority: true})
	bug := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Bug", Summary: "old bug", Created: now.Add(-30 * 24 * time.Hour)})
	for _, k := range []string{ok, none, bug} {
		e.deliverUpdate(k, model.ChangeItem{Field: "priority", FieldID: "priority"})
	}
	if c := e.fake.Comments(ok); len(c) != 0 {
		t.Errorf("prioritised story commented: %q", c)
	}
	for _, k := range []string{none, bug} {
		c := e.fake.Comments(k)
		if len(c) != 1 || !strings.Contains(c[0], "Product owner") || !strings.Contains(c[0], "(rolekeeper: backlog)") {
			t.Errorf("%s comments %q, want one for the product owner", k, c)
		}
	}
	keys := e.findingKeys()
	if !keys["backlog:"+none] || !keys["backlog:"+bug] || keys["backlog:"+ok] {
		t.Errorf("findings %v", keys)
	}
	// A restarted daemon that lost its store still does not comment twice.
	e.dbPath = ":memory:"
	e.openStore()
	e.restart(false)
	e.deliverUpdate(none)
	if c := e.fake.Comments(none); len(c) != 1 {
		t.Errorf("after a store loss: comments %q", c)
	}
}

func TestBacklogOnSiteWithoutPriority(t *testing.T) {
	e := kindsEnv(t, jiratest.Options{NoPriority: true})
	story := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "s", NoPriority: true})
	bug := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Bug", Summary: "old bug", Created: now.Add(-30 * 24 * time.Hour)})
	e.deliverUpdate(story)
	e.deliverUpdate(bug)
	if c := e.fake.Comments(story); len(c) != 0 {
		t.Errorf("a site without priorities cannot judge priorities: comments %q", c)
	}
	if c := e.fake.Comments(bug); len(c) != 1 {
		t.Errorf("the untriaged bug is still found: comments %q", c)
	}
	if got := e.h.Status()["jira:PAY"]; !strings.Contains(got, "no priority field") {
		t.Errorf("status %q lacks the missing field", got)
	}
	n := 0
	for _, l := range e.logs.All() {
		if strings.Contains(l.ContextMap()["problems"].(string), "no priority field") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the missing field was logged %d times, want once", n)
	}
}

func TestAnalysisTaskOnce(t *testing.T) {
	e := kindsEnv(t, jiratest.Options{})
	pts := func(f float64) *float64 { return &f }
	big := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "Rework settlement", StoryPoints: pts(13),
		Description: "Acceptance criteria: settles"})
	labelled := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "Odd FX", Labels: []string{"complex"}})
	small := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "Copy fix", StoryPoints: pts(2)})
	for _, k := range []string{big, labelled, small} {
		e.deliverUpdate(k, model.ChangeItem{Field: "Story point estimate", FieldID: "customfield_10016"})
	}
	tasks := e.tasks("Analysis:")
	parents := map[string]bool{}
	for _, task := range tasks {
		parents[task.Parent] = true
		if task.Assignee != "712020:tia" {
			t.Errorf("%s assigned to %q, want Tia (Uma is away)", task.Key, task.Assignee)
		}
	}
	if len(tasks) != 2 || !parents[big] || !parents[labelled] || parents[small] {
		t.Errorf("analysis tasks %+v, want one each for %s and %s", tasks, big, labelled)
	}
}

func TestRequirementsWhenMovedToInProgress(t *testing.T) {
	e := kindsEnv(t, jiratest.Options{})
	bare := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "bare", Description: "do it"})
	spec := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "spec",
		Description: "Given a wallet\nWhen I top up\nThen it grows"})
	e.deliverUpdate(bare, model.ChangeItem{Field: "status", FieldID: "status", ToString: "To Do"})
	if c := e.fake.Comments(bare); len(c) != 0 {
		t.Fatalf("a story not started is no finding: %q", c)
	}
	for _, k := range []string{bare, spec} {
		e.fake.Update(k, func(ed *jiratest.IssueEdit) { ed.Status = "In Progress" })
		e.deliverUpdate(k, model.ChangeItem{Field: "status", FieldID: "status", FromString: "To Do", ToString: "In Progress"})
	}
	if c := e.fake.Comments(bare); len(c) != 1 || !strings.Contains(c[0], "acceptance criteria") || !strings.Contains(c[0], "Back-end engineer") {
		t.Errorf("bare story comments %q", c)
	}
	if c := e.fake.Comments(spec); len(c) != 0 {
		t.Errorf("story with a scenario commented: %q", c)
	}
	if keys := e.findingKeys(); !keys["requirements:"+bare] || keys["requirements:"+spec] {
		t.Errorf("findings %v", keys)
	}
}

func TestAuditCoversRegisteredKinds(t *testing.T) {
	e := kindsEnv(t, jiratest.Options{})
	none := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Task", Summary: "no priority", NoPriority: true})
	started := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "started", Status: "In Progress", Description: "go"})
	e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "Big", Labels: []string{"complex"}})
	for range 2 {
		if err := e.h.AuditIssues(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	keys := e.findingKeys()
	if !keys["backlog:"+none] || !keys["requirements:"+started] {
		t.Errorf("findings %v", keys)
	}
	if n := len(e.tasks("Analysis:")); n != 1 {
		t.Errorf("%d analysis tasks, want 1", n)
	}
	if c := e.fake.Comments(none); len(c) != 1 {
		t.Errorf("comments %q", c)
	}
}

func TestAnalysisOnSiteWithoutStoryPoints(t *testing.T) {
	e := kindsEnv(t, jiratest.Options{NoStoryPoints: true})
	labelled := e.fake.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "Odd FX", Labels: []string{"complex"},
		Description: "As a merchant, I want FX, so that I sell abroad."})
	e.deliverUpdate(labelled, model.ChangeItem{Field: "labels", FieldID: "labels"})
	if n := len(e.tasks("Analysis:")); n != 1 {
		t.Errorf("%d analysis tasks, want 1 by the label", n)
	}
	if got := e.h.Status()["jira:PAY"]; !strings.Contains(got, "the analysis rule goes by labels only") {
		t.Errorf("status %q", got)
	}
}
