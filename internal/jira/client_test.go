package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// prefix mounts the fake API under a path, as api.atlassian.com/ex/jira/{cloudId}
// does: a client building absolute paths fails.
const prefix = "/ex/jira/5b1f2c"

type fakeAPI struct {
	mux   *http.ServeMux
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []*http.Request
	waits []time.Duration
	reg   *prometheus.Registry
}

func newFakeAPI(t *testing.T) (*fakeAPI, *Client) {
	t.Helper()
	f := &fakeAPI{mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bot@example.com" || p != "tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.mu.Unlock()
		http.StripPrefix(prefix, f.mux).ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	c, err := New(Options{
		BaseURL: f.srv.URL + prefix, SiteURL: "https://reloadly.atlassian.net", Email: "bot@example.com", Token: "tok",
		Registerer: f.reg, MaxRetries: 2,
		Sleep: func(_ context.Context, d time.Duration) error {
			f.mu.Lock()
			f.waits = append(f.waits, d)
			f.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// serve answers a path with a fixture file.
func (f *fakeAPI) serve(t *testing.T, pattern, fixture string) {
	body := fixtures.Read(t, fixture)
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

// createMetaPage wraps the issue types of the legacy createmeta fixture in
// the PageOfCreateMetaIssueTypes shape of the spec.
func createMetaPage(t *testing.T, drop func(name string, subtask bool) bool) []byte {
	var legacy struct {
		Projects []struct {
			IssueTypes []map[string]any `json:"issuetypes"`
		} `json:"projects"`
	}
	if err := json.Unmarshal(fixtures.Read(t, "jira/api/issue_createmeta__go-atlassian.json"), &legacy); err != nil {
		t.Fatal(err)
	}
	var types []map[string]any
	for _, it := range legacy.Projects[0].IssueTypes {
		if drop != nil && drop(it["name"].(string), it["subtask"].(bool)) {
			continue
		}
		delete(it, "fields")
		types = append(types, it)
	}
	b, _ := json.Marshal(map[string]any{"issueTypes": types, "maxResults": 50, "startAt": 0, "total": len(types)})
	return b
}

func (f *fakeAPI) discoveryRoutes(t *testing.T, fieldsFixture string, storyScreen []string, drop func(string, bool) bool) {
	f.serve(t, "GET /rest/api/2/field", fieldsFixture)
	f.mux.HandleFunc("GET /rest/api/2/project/KP", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"self":"x","id":"10000","key":"KP","name":"Kanban","projectTypeKey":"software"}`)
	})
	page := createMetaPage(t, drop)
	f.mux.HandleFunc("GET /rest/api/2/issue/createmeta/KP/issuetypes", func(w http.ResponseWriter, r *http.Request) {
		w.Write(page)
	})
	f.mux.HandleFunc("GET /rest/api/2/issue/createmeta/KP/issuetypes/10001", func(w http.ResponseWriter, r *http.Request) {
		var fields []map[string]any
		for _, id := range storyScreen {
			fields = append(fields, map[string]any{"fieldId": id, "key": id, "name": id, "required": false, "operations": []string{"set"}, "hasDefaultValue": false})
		}
		json.NewEncoder(w).Encode(map[string]any{"fields": fields, "maxResults": 50, "startAt": 0, "total": len(fields)})
	})
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name        string
		fields      string
		storyScreen []string
		drop        func(string, bool) bool
		wantSP      string
		wantSubtask string
		wantSprint  string
	}{
		{"both story point fields, jsw on the screen", "jira/api/fields_list__go-atlassian.json",
			[]string{"summary", "customfield_10016"}, nil, "customfield_10016", "10003", "customfield_10020"},
		{"both fields, only the float one on the screen", "jira/api/fields_list__go-atlassian.json",
			[]string{"summary", "customfield_10036"}, nil, "customfield_10036", "10003", "customfield_10020"},
		{"both fields, neither on the screen: jsw preferred", "jira/api/fields_list__go-atlassian.json",
			[]string{"summary"}, nil, "customfield_10016", "10003", "customfield_10020"},
		{"no story points field (only jpo original points)", "jira/api/fields_list__jira-cli.json",
			nil, nil, "", "10003", ""},
		{"no sub-task type", "jira/api/fields_list__go-atlassian.json",
			[]string{"customfield_10016"}, func(_ string, sub bool) bool { return sub }, "customfield_10016", "", "customfield_10020"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFakeAPI(t)
			f.discoveryRoutes(t, tt.fields, tt.storyScreen, tt.drop)
			m, err := c.Discover(context.Background(), "kp")
			if err != nil {
				t.Fatal(err)
			}
			if m.Project != "KP" || m.ProjectID != "10000" {
				t.Errorf("project %q id %q", m.Project, m.ProjectID)
			}
			if m.StoryPointsField != tt.wantSP || m.SubtaskTypeID != tt.wantSubtask || m.HasSubtasks != (tt.wantSubtask != "") || m.SprintField != tt.wantSprint {
				t.Errorf("meta %+v", m)
			}
			// go-atlassian's real field list shows priority; jira-cli's
			// has none (a site whose admin hid it).
			if want := strings.Contains(tt.fields, "go-atlassian"); m.HasPriority != want {
				t.Errorf("priority field found %v in %s, want %v", m.HasPriority, tt.fields, want)
			}
			if id, ok := m.TypeID("epic"); !ok || id != "10000" {
				t.Errorf("epic type id %q %v", id, ok)
			}
			if got, ok := c.Meta("KP"); !ok || got.StoryPointsField != m.StoryPointsField {
				t.Errorf("meta not remembered")
			}
		})
	}
}

func TestGetIssueV2Fixture(t *testing.T) {
	f, c := newFakeAPI(t)
	f.discoveryRoutes(t, "jira/api/fields_list__go-atlassian.json", []string{"customfield_10016"}, nil)
	if _, err := c.Discover(context.Background(), "KP"); err != nil {
		t.Fatal(err)
	}
	var gotFields string
	body := fixtures.Read(t, "jira/api/issue_get_v2__go-atlassian.json")
	f.mux.HandleFunc("GET /rest/api/2/issue/KP-19", func(w http.ResponseWriter, r *http.Request) {
		gotFields = r.URL.Query().Get("fields")
		w.Write(body)
	})
	is, err := c.GetIssue(context.Background(), "KP-19")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"subtasks", "issuelinks", "fixVersions", "status", "priority", "labels", "created", "customfield_10016", "customfield_10020"} {
		if !strings.Contains(","+gotFields+",", ","+want+",") {
			t.Errorf("fields %q lack %s", gotFields, want)
		}
	}
	if is.Key != "KP-19" || is.Project != "KP" || is.Type != "Story" || is.Status != "Backlog" || is.StatusDone {
		t.Errorf("issue %+v", is)
	}
	// The backlog and requirements rules read these.
	if is.Priority != "Medium" || is.StatusCategory != "new" || is.Created.IsZero() {
		t.Errorf("priority %q, status category %q, created %v", is.Priority, is.StatusCategory, is.Created)
	}
	if !strings.HasPrefix(is.Description, "*Lorem Ipsum*") {
		t.Errorf("v2 description not text: %q", is.Description)
	}
	if is.StoryPoints != nil || len(is.Sprints) != 0 {
		t.Errorf("points %v sprints %v, want none", is.StoryPoints, is.Sprints)
	}
	if is.URL != "https://reloadly.atlassian.net/browse/KP-19" {
		t.Errorf("url %q", is.URL)
	}
}

func TestSearchPagesWithNextPageToken(t *testing.T) {
	f, c := newFakeAPI(t)
	var page map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "jira/api/search_jql__jira-cli.json"), &page); err != nil {
		t.Fatal(err)
	}
	issues := page["issues"].([]any)
	var seen []string
	f.mux.HandleFunc("GET /rest/api/2/search/jql", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		seen = append(seen, q.Get("nextPageToken")+"|"+q.Get("fields")+"|"+q.Get("jql"))
		out := map[string]any{"expand": "schema,names"}
		if q.Get("nextPageToken") == "" {
			out["issues"], out["isLast"], out["nextPageToken"] = issues[:1], false, "CAEaAggD"
		} else {
			out["issues"], out["isLast"] = issues[1:], true
		}
		json.NewEncoder(w).Encode(out)
	})
	got, err := c.Search(context.Background(), "project = TEST", []string{"summary", "status"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(issues) || got[0].Key != "TEST-1" || got[1].Type != "Story" || got[1].Status != "In Progress" {
		t.Errorf("issues %+v", got)
	}
	if len(seen) != 2 || seen[0] != "|summary,status|project = TEST" || !strings.HasPrefix(seen[1], "CAEaAggD|summary,status|") {
		t.Errorf("requests %q", seen)
	}

	// maxPages bounds the walk.
	seen = nil
	if got, err := c.Search(context.Background(), "project = TEST", nil, 1); err != nil || len(got) != 1 || len(seen) != 1 {
		t.Errorf("one page: %d issues, %d requests, %v", len(got), len(seen), err)
	}
}

func TestCreateIssue(t *testing.T) {
	f, c := newFakeAPI(t)
	var sent map[string]any
	f.mux.HandleFunc("POST /rest/api/2/issue", func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&sent)
		fields := sent["fields"].(map[string]any)
		if fields["parent"] == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"errorMessages":[],"errors":{"parent":"Parent issue is required for a sub-task.","summary":"You must specify a summary of the issue."}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write(fixtures.Read(t, "jira/api/issue_create_response__go-atlassian.json"))
	})
	key, err := c.CreateIssue(context.Background(), CreateIssueRequest{Project: "ED", IssueTypeID: "10003", Parent: "ED-1",
		Summary: "Test plan: " + strings.Repeat("x", 300), AssigneeAccountID: "712020:abc", Description: "why"})
	if err != nil || key != "ED-24" {
		t.Fatalf("key %q err %v", key, err)
	}
	fields := sent["fields"].(map[string]any)
	if fields["issuetype"].(map[string]any)["id"] != "10003" || fields["parent"].(map[string]any)["key"] != "ED-1" ||
		fields["assignee"].(map[string]any)["accountId"] != "712020:abc" || len([]rune(fields["summary"].(string))) != 255 {
		t.Errorf("sent %v", fields)
	}

	_, err = c.CreateIssue(context.Background(), CreateIssueRequest{Project: "ED", IssueTypeID: "10003"})
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.StatusCode != 400 || !ue.Permanent() || ue.Temporary() {
		t.Fatalf("err %#v", err)
	}
	if !strings.Contains(err.Error(), "parent: Parent issue is required for a sub-task.; summary: You must specify a summary") {
		t.Errorf("field errors not in message: %v", err)
	}
	if got := f.count("POST /ex/jira/5b1f2c/rest/api/2/issue"); got != 2 {
		t.Errorf("%d create calls, want 2 (a 400 is not retried)", got)
	}
}

func (f *fakeAPI) count(methodPath string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		if r.Method+" "+r.URL.Path == methodPath {
			n++
		}
	}
	return n
}

func TestCommentsLinksVersionsMyselfAttachment(t *testing.T) {
	f, c := newFakeAPI(t)
	var commentBody, linkBody string
	f.mux.HandleFunc("POST /rest/api/2/issue/PAY-1/comment", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		commentBody = string(b)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"self":"x","id":"10042","body":"hi","author":{"accountId":"a"}}`)
	})
	f.serve(t, "GET /rest/api/2/issue/PAY-1/comment", "jira/api/issue_comments_list__go-atlassian.json")
	f.mux.HandleFunc("POST /rest/api/2/issueLink", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		linkBody = string(b)
		w.WriteHeader(http.StatusCreated)
	})
	f.serve(t, "GET /rest/api/2/project/PAY/versions", "jira/api/project_versions_list__go-atlassian.json")
	f.serve(t, "GET /rest/api/2/myself", "jira/api/myself__go-atlassian.json")
	var token, filename string
	f.mux.HandleFunc("POST /rest/api/2/issue/PAY-1/attachments", func(w http.ResponseWriter, r *http.Request) {
		token = r.Header.Get("X-Atlassian-Token")
		if _, fh, err := r.FormFile("file"); err == nil {
			filename = fh.Filename
		}
		fmt.Fprint(w, `[{"id":"10001","filename":"report.md"}]`)
	})
	ctx := context.Background()

	id, err := c.AddComment(ctx, "PAY-1", "Story points are missing")
	if err != nil || id != "10042" {
		t.Errorf("comment id %q err %v", id, err)
	}
	if strings.TrimSpace(commentBody) != `{"body":"Story points are missing"}` {
		t.Errorf("comment body %s: only body may be sent", commentBody)
	}
	cs, err := c.ListComments(ctx, "PAY-1")
	if err != nil || len(cs) != 14 || cs[0].ID != "10000" || cs[0].Author.AccountID != "5b10a2844c20165700ede21g" || cs[0].Body != "" {
		t.Errorf("comments %+v err %v (an ADF body is not text)", cs, err)
	}
	if err := c.LinkIssues(ctx, "Relates", "PAY-2", "PAY-1"); err != nil {
		t.Fatal(err)
	}
	var link struct {
		Type    struct{ Name string }
		Inward  struct{ Key string } `json:"inwardIssue"`
		Outward struct{ Key string } `json:"outwardIssue"`
	}
	if json.Unmarshal([]byte(linkBody), &link) != nil || link.Type.Name != "Relates" || link.Inward.Key != "PAY-2" || link.Outward.Key != "PAY-1" {
		t.Errorf("link %s", linkBody)
	}
	vs, err := c.ProjectVersions(ctx, "PAY")
	if err != nil || len(vs) != 2 || vs[0].ID != "10000" || !vs[0].Released || vs[0].ReleaseDate.Format("2006-01-02") != "2010-07-06" ||
		vs[1].Released || vs[0].ProjectID != "10000" || vs[0].Project != "PAY" {
		t.Errorf("versions %+v err %v", vs, err)
	}
	me, err := c.Myself(ctx)
	if err != nil || me.AccountID != "5b86be50b8e3cb5895860d6d" {
		t.Errorf("myself %+v err %v", me, err)
	}
	if err := c.AddAttachment(ctx, "PAY-1", "report.md", []byte("# Weekly")); err != nil {
		t.Fatal(err)
	}
	if token != "no-check" || filename != "report.md" {
		t.Errorf("attachment token %q file %q", token, filename)
	}
}

func TestRetriesAndErrors(t *testing.T) {
	f, c := newFakeAPI(t)
	calls := 0
	f.mux.HandleFunc("GET /rest/api/2/issue/PAY-7", func(w http.ResponseWriter, r *http.Request) {
		calls++
		switch calls {
		case 1:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			fmt.Fprint(w, `{"id":"1","key":"PAY-7","fields":{"summary":"s","issuetype":{"name":"Epic"},"project":{"key":"PAY"}}}`)
		}
	})
	is, err := c.GetIssue(context.Background(), "PAY-7")
	if err != nil || is.Key != "PAY-7" {
		t.Fatalf("issue %+v err %v", is, err)
	}
	if calls != 3 || len(f.waits) != 2 || f.waits[0] != 3*time.Second {
		t.Errorf("calls %d waits %v", calls, f.waits)
	}

	f.mux.HandleFunc("GET /rest/api/2/issue/PAY-9", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}`)
	})
	_, err = c.GetIssue(context.Background(), "PAY-9")
	var ue *upstream.Error
	if !errors.As(err, &ue) || !ue.NotFound() || !strings.Contains(err.Error(), "Issue does not exist") {
		t.Errorf("err %v", err)
	}

	f.mux.HandleFunc("GET /rest/api/2/issue/PAY-8", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120") // longer than MaxWait: handed to the inbox
		w.WriteHeader(http.StatusTooManyRequests)
	})
	_, err = c.GetIssue(context.Background(), "PAY-8")
	var tmp interface {
		Temporary() bool
		RetryAfter() time.Duration
	}
	if !errors.As(err, &tmp) || !tmp.Temporary() || tmp.RetryAfter() != 2*time.Minute {
		t.Errorf("err %v", err)
	}

	// Until then the client does not ask Jira again: it answers itself.
	before := len(f.waits)
	if _, err := c.GetIssue(context.Background(), "PAY-7"); upstream.RetryDelay(err) <= 0 || calls != 3 || len(f.waits) != before {
		t.Errorf("within Retry-After: err %v, calls %d", err, calls)
	}

	// The metrics name endpoints without keys.
	mfs, _ := f.reg.Gather()
	var labels []string
	for _, mf := range mfs {
		if mf.GetName() != "rolekeeper_upstream_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetValue())
			}
			labels = append(labels, strings.Join(l, " "))
		}
	}
	joined := strings.Join(labels, "\n")
	for _, want := range []string{"429 GET /rest/api/2/issue/{key} jira", "502 GET /rest/api/2/issue/{key} jira", "200 GET /rest/api/2/issue/{key} jira"} {
		if !strings.Contains(joined, want) {
			t.Errorf("metrics lack %q:\n%s", want, joined)
		}
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "reloadly.atlassian.net", "://x"} {
		if _, err := New(Options{BaseURL: u}); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
}
