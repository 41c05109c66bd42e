package jiratest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

var now = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func start(t *testing.T, opts jiratest.Options) (*jiratest.Server, *jira.Client) {
	t.Helper()
	opts.Prefix, opts.Now = "/site", func() time.Time { return now }
	s := jiratest.Start(opts)
	t.Cleanup(s.Close)
	s.AddProject("PAY", "Payments")
	c, err := jira.New(jira.Options{BaseURL: s.URL(), Email: "bot@example.com", Token: "t", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestDiscoverOnFakeSites(t *testing.T) {
	tests := []struct {
		name           string
		opts           jiratest.Options
		sp, subtask    string
		hasSub, sprint bool
	}{
		{"default site: both point fields, jsw on screen", jiratest.Options{}, "customfield_10016", "Sub-task", true, true},
		{"other ids and names", jiratest.Options{StoryPointsField: "customfield_12345", SprintField: "customfield_11111", SubtaskTypeName: "子任务"},
			"customfield_12345", "子任务", true, true},
		{"no sub-tasks", jiratest.Options{NoSubtasks: true}, "customfield_10016", "", false, true},
		{"no story points", jiratest.Options{NoStoryPoints: true}, "", "Sub-task", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := start(t, tt.opts)
			m, err := c.Discover(context.Background(), "PAY")
			if err != nil {
				t.Fatal(err)
			}
			if m.StoryPointsField != tt.sp || m.SubtaskTypeName != tt.subtask || m.HasSubtasks != tt.hasSub || (m.SprintField != "") != tt.sprint {
				t.Errorf("meta %+v", m)
			}
			if tt.opts.SprintField != "" && m.SprintField != tt.opts.SprintField {
				t.Errorf("sprint field %q", m.SprintField)
			}
		})
	}
}

func TestIssuesSearchAndCreate(t *testing.T) {
	s, c := start(t, jiratest.Options{PageSize: 2})
	ctx := context.Background()
	if _, err := c.Discover(ctx, "PAY"); err != nil {
		t.Fatal(err)
	}
	sprint := s.AddSprint("Sprint 1", "active")
	pts := 5.0
	epic := s.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Epic", Summary: "E", Description: "text"})
	for i := 0; i < 4; i++ {
		s.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "S", Sprints: []int{sprint}, StoryPoints: &pts})
	}

	got, err := c.Search(ctx, `project = PAY AND sprint in openSprints() ORDER BY created`, []string{"summary", "customfield_10016", "customfield_10020"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].StoryPoints == nil || *got[0].StoryPoints != 5 || len(got[0].Sprints) != 1 || got[0].Sprints[0].State != "active" {
		t.Errorf("search %+v", got)
	}
	if n := s.Count("GET /rest/api/2/search/jql"); n != 2 {
		t.Errorf("%d pages, want 2 of 2", n)
	}
	for name, jql := range map[string]string{"unbounded": "", "unknown field": "colour = red", "bad function": "sprint in nowSprints()"} {
		_, err := c.Search(ctx, jql, nil, 1)
		var ue *upstream.Error
		if !errors.As(err, &ue) || ue.StatusCode != 400 {
			t.Errorf("%s: err %v, want 400", name, err)
		}
	}

	is, err := c.GetIssue(ctx, epic)
	if err != nil || is.Type != "Epic" || is.Description != "text" || is.Reporter == nil || is.Reporter.AccountID != s.Myself() {
		t.Fatalf("issue %+v err %v", is, err)
	}

	m, _ := c.Meta("PAY")
	for name, tc := range map[string]struct {
		req  jira.CreateIssueRequest
		want string
	}{
		"sub-task without parent": {jira.CreateIssueRequest{Project: "PAY", IssueTypeID: m.SubtaskTypeID, Summary: "x"}, "parent:"},
		"no summary":              {jira.CreateIssueRequest{Project: "PAY", IssueTypeID: m.SubtaskTypeID, Parent: epic}, "summary: You must specify a summary"},
		"unknown assignee":        {jira.CreateIssueRequest{Project: "PAY", IssueTypeID: m.SubtaskTypeID, Parent: epic, Summary: "x", AssigneeAccountID: "nobody"}, "assignee:"},
		"unknown project":         {jira.CreateIssueRequest{Project: "NOPE", IssueTypeID: "10000", Summary: "x"}, "project:"},
		"story under a story":     {jira.CreateIssueRequest{Project: "PAY", IssueTypeID: "10001", Parent: got[0].Key, Summary: "x"}, "hierarchy"},
	} {
		_, err := c.CreateIssue(ctx, tc.req)
		var ue *upstream.Error
		if !errors.As(err, &ue) || !ue.Permanent() || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want a 400 naming %q", name, err, tc.want)
		}
	}
	key, err := c.CreateIssue(ctx, jira.CreateIssueRequest{Project: "PAY", IssueTypeID: m.SubtaskTypeID, Parent: epic, Summary: "Test plan: E"})
	if err != nil {
		t.Fatal(err)
	}
	is, _ = c.GetIssue(ctx, epic)
	if len(is.Subtasks) != 1 || is.Subtasks[0].Key != key || is.Subtasks[0].Summary != "Test plan: E" || is.Subtasks[0].Status != "To Do" {
		t.Errorf("subtasks %+v", is.Subtasks)
	}
	if err := c.LinkIssues(ctx, "Relates", key, got[1].Key); err != nil {
		t.Fatal(err)
	}
	linked, _ := c.GetIssue(ctx, got[1].Key)
	if len(linked.Links) != 1 || linked.Links[0].Key != key || linked.Links[0].LinkType != "relates to" {
		t.Errorf("links %+v", linked.Links)
	}
	if err := c.LinkIssues(ctx, "Frobs", key, epic); err == nil {
		t.Error("unknown link type accepted")
	}
}

func TestCommentsAttachmentsVersionsMyself(t *testing.T) {
	s, c := start(t, jiratest.Options{})
	ctx := context.Background()
	key := s.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "S"})
	id, err := c.AddComment(ctx, key, "hello")
	if err != nil || id == "" {
		t.Fatalf("id %q err %v", id, err)
	}
	cs, err := c.ListComments(ctx, key)
	if err != nil || len(cs) != 1 || cs[0].Body != "hello" || cs[0].Author.AccountID != s.Myself() {
		t.Errorf("comments %+v err %v", cs, err)
	}

	// go-jira v1's AddComment sends author, updateAuthor and an empty
	// visibility: Jira Cloud refuses it, and so does the fake.
	gj, _ := gojira.NewClient((&gojira.BasicAuthTransport{Username: "u", Password: "p"}).Client(), s.URL())
	if _, _, err := gj.Issue.AddComment(key, &gojira.Comment{Body: "x"}); err == nil {
		t.Error("go-jira's comment shape was accepted")
	}

	if err := c.AddAttachment(ctx, key, "weekly.md", []byte("# report")); err != nil {
		t.Fatal(err)
	}
	if got := s.Attachments(key); len(got) != 1 || got[0] != "weekly.md" {
		t.Errorf("attachments %v", got)
	}
	req, _ := http.NewRequest("POST", s.URL()+"/rest/api/2/issue/"+key+"/attachments", strings.NewReader(""))
	req.SetBasicAuth("u", "p")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("attachment without XSRF header: %v %v", resp, err)
	}

	v := s.AddVersion("PAY", "1.0")
	s.Release(v, "2026-11-01")
	vs, err := c.ProjectVersions(ctx, "PAY")
	if err != nil || len(vs) != 1 || !vs[0].Released || vs[0].ReleaseDate.Format("2006-01-02") != "2026-11-01" {
		t.Errorf("versions %+v err %v", vs, err)
	}
	me, err := c.Myself(ctx)
	if err != nil || me.AccountID != s.Myself() {
		t.Errorf("myself %+v %v", me, err)
	}
}

func TestAuthFailuresAndAccounting(t *testing.T) {
	s, c := start(t, jiratest.Options{})
	ctx := context.Background()
	resp, err := http.Get(s.URL() + "/rest/api/2/myself")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous: %v %v", resp, err)
	}
	resp, err = http.Get(s.HTTP.URL + "/rest/api/2/search?jql=project=PAY")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("outside the prefix: %v %v", resp, err)
	}

	s.FailNext(1, http.StatusTooManyRequests, "30")
	_, err = c.Myself(ctx)
	var tmp interface {
		Temporary() bool
		RetryAfter() time.Duration
	}
	if !errors.As(err, &tmp) || !tmp.Temporary() || tmp.RetryAfter() != 30*time.Second {
		t.Errorf("err %v", err)
	}
	// Within the 30 s the client does not ask again: it answers for Jira.
	if _, err := c.Myself(ctx); upstream.RetryDelay(err) <= 0 || s.Count("GET /rest/api/2/myself") != 2 {
		t.Errorf("within Retry-After: err %v, %d calls", err, s.Count("GET /rest/api/2/myself"))
	}
	c2, err := jira.New(jira.Options{BaseURL: s.URL(), Email: "bot@example.com", Token: "t", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Myself(ctx); err != nil {
		t.Errorf("after the failure: %v", err)
	}
	if n := s.Count("GET /rest/api/2/myself"); n != 3 {
		t.Errorf("%d myself calls, want 3", n)
	}
	calls := s.Calls()
	if last := calls[len(calls)-1]; last.Status != 200 || last.Path != "/rest/api/2/myself" {
		t.Errorf("last call %+v", last)
	}
}

func TestWebhookBodies(t *testing.T) {
	s, _ := start(t, jiratest.Options{})
	key := s.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Epic", Summary: "E", Assignee: s.Myself()})
	body := s.IssueEventBody("jira:issue_updated", key, model.ChangeItem{Field: "issuetype", FieldID: "issuetype", From: "10001", FromString: "Story", To: "10000", ToString: "Epic"})
	ev, err := jira.ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != model.EventIssueUpdated || ev.Issue.Key != key || ev.Issue.Type != "Epic" || ev.Actor.AccountID != s.Myself() ||
		len(ev.Changelog) != 1 || ev.Changelog[0].ToString != "Epic" || !ev.At.Equal(now) {
		t.Errorf("event %+v", ev)
	}
	v := s.AddVersion("PAY", "2.0")
	ev, err = jira.ParseWebhook(s.Release(v, "2026-11-03"))
	if err != nil || ev.Kind != model.EventVersionReleased || ev.Version.ID != v || ev.Version.ProjectID == "" || ev.Version.Name != "2.0" {
		t.Errorf("version event %+v %v", ev, err)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(body)
	if got := jiratest.Sign("s3cret", body); got != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		t.Errorf("signature %s", got)
	}
}

// Priorities as on a real site (issue_get_v2__go-atlassian.json): a name
// and id of the default scheme, null when none is set; a site whose admin
// hid the field lists it nowhere (fields_list__jira-cli.json has none).
func TestPriorities(t *testing.T) {
	s, c := start(t, jiratest.Options{})
	set := s.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "high", Priority: "High"})
	unset := s.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "none", NoPriority: true})
	m, err := c.Discover(context.Background(), "PAY")
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasPriority {
		t.Error("the default site shows no priority field")
	}
	for key, want := range map[string]string{set: "High", unset: ""} {
		is, err := c.GetIssue(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if is.Priority != want || is.StatusCategory != "new" {
			t.Errorf("%s: priority %q category %q, want %q new", key, is.Priority, is.StatusCategory, want)
		}
	}
	s.Update(set, func(e *jiratest.IssueEdit) { e.Priority, e.Status = "", "In Progress" })
	if is, err := c.GetIssue(context.Background(), set); err != nil || is.Priority != "" || is.StatusCategory != "indeterminate" {
		t.Errorf("after the edit: %+v %v", is, err)
	}

	hidden, hc := start(t, jiratest.Options{NoPriority: true})
	key := hidden.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "s", Priority: "High"})
	if m, err := hc.Discover(context.Background(), "PAY"); err != nil || m.HasPriority {
		t.Errorf("hidden field discovered: %v %v", m.HasPriority, err)
	}
	if is, err := hc.GetIssue(context.Background(), key); err != nil || is.Priority != "" {
		t.Errorf("hidden field returned on the issue: %q %v", is.Priority, err)
	}
}
