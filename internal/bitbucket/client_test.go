package bitbucket_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// api is an httptest server mounted under /prefix/2.0 (absolute-URL bugs
// show up as 404s) that records every request.
type api struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu    sync.Mutex
	reqs  []*http.Request
	bodys []string
	waits []time.Duration
}

func newAPI(t *testing.T) *api {
	t.Helper()
	a := &api{t: t, mux: http.NewServeMux()}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, r.Clone(context.Background()))
		a.bodys = append(a.bodys, string(b))
		a.mu.Unlock()
		a.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) base() string { return a.srv.URL + "/prefix/2.0" }

// on routes "METHOD /path below /2.0" to h.
func (a *api) on(pattern string, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	a.mux.HandleFunc(method+" /prefix/2.0"+path, h)
}

func (a *api) requests() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.reqs...)
}

func (a *api) body(i int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bodys[i]
}

func (a *api) client(t *testing.T, reg prometheus.Registerer, mod ...func(*bitbucket.Options)) *bitbucket.Client {
	t.Helper()
	opts := bitbucket.Options{
		BaseURL:    a.base(),
		Username:   "bot@example.com",
		Token:      "s3cret",
		Registerer: reg,
		Jitter:     func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			a.mu.Lock()
			a.waits = append(a.waits, d)
			a.mu.Unlock()
			return ctx.Err()
		},
		Now: func() time.Time { return time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC) },
	}
	for _, m := range mod {
		m(&opts)
	}
	c, err := bitbucket.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fixture(t *testing.T, rel string) http.HandlerFunc {
	b := fixtures.Read(t, "bitbucket/api/"+rel)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

func status(code int, hdr map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// sequence answers with each handler in turn, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(n, len(hs)-1)]
		n++
		mu.Unlock()
		h(w, r)
	}
}

const errorJSON = `{"type":"error","error":{"message":"%s"}}`

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name string
		opts bitbucket.Options
	}{
		{"no /2.0", bitbucket.Options{BaseURL: "https://api.bitbucket.org"}},
		{"not http", bitbucket.Options{BaseURL: "ftp://api.bitbucket.org/2.0"}},
		{"no host", bitbucket.Options{BaseURL: "/2.0"}},
		{"both credentials", bitbucket.Options{Username: "a@b.c", Token: "t", AccessToken: "x"}},
		{"username alone", bitbucket.Options{Username: "a@b.c"}},
	}
	for _, tt := range tests {
		if _, err := bitbucket.New(tt.opts); err == nil {
			t.Errorf("%s: want an error", tt.name)
		}
	}
	if _, err := bitbucket.New(bitbucket.Options{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestGetPullRequestFixtures(t *testing.T) {
	type part struct {
		account  string
		approved bool
		state    model.ReviewState
	}
	tests := []struct {
		file      string
		repo      string
		id        int
		author    string
		srcCommit string
		parts     []part
		approvals int
	}{
		{"pullrequest_get-approved__atlantis.json", "lkysow/atlantis-example", 12, "557058:dc3817de-68b5-45cd-b81c-5c39d2560090", "75d1e7c57cd9",
			[]part{{"557058:dc3817de-68b5-45cd-b81c-5c39d2560090", false, ""}, {"5b5097035488b9140c078f7f", true, model.ReviewApproved}}, 1},
		{"pullrequest_get-approved-by-author__atlantis.json", "lkysow/atlantis-example", 12, "557058:dc3817de-68b5-45cd-b81c-5c39d2560090", "75d1e7c57cd9",
			[]part{{"557058:dc3817de-68b5-45cd-b81c-5c39d2560090", true, model.ReviewApproved}, {"5b5097035488b9140c078f7f", false, ""}}, 1},
		{"pullrequest_get-approved-multiple__atlantis.json", "lkysow/atlantis-example", 12, "557058:dc3817de-68b5-45cd-b81c-5c39d2560090", "75d1e7c57cd9",
			[]part{{"557058:dc3817de-68b5-45cd-b81c-5c39d2560090", false, ""}, {"5b5097035488b9140c078f7f", true, model.ReviewApproved}, {"5b5097035488b9140c078f72", true, model.ReviewApproved}}, 2},
		{"pullrequest_get-unapproved__atlantis.json", "lkysow/atlantis-example", 12, "557058:dc3817de-68b5-45cd-b81c-5c39d2560090", "75d1e7c57cd9",
			[]part{{"557058:dc3817de-68b5-45cd-b81c-5c39d2560090", false, ""}, {"5b5097035488b9140c078f7f", false, ""}}, 0},
		{"pullrequest_get__go-scm.json", "atlassian/atlaskit", 4982, "5c7c7b1a0b79db7c3e33eca2", "31c54529bd80", nil, 0},
		{"pullrequest_get__jenkins-bbs.json", "amuniz/test-repos", 1, "557058:ca1cd232-2017-4216-94be-99637899e18d", "bf0e8b7962c0", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			a := newAPI(t)
			a.on(fmt.Sprintf("GET /repositories/%s/pullrequests/%d", tt.repo, tt.id), fixture(t, tt.file))
			c := a.client(t, nil)
			pr, err := c.GetPullRequest(context.Background(), tt.repo, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if pr.ID != tt.id || pr.Repository != tt.repo || pr.Author.AccountID != tt.author || pr.SourceCommit != tt.srcCommit || pr.State != model.PROpen {
				t.Errorf("got %s#%d by %s at %s, %s", pr.Repository, pr.ID, pr.Author.AccountID, pr.SourceCommit, pr.State)
			}
			var got []part
			for _, p := range pr.Participants {
				got = append(got, part{p.User.AccountID, p.Approved, p.State})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.parts) {
				t.Errorf("participants %v, want %v", got, tt.parts)
			}
			if n := len(pr.Approvals()); n != tt.approvals {
				t.Errorf("approvals %d, want %d", n, tt.approvals)
			}
			req := a.requests()[0]
			if u, p, ok := req.BasicAuth(); !ok || u != "bot@example.com" || p != "s3cret" {
				t.Errorf("basic auth %q %q %v", u, p, ok)
			}
			if req.Header.Get("Accept") != "application/json" {
				t.Errorf("accept %q", req.Header.Get("Accept"))
			}
		})
	}
}

func TestSetReviewersSendsTitleDescriptionAndReviewers(t *testing.T) {
	a := newAPI(t)
	a.on("PUT /repositories/amuniz/test-repos/pullrequests/1", fixture(t, "pullrequest_get__jenkins-bbs.json"))
	c := a.client(t, nil)
	revs := []model.Actor{
		{AccountID: "557058:aaaa", UUID: "{1}", DisplayName: "Ana"},
		{UUID: "{b0b}", DisplayName: "Bob (no account id)"},
		{AccountID: "557058:aaaa", DisplayName: "Ana again"},
	}
	pr, err := c.SetReviewers(context.Background(), "amuniz/test-repos", 1, "Release/release 1", "Ships the release.", revs)
	if err != nil {
		t.Fatal(err)
	}
	if pr.ID != 1 || pr.Title != "Release/release 1" {
		t.Errorf("returned %+v", pr)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a.body(0)), &body); err != nil {
		t.Fatal(err)
	}
	// The PUT replaces the resource: a description left out would be wiped.
	if len(body) != 3 || string(body["title"]) != `"Release/release 1"` || string(body["description"]) != `"Ships the release."` {
		t.Errorf("body %s: want title, description and reviewers", a.body(0))
	}
	if got := string(body["reviewers"]); got != `[{"account_id":"557058:aaaa"},{"uuid":"{b0b}"}]` {
		t.Errorf("reviewers %s", got)
	}
	if ct := a.requests()[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}

	for _, bad := range []struct {
		title string
		revs  []model.Actor
	}{{"", revs}, {"  ", revs}, {"t", []model.Actor{{DisplayName: "nobody"}}}} {
		if _, err := c.SetReviewers(context.Background(), "amuniz/test-repos", 1, bad.title, "", bad.revs); err == nil {
			t.Errorf("title %q reviewers %v: want an error", bad.title, bad.revs)
		}
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("%d requests: refused calls must not reach Bitbucket", n)
	}
}

func TestRetries(t *testing.T) {
	ok := fixture(t, "pullrequest_get__jenkins-bbs.json")
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantCalls int
		wantWaits []time.Duration
		wantErr   func(error) bool
	}{
		{
			name:      "429 with Retry-After seconds, then 200",
			handler:   sequence(status(429, map[string]string{"Retry-After": "3"}, fmt.Sprintf(errorJSON, "Rate limit for this resource has been exceeded")), ok),
			wantCalls: 2, wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name:      "429 with Retry-After date, then 200",
			handler:   sequence(status(429, map[string]string{"Retry-After": "Tue, 03 Nov 2026 10:00:07 GMT"}, ""), ok),
			wantCalls: 2, wantWaits: []time.Duration{7 * time.Second},
		},
		{
			name:      "503 twice, then 200",
			handler:   sequence(status(503, nil, "<html>busy</html>"), status(503, nil, ""), ok),
			wantCalls: 3, wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond},
		},
		{
			name:      "404 is not retried",
			handler:   status(404, nil, string(fixtures.Read(t, "bitbucket/api/error_not_found__go-scm.json"))),
			wantCalls: 1,
			wantErr: func(err error) bool {
				var e *upstream.Error
				return upstream.IsNotFound(err) && errors.As(err, &e) && e.Permanent() && !e.Temporary() &&
					e.Message == "Repository dev/null not found" && e.Endpoint == "GET /repositories/{ws}/{repo}/pullrequests/{id}"
			},
		},
		{
			name:      "500 until retries run out",
			handler:   status(500, nil, fmt.Sprintf(errorJSON, "Something went wrong")),
			wantCalls: 5, wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second},
			wantErr: func(err error) bool {
				var e *upstream.Error
				return errors.As(err, &e) && e.Temporary() && !e.Permanent() && e.StatusCode == 500 && !upstream.IsNotFound(err)
			},
		},
		{
			name:      "Retry-After beyond the cap is handed to the caller",
			handler:   status(429, map[string]string{"Retry-After": "3600"}, fmt.Sprintf(errorJSON, "Rate limit for this resource has been exceeded")),
			wantCalls: 1,
			wantErr: func(err error) bool {
				var e *upstream.Error
				return errors.As(err, &e) && e.Temporary() && e.RetryAfter() == time.Hour
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAPI(t)
			a.on("GET /repositories/amuniz/test-repos/pullrequests/1", tt.handler)
			c := a.client(t, nil)
			_, err := c.GetPullRequest(context.Background(), "amuniz/test-repos", 1)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !tt.wantErr(err) {
				t.Fatalf("err %v", err)
			}
			if n := len(a.requests()); n != tt.wantCalls || c.Calls() != int64(tt.wantCalls) {
				t.Errorf("server saw %d calls, client counted %d; want %d", n, c.Calls(), tt.wantCalls)
			}
			if fmt.Sprint(a.waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits %v, want %v", a.waits, tt.wantWaits)
			}
		})
	}
}

func TestPostRetriedOnlyWhenNotProcessed(t *testing.T) {
	a := newAPI(t)
	a.on("POST /repositories/ws/repo/pullrequests/3/comments", sequence(
		status(429, map[string]string{"Retry-After": "1"}, ""), // not processed: retried (without Retry-After it would go to the inbox)
		status(500, nil, ""), // maybe processed: a POST is not repeated
	))
	c := a.client(t, nil)
	_, err := c.CreateComment(context.Background(), "ws/repo", 3, "hello")
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 500 || !e.Temporary() {
		t.Fatalf("err %v", err)
	}
	if n := len(a.requests()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
	for i := range 2 {
		if a.body(i) != `{"content":{"raw":"hello"}}` {
			t.Errorf("attempt %d body %q: not replayed", i+1, a.body(i))
		}
	}
}

func TestNextLinkOnAnotherHostIsRefused(t *testing.T) {
	a := newAPI(t)
	// The fixture's next link points at bitbucket.org, not the API host.
	a.on("GET /repositories/ws/repo/pullrequests/5/statuses", fixture(t, "commit_statuses_list__go-scm.json"))
	c := a.client(t, nil)
	_, err := c.PullRequestStatuses(context.Background(), "ws/repo", 5)
	if err == nil || !strings.Contains(err.Error(), "bitbucket.org") {
		t.Fatalf("err %v, want a refused link", err)
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// pagesOf splits a fixture page's values into pages of n linked by next.
func pagesOf(t *testing.T, a *api, path, rel string, n int) http.HandlerFunc {
	var p struct {
		Values []json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(fixtures.Read(t, "bitbucket/api/"+rel), &p); err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		page := 1
		fmt.Sscan(r.URL.Query().Get("page"), &page)
		start := min((page-1)*n, len(p.Values))
		end := min(start+n, len(p.Values))
		out := map[string]any{"pagelen": n, "page": page, "size": len(p.Values), "values": p.Values[start:end]}
		if end < len(p.Values) {
			q := r.URL.Query()
			q.Set("page", fmt.Sprint(page+1))
			out["next"] = a.base() + path + "?" + q.Encode()
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}

func TestListCommentsFollowsPages(t *testing.T) {
	a := newAPI(t)
	path := "/repositories/myworkspace/myrepo/pullrequests/5/comments"
	a.on("GET "+path, pagesOf(t, a, path, "pullrequest_comments_list__atlantis.json", 2))
	c := a.client(t, nil)
	got, err := c.ListComments(context.Background(), "myworkspace/myrepo", 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, cm := range got {
		ids = append(ids, cm.ID)
	}
	if want := "498931784 498931802 498931882 498931901 49893111"; strings.Join(ids, " ") != want {
		t.Errorf("ids %v, want %s", ids, want)
	}
	if got[0].Body != "atlantis plan" || got[0].Author.AccountID != "000000:00000000-0000-0000-0000-000000000001" || got[0].CreatedAt.IsZero() {
		t.Errorf("first comment %+v", got[0])
	}
	reqs := a.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 pages", len(reqs))
	}
	for _, r := range reqs {
		if r.URL.Query().Get("pagelen") != "100" {
			t.Errorf("request %s without pagelen=100", r.URL)
		}
	}

	// maxPages bounds the walk.
	got, err = c.ListComments(context.Background(), "myworkspace/myrepo", 5, 2)
	if err != nil || len(got) != 4 {
		t.Errorf("two pages: %d comments, %v", len(got), err)
	}
}

func TestListPullRequestsQuery(t *testing.T) {
	a := newAPI(t)
	path := "/repositories/amuniz/test-repos/pullrequests"
	a.on("GET "+path, pagesOf(t, a, path, "pullrequests_list__jenkins-bbs.json", 3))
	c := a.client(t, nil)
	since := time.Date(2026, 10, 1, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	prs, err := c.ListPullRequests(context.Background(), "amuniz/test-repos", bitbucket.ListOptions{
		States: []model.PRState{model.PROpen, model.PRMerged}, UpdatedSince: since,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, p := range prs {
		ids = append(ids, p.ID)
	}
	if fmt.Sprint(ids) != "[11 8 9 1 3]" {
		t.Errorf("ids %v", ids)
	}
	q := a.requests()[0].URL.Query()
	if fmt.Sprint(q["state"]) != "[OPEN MERGED]" || q.Get("sort") != "-updated_on" || q.Get("pagelen") != "50" ||
		q.Get("q") != `updated_on > "2026-10-01T10:30:00.000000+00:00"` {
		t.Errorf("query %v", q)
	}
}

func TestPullRequestDiffStatFollowsRedirect(t *testing.T) {
	a := newAPI(t)
	a.on("GET /repositories/atlassian/atlaskit/pullrequests/7/diffstat", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.base()+"/repositories/atlassian/atlaskit/diffstat/atlassian/atlaskit:425863f9dbe5%0Ddec26e0fe887?from_pullrequest_id=7&topic=true", http.StatusFound)
	})
	a.on("GET /repositories/atlassian/atlaskit/diffstat/", fixture(t, "diffstat__go-scm.json"))
	c := a.client(t, nil)
	files, err := c.PullRequestDiffStat(context.Background(), "atlassian/atlaskit", 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.ChangedFile{
		{Path: "CONTRIBUTING.md", Status: model.FileModified},
		{Path: "new-folder/CONTRIBUTING.md", OldPath: "old-folder/CONTRIBUTING.md", Status: model.FileRenamed},
		{Path: "CONTRIBUTING.md", Status: model.FileRemoved},
	}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Errorf("files %v\nwant %v", files, want)
	}
	reqs := a.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	if q := reqs[1].URL.Query(); q.Get("pagelen") != "100" || q.Get("from_pullrequest_id") != "7" {
		t.Errorf("followed %s", reqs[1].URL)
	}
	if _, _, ok := reqs[1].BasicAuth(); !ok {
		t.Error("credentials missing on the API host after the redirect")
	}
}

// A pull request's own links.diffstat is its redirect's target: followed
// directly (one request) when it is this repository's diffstat for this
// pull request on the API host; any other link falls back to the redirect
// and never carries the credentials elsewhere.
func TestPullRequestDiffStatAtFollowsTheLink(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the other host with auth %q", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	a := newAPI(t)
	redirects := 0
	a.on("GET /repositories/atlassian/atlaskit/pullrequests/7/diffstat", func(w http.ResponseWriter, r *http.Request) {
		redirects++
		http.Redirect(w, r, a.base()+"/repositories/atlassian/atlaskit/diffstat/atlassian/atlaskit:425863f9dbe5%0Ddec26e0fe887?from_pullrequest_id=7&topic=true", http.StatusFound)
	})
	a.on("GET /repositories/atlassian/atlaskit/diffstat/", fixture(t, "diffstat__go-scm.json"))
	a.on("GET /repositories/atlassian/other/diffstat/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("followed a link to another repository: %s", r.URL)
	})
	c := a.client(t, nil)
	good := a.base() + "/repositories/atlassian/atlaskit/diffstat/atlassian/atlaskit:425863f9dbe5%0Ddec26e0fe887?from_pullrequest_id=7&topic=true"
	files, err := c.PullRequestDiffStatAt(context.Background(), "atlassian/atlaskit", 7, good)
	if err != nil || len(files) != 3 {
		t.Fatalf("files %v, %v", files, err)
	}
	reqs := a.requests()
	if len(reqs) != 1 || redirects != 0 || reqs[0].URL.Query().Get("pagelen") != "100" {
		t.Fatalf("%d requests (%d redirects), first %s", len(reqs), redirects, reqs[0].URL)
	}
	if _, _, ok := reqs[0].BasicAuth(); !ok {
		t.Error("credentials missing on the API host")
	}
	for name, link := range map[string]string{
		"no link":          "",
		"another host":     other.URL + "/prefix/2.0/repositories/atlassian/atlaskit/diffstat/x?from_pullrequest_id=7",
		"another repo":     a.base() + "/repositories/atlassian/other/diffstat/x?from_pullrequest_id=7",
		"another PR":       a.base() + "/repositories/atlassian/atlaskit/diffstat/x?from_pullrequest_id=8",
		"not the diffstat": a.base() + "/repositories/atlassian/atlaskit/src/x?from_pullrequest_id=7",
	} {
		before := redirects
		files, err := c.PullRequestDiffStatAt(context.Background(), "atlassian/atlaskit", 7, link)
		if err != nil || len(files) != 3 || redirects != before+1 {
			t.Errorf("%s: files %v, %v, redirects %d: want the redirect", name, files, err, redirects-before)
		}
	}
}

func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the other host with auth %q", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	a := newAPI(t)
	a.on("GET /repositories/ws/repo/pullrequests/7/diffstat", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/2.0/repositories/ws/repo/diffstat/x", http.StatusFound)
	})
	c := a.client(t, nil)
	if _, err := c.PullRequestDiffStat(context.Background(), "ws/repo", 7); err == nil {
		t.Fatal("want an error")
	}
}

func TestContextCancellation(t *testing.T) {
	t.Run("cancelled while backing off", func(t *testing.T) {
		a := newAPI(t)
		a.on("GET /repositories/ws/repo/pullrequests/1/comments", status(503, nil, ""))
		ctx, cancel := context.WithCancel(context.Background())
		c := a.client(t, nil, func(o *bitbucket.Options) {
			o.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
		})
		_, err := c.ListComments(ctx, "ws/repo", 1, 0)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		if n := len(a.requests()); n != 1 {
			t.Errorf("%d calls after cancel, want 1", n)
		}
	})
	t.Run("cancelled before the call", func(t *testing.T) {
		a := newAPI(t)
		a.on("GET /repositories/ws/repo/pullrequests/1", fixture(t, "pullrequest_get__jenkins-bbs.json"))
		c := a.client(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// GetPullRequest goes through go-bitbucket, which ignores contexts.
		if _, err := c.GetPullRequest(ctx, "ws/repo", 1); !errors.Is(err, context.Canceled) {
			t.Errorf("go-bitbucket path: err %v", err)
		}
		if _, err := c.ListComments(ctx, "ws/repo", 1, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("raw path: err %v", err)
		}
		if n := len(a.requests()); n != 0 || c.Calls() != 0 {
			t.Errorf("%d requests sent, %d counted; want none", n, c.Calls())
		}
	})
	t.Run("attempt timeout is retried", func(t *testing.T) {
		a := newAPI(t)
		release := make(chan struct{})
		defer close(release)
		a.on("GET /repositories/ws/repo/pullrequests/1", sequence(
			func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			},
			fixture(t, "pullrequest_get__jenkins-bbs.json"),
		))
		c := a.client(t, nil, func(o *bitbucket.Options) { o.Timeout = 50 * time.Millisecond })
		if _, err := c.GetPullRequest(context.Background(), "ws/repo", 1); err != nil {
			t.Fatalf("err %v", err)
		}
		if c.Calls() != 2 {
			t.Errorf("calls %d, want 2", c.Calls())
		}
	})
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue(), histCount(m)
		}
	}
	return 0, 0
}

func histCount(m *dto.Metric) uint64 {
	if h := m.GetHistogram(); h != nil {
		return h.GetSampleCount()
	}
	return 0
}

func TestMetricsCountEveryAttempt(t *testing.T) {
	a := newAPI(t)
	a.on("GET /repositories/amuniz/test-repos/pullrequests/1", sequence(status(503, nil, ""), fixture(t, "pullrequest_get__jenkins-bbs.json")))
	a.on("GET /repositories/amuniz/test-repos/pullrequests/1/diffstat", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.base()+"/repositories/amuniz/test-repos/diffstat/amuniz/test-repos:a%0Db?from_pullrequest_id=1", http.StatusFound)
	})
	a.on("GET /repositories/amuniz/test-repos/diffstat/", fixture(t, "diffstat__jenkins-bbs.json"))
	reg := prometheus.NewRegistry()
	c := a.client(t, reg)
	if _, err := c.GetPullRequest(context.Background(), "amuniz/test-repos", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PullRequestDiffStat(context.Background(), "amuniz/test-repos", 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		endpoint, code string
		want           float64
	}{
		{"GET /repositories/{ws}/{repo}/pullrequests/{id}", "503", 1},
		{"GET /repositories/{ws}/{repo}/pullrequests/{id}", "200", 1},
		{"GET /repositories/{ws}/{repo}/pullrequests/{id}/diffstat", "302", 1},
		{"GET /repositories/{ws}/{repo}/diffstat/{spec}", "200", 1},
	}
	for _, tt := range tests {
		got, _ := counter(t, reg, "rolekeeper_upstream_requests_total", map[string]string{"service": "bitbucket", "endpoint": tt.endpoint, "code": tt.code})
		if got != tt.want {
			t.Errorf("%s %s: %v, want %v", tt.endpoint, tt.code, got, tt.want)
		}
	}
	if _, n := counter(t, reg, "rolekeeper_upstream_request_duration_seconds", map[string]string{"service": "bitbucket", "endpoint": "GET /repositories/{ws}/{repo}/pullrequests/{id}"}); n != 2 {
		t.Errorf("duration samples %d, want 2", n)
	}
	if c.Calls() != 4 {
		t.Errorf("Calls %d, want 4", c.Calls())
	}
}

func TestCommitStatuses(t *testing.T) {
	a := newAPI(t)
	commit := "046d9a3c1532acf4cf08fe93235c00e4d673c1d2"
	a.on("POST /repositories/amuniz/test-repos/commit/"+commit+"/statuses/build", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(fixtures.Read(t, "bitbucket/api/commit_status__jenkins-bbs.json"))
	})
	a.on("GET /repositories/amuniz/test-repos/commit/"+commit+"/statuses/build/fe7e71305b004dd8dd5a124e1dae4c33", fixture(t, "commit_status__jenkins-bbs.json"))
	a.on("GET /repositories/amuniz/test-repos/commit/"+commit+"/statuses/build/missing", status(404, nil, fmt.Sprintf(errorJSON, "Not found")))
	c := a.client(t, nil)
	ctx := context.Background()
	st := model.CommitStatus{Key: "rolekeeper-review", State: "INPROGRESS", Name: "rolekeeper: review", Description: "waiting for 1 approval", URL: "https://rk.example.com/pr/1"}
	if err := c.SetCommitStatus(ctx, "amuniz/test-repos", commit, st); err != nil {
		t.Fatal(err)
	}
	var sent map[string]string
	if err := json.Unmarshal([]byte(a.body(0)), &sent); err != nil {
		t.Fatal(err)
	}
	if sent["key"] != st.Key || sent["state"] != st.State || sent["url"] != st.URL || sent["name"] != st.Name || sent["description"] != st.Description {
		t.Errorf("sent %v", sent)
	}
	got, err := c.GetCommitStatus(ctx, "amuniz/test-repos", commit, "fe7e71305b004dd8dd5a124e1dae4c33")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "FAILED" || got.Commit != commit || got.Name != "test » feature/test #36" || got.RefName != "" || !got.UpdatedAt.Equal(ts("2024-11-27T16:21:27.750703+00:00")) {
		t.Errorf("status %+v", got)
	}
	if _, err := c.GetCommitStatus(ctx, "amuniz/test-repos", commit, "missing"); !upstream.IsNotFound(err) {
		t.Errorf("missing: %v", err)
	}
	for _, bad := range []model.CommitStatus{{State: "FAILED", URL: "u"}, {Key: "k", URL: "u"}, {Key: "k", State: "FAILED"}} {
		if err := c.SetCommitStatus(ctx, "amuniz/test-repos", commit, bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	if err := c.SetCommitStatus(ctx, "amuniz/test-repos", "../../etc", st); err == nil {
		t.Error("bad commit accepted")
	}
}

func TestComments(t *testing.T) {
	a := newAPI(t)
	a.on("POST /repositories/brianharness/test/pullrequests/3/comments", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(fixtures.Read(t, "bitbucket/api/pullrequest_comment__go-scm.json"))
	})
	a.on("PUT /repositories/brianharness/test/pullrequests/3/comments/419169807", fixture(t, "pullrequest_comment__go-scm.json"))
	c := a.client(t, nil)
	cm, err := c.CreateComment(context.Background(), "brianharness/test", 3, "Lovely comment")
	if err != nil {
		t.Fatal(err)
	}
	if cm.ID != "419169807" || cm.Body != "Lovely comment" || cm.Author.AccountID != "60259ce8164527007100d945" || cm.Author.Nickname != "brian.jacobson" {
		t.Errorf("comment %+v", cm)
	}
	if err := c.UpdateComment(context.Background(), "brianharness/test", 3, cm.ID, "Lovelier"); err != nil {
		t.Fatal(err)
	}
	if a.body(1) != `{"content":{"raw":"Lovelier"}}` {
		t.Errorf("update body %s", a.body(1))
	}
	if err := c.UpdateComment(context.Background(), "brianharness/test", 3, "1/../2", "x"); err == nil {
		t.Error("bad comment id accepted")
	}
}

func TestCurrentUser(t *testing.T) {
	tests := []struct {
		file string
		want model.Actor
	}{
		{"user_current__atlantis.json", model.Actor{AccountID: "000000:00000000-0000-0000-0000-000000000001", UUID: "{00000000-0000-0000-0000-000000000001}", DisplayName: "bb bot", Nickname: "bb bot"}},
		{"user_current__go-scm.json", model.Actor{AccountID: "557058:2a6349dc-4346-4805-bd84-3abdd0812d17", UUID: "{87bb15eb-47c1-49b3-9f16-ca824a2979a4}", DisplayName: "Brad Rydzewski", Nickname: "brydzewski"}},
	}
	for _, tt := range tests {
		a := newAPI(t)
		a.on("GET /user", fixture(t, tt.file))
		c := a.client(t, nil, func(o *bitbucket.Options) { o.Username, o.Token, o.AccessToken = "", "", "tok" })
		got, err := c.CurrentUser(context.Background())
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v", tt.file, got, err)
		}
		if h := a.requests()[0].Header.Get("Authorization"); h != "Bearer tok" {
			t.Errorf("authorization %q", h)
		}
	}
}

// activityValues extracts the example pages from the activity endpoint's
// description in the OpenAPI spec (comment, update, approval).
func activityValues(t *testing.T) []json.RawMessage {
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(fixtures.Read(t, "specs/bitbucket-cloud-openapi3__scr2em-bitbucket-cli.json"), &spec); err != nil {
		t.Fatal(err)
	}
	var get struct {
		Description string `json:"description"`
	}
	if err := json.Unmarshal(spec.Paths["/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/activity"]["get"], &get); err != nil {
		t.Fatal(err)
	}
	desc := get.Description
	var out []json.RawMessage
	for _, m := range regexp.MustCompile("(?s)```\n(\\{.*?\\})\n```").FindAllStringSubmatch(desc, -1) {
		var p struct {
			Values []json.RawMessage `json:"values"`
		}
		if err := json.Unmarshal([]byte(m[1]), &p); err != nil {
			t.Fatalf("spec example: %v", err)
		}
		out = append(out, p.Values...)
	}
	if len(out) != 3 {
		t.Fatalf("%d activity examples in the spec, want 3", len(out))
	}
	return out
}

func TestPullRequestActivity(t *testing.T) {
	vals := activityValues(t)
	a := newAPI(t)
	a.on("GET /repositories/atlassian/atlaskit-mk-2/pullrequests/5695/activity", func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		out := map[string]any{"pagelen": 2, "values": vals[:2]}
		if page == "2" {
			out["values"] = vals[2:]
		} else {
			out["next"] = a.base() + r.URL.Path[len("/prefix/2.0"):] + "?pagelen=2&page=2"
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	c := a.client(t, nil)
	acts, err := c.PullRequestActivity(context.Background(), "atlassian/atlaskit-mk-2", 5695)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []model.PRActivityKind
	for _, x := range acts {
		kinds = append(kinds, x.Kind)
	}
	if fmt.Sprint(kinds) != "[comment update approval]" {
		t.Fatalf("kinds %v", kinds)
	}
	if acts[0].Comment == nil || acts[0].Comment.ID != "118571088" || acts[0].Comment.Body != "inline with to a dn from lines" || !acts[0].At.Equal(ts("2019-09-27T00:33:46.039178+00:00")) {
		t.Errorf("comment %+v %+v", acts[0], acts[0].Comment)
	}
	if acts[1].State != model.PROpen || acts[1].User.Nickname != "Name" || !acts[1].At.Equal(ts("2019-05-10T06:48:25.305565+00:00")) ||
		acts[1].SourceCommit != "728c8bad1813" {
		t.Errorf("update %+v", acts[1])
	}
	if acts[2].User.DisplayName != "Name Lastname" || !acts[2].At.Equal(ts("2019-09-27T00:37:19.849534+00:00")) {
		t.Errorf("approval %+v", acts[2])
	}
	if q := a.requests()[0].URL.Query(); q.Get("pagelen") != "50" {
		t.Errorf("pagelen %q, want 50 (the endpoint's maximum)", q.Get("pagelen"))
	}
}

// devlakeValues reads the "data" column of a devlake raw-table CSV.
func devlakeValues(t *testing.T, rel string) []json.RawMessage {
	rows, err := csv.NewReader(strings.NewReader(string(fixtures.Read(t, rel)))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	for _, row := range rows[1:] {
		out = append(out, json.RawMessage(row[2]))
	}
	return out
}

func TestListDeployments(t *testing.T) {
	named := devlakeValues(t, "bitbucket/api/deployments_list_rows__devlake.csv")
	// Without a fields parameter the environment carries its uuid only
	// (x-bb-default-fields in the OpenAPI spec).
	bare := json.RawMessage(`{"type":"deployment","uuid":"{d1}","state":{"type":"deployment_state_in_progress","name":"IN_PROGRESS","start_date":"2026-11-02T09:00:00.000000+00:00"},"environment":{"type":"deployment_environment","uuid":"{e-prod}"},"release":{"type":"deployment_release","name":"#7","commit":{"type":"commit","hash":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}}`)
	a := newAPI(t)
	a.on("GET /repositories/likyh/likyhphp/deployments/", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"pagelen": 50, "values": append([]json.RawMessage{bare}, named[:3]...)})
	})
	a.on("GET /repositories/likyh/likyhphp/environments/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"pagelen":50,"values":[{"type":"deployment_environment","uuid":"{e-prod}","name":"Production"}],"page":1,"size":1}`)
	})
	c := a.client(t, nil)
	ds, err := c.ListDeployments(context.Background(), "likyh/likyhphp", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 {
		t.Fatalf("%d deployments", len(ds))
	}
	if d := ds[0]; d.Environment != "Production" || d.State != "IN_PROGRESS" || d.BuildNumber != 7 || d.Commit != strings.Repeat("a", 40) {
		t.Errorf("bare %+v", d)
	}
	if d := ds[1]; d.Environment != "Staging" || d.State != "COMPLETED" || d.Commit != "ca4302e0e56c89332711e1b1051ab2f0110d4412" ||
		d.BuildNumber != 186 || d.PipelineUUID != "{5decbbb2-f4e6-4f3a-aab0-f74c40497c51}" || !d.At.Equal(ts("2023-02-20T09:38:52.307323Z")) {
		t.Errorf("devlake row %+v", d)
	}
}

func TestCommitPullRequestsIndexing(t *testing.T) {
	a := newAPI(t)
	commit := "a6e5e7d797edf751cbd839d6bd4aef86c941eec9"
	a.on("GET /repositories/ws/repo/commit/"+commit+"/pullrequests", sequence(
		status(http.StatusAccepted, nil, `{"type":"error","error":{"message":"still indexing"}}`),
		fixture(t, "pullrequests_list__go-scm.json"),
	))
	c := a.client(t, nil)
	_, err := c.CommitPullRequests(context.Background(), "ws/repo", commit)
	var e *upstream.Error
	if !errors.As(err, &e) || !e.Temporary() {
		t.Fatalf("202: err %v, want a temporary error", err)
	}
	prs, err := c.CommitPullRequests(context.Background(), "ws/repo", commit)
	if err != nil || len(prs) != 1 {
		t.Fatalf("%v %v", prs, err)
	}
	if q := a.requests()[1].URL.Query(); q.Get("pagelen") == "" {
		t.Error("no explicit pagelen")
	}
}

func TestErrorMessages(t *testing.T) {
	a := newAPI(t)
	a.on("PUT /repositories/ws/repo/pullrequests/2", status(400, nil,
		`{"type":"error","error":{"message":"Bad request","fields":{"reviewers":["Ana is the author and cannot be included as a reviewer."]}}}`))
	a.on("GET /repositories/ws/repo/pullrequests/2", status(403, nil, "<html>forbidden</html>"))
	c := a.client(t, nil)
	_, err := c.SetReviewers(context.Background(), "ws/repo", 2, "t", "d", []model.Actor{{AccountID: "x"}})
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || !e.Permanent() || e.Method != "PUT" ||
		e.Message != "Bad request: reviewers: Ana is the author and cannot be included as a reviewer." {
		t.Errorf("400: %#v", err)
	}
	_, err = c.GetPullRequest(context.Background(), "ws/repo", 2)
	if !errors.As(err, &e) || e.StatusCode != 403 || e.Message != "Forbidden" || !e.Permanent() {
		t.Errorf("403: %#v", err)
	}
}

func TestBadRepositoryRefused(t *testing.T) {
	a := newAPI(t)
	c := a.client(t, nil)
	for _, repo := range []string{"", "ws", "ws/", "/slug", "ws/slug/x", "ws/../x", "ws/sl ug", "ws/..", "ws/a?b"} {
		if _, err := c.GetPullRequest(context.Background(), repo, 1); err == nil {
			t.Errorf("%q accepted", repo)
		}
	}
	if n := len(a.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestEndpointTemplate(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"GET", "/repositories/ws/repo/pullrequests/12", "GET /repositories/{ws}/{repo}/pullrequests/{id}"},
		{"GET", "/repositories/ws/repo/pullrequests/12/diffstat", "GET /repositories/{ws}/{repo}/pullrequests/{id}/diffstat"},
		{"GET", "/repositories/ws/repo/pullrequests", "GET /repositories/{ws}/{repo}/pullrequests"},
		{"GET", "/repositories/ws/repo/pullrequests/activity", "GET /repositories/{ws}/{repo}/pullrequests/activity"},
		{"GET", "/repositories/ws/repo/diffstat/ws/repo:abc%0Ddef", "GET /repositories/{ws}/{repo}/diffstat/{spec}"},
		{"PUT", "/repositories/ws/repo/pullrequests/3/comments/99", "PUT /repositories/{ws}/{repo}/pullrequests/{id}/comments/{comment_id}"},
		{"POST", "/repositories/ws/repo/commit/abc123/statuses/build", "POST /repositories/{ws}/{repo}/commit/{hash}/statuses/build"},
		{"GET", "/repositories/ws/repo/commit/abc123/statuses/build/rolekeeper-review", "GET /repositories/{ws}/{repo}/commit/{hash}/statuses/build/{key}"},
		{"GET", "/repositories/ws/repo/deployments/", "GET /repositories/{ws}/{repo}/deployments"},
		{"GET", "/user", "GET /user"},
		{"GET", "/users/%7Babc%7D", "GET /users/{user}"},
		{"GET", "/", "GET /"},
		{"GET", "/weird/unknown/path", "GET /{param}/{param}/{param}"},
	}
	for _, tt := range tests {
		if got := bitbucket.EndpointTemplate(tt.method, tt.path); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestNoCredentialsToOtherHosts(t *testing.T) {
	// A next link on the API host but a different port is another origin.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("reached %s with %q", r.URL, r.Header.Get("Authorization"))
	}))
	defer other.Close()
	a := newAPI(t)
	a.on("GET /repositories/ws/repo/pullrequests/1/comments", func(w http.ResponseWriter, r *http.Request) {
		u, _ := url.Parse(other.URL)
		fmt.Fprintf(w, `{"values":[],"next":"%s/prefix/2.0/repositories/ws/repo/pullrequests/1/comments?page=2"}`, u.String())
	})
	c := a.client(t, nil)
	if _, err := c.ListComments(context.Background(), "ws/repo", 1, 5); err == nil {
		t.Error("want the next link refused")
	}
}

func TestMainBranchFromTheCapturedRepository(t *testing.T) {
	a := newAPI(t)
	a.on("GET /repositories/atlassian/stash-example-plugin", fixture(t, "repository_get__go-scm.json"))
	c := a.client(t, nil)
	if b, err := c.MainBranch(context.Background(), "atlassian/stash-example-plugin"); err != nil || b != "master" {
		t.Errorf("main branch %q %v", b, err)
	}
}
