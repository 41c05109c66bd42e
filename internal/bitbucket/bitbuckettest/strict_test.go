package bitbuckettest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// The fake refuses and forgets what Bitbucket Cloud refuses and forgets.
// Each test here fails against a fake that is kinder than the real API.

func rawPut(t *testing.T, s *bitbuckettest.Server, repo string, id int, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.URL()+"/repositories/"+repo+"/pullrequests/"+itoa(id), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFakePutReplacesThePullRequest(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Description: "Adds refunds.\n\nJira: PAY-12", Author: ana, Reviewers: []model.Actor{cai}})

	// A body without description (what go-bitbucket and old rolekeeper sent)
	// drops it, as Bitbucket does (git-spice #1161).
	if code, b := rawPut(t, s, repo, id, `{"title":"Refunds","reviewers":[{"account_id":"`+ben.AccountID+`"}]}`); code != 200 {
		t.Fatalf("put: %d %s", code, b)
	}
	pr, _ := s.PullRequest(repo, id)
	if pr.Description != "" {
		t.Errorf("description %q survived a PUT that left it out", pr.Description)
	}
	if len(pr.Reviewers) != 1 || pr.Reviewers[0].AccountID != ben.AccountID {
		t.Errorf("reviewers %+v: want replaced by ben", pr.Reviewers)
	}
	// Reviewers left out are dropped too.
	if code, b := rawPut(t, s, repo, id, `{"title":"Refunds","description":"back"}`); code != 200 {
		t.Fatalf("put: %d %s", code, b)
	}
	if pr, _ := s.PullRequest(repo, id); len(pr.Reviewers) != 0 || pr.Description != "back" {
		t.Errorf("after a PUT without reviewers: %+v %q", pr.Reviewers, pr.Description)
	}
	// No title: 400 with Bitbucket's error body, nothing changed.
	code, b := rawPut(t, s, repo, id, `{"description":"x"}`)
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Message string              `json:"message"`
			Fields  map[string][]string `json:"fields"`
		} `json:"error"`
	}
	if code != 400 || json.Unmarshal(b, &e) != nil || e.Type != "error" || len(e.Error.Fields["title"]) == 0 {
		t.Errorf("no title: %d %s", code, b)
	}
	if pr, _ := s.PullRequest(repo, id); pr.Description != "back" || pr.Title != "Refunds" {
		t.Errorf("a refused PUT changed the pull request: %+v", pr)
	}
	// The honest PUT (what the client sends) keeps everything.
	c := newClient(t, s, nil)
	if _, err := c.SetReviewers(context.Background(), repo, id, "Refunds", "back", []model.Actor{cai}); err != nil {
		t.Fatal(err)
	}
	if pr, _ := s.PullRequest(repo, id); pr.Description != "back" || pr.Title != "Refunds" || len(pr.Reviewers) != 1 {
		t.Errorf("honest PUT: %+v", pr)
	}
}

func TestFakeRefusesTheAuthorAsReviewer(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	_, err := newClient(t, s, nil).SetReviewers(context.Background(), repo, id, "Refunds", "", []model.Actor{ben, ana})
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || !upstream.IsPermanent(err) || !strings.Contains(e.Message, "cannot be included as a reviewer") {
		t.Fatalf("author as reviewer: %v", err)
	}
	if got := s.Reviewers(repo, id); len(got) != 0 {
		t.Errorf("refused PUT changed reviewers: %+v", got)
	}
}

func TestFakeApprovalsSurvivePushesAndActivityDatesThem(t *testing.T) {
	s, clk := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana, Reviewers: []model.Actor{cai}})
	if err := s.Approve(repo, id, cai); err != nil {
		t.Fatal(err)
	}
	// Ben pushes a commit onto Ana's branch; its own date claims last year.
	backdated := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	hash, err := s.Push(repo, id, bitbuckettest.Commit{Author: ben, Pusher: ben, Date: backdated})
	if err != nil {
		t.Fatal(err)
	}
	pushedAt := clk.t // the clock's last reading stamped the push
	c := newClient(t, s, nil)
	ctx := context.Background()

	pr, err := c.GetPullRequest(ctx, repo, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Approvals()) != 1 || pr.Approvals()[0].AccountID != cai.AccountID {
		t.Errorf("approval lost on push: %+v", pr.Participants)
	}
	if !strings.HasPrefix(hash, pr.SourceCommit) || len(hash) != 40 {
		t.Errorf("head %s, pushed %s", pr.SourceCommit, hash)
	}

	acts, err := c.PullRequestActivity(ctx, repo, id)
	if err != nil {
		t.Fatal(err)
	}
	var approvalAt time.Time
	for _, a := range acts {
		if a.Kind == model.ActivityApproval && a.User.AccountID == cai.AccountID {
			approvalAt = a.At
		}
	}
	if approvalAt.IsZero() {
		t.Fatalf("no dated approval in %+v", acts)
	}
	if acts[0].Kind != model.ActivityUpdate || acts[0].User.AccountID != ben.AccountID || !model.SameCommit(acts[0].SourceCommit, hash) {
		t.Errorf("newest entry %+v: want ben's push of %s", acts[0], hash)
	}
	last, ok := model.LastPush(acts, hash, false)
	if !ok || !last.Equal(pushedAt) || !approvalAt.Before(last) {
		t.Errorf("last push %v (%v), approval %v, pushed at %v", last, ok, approvalAt, pushedAt)
	}
	// The first head is still named by the older update entry.
	if first, ok := model.LastPush(acts, acts[len(acts)-1].SourceCommit, false); !ok || !first.Before(last) {
		t.Errorf("first head pushed %v %v", first, ok)
	}

	commits, err := c.PullRequestCommits(ctx, repo, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 2 || commits[0].Hash != hash || commits[0].Author.AccountID != ben.AccountID ||
		!commits[0].Date.Equal(backdated) || !strings.Contains(commits[0].AuthorRaw, "Ben Lee") {
		t.Errorf("commits %+v", commits)
	}
	if commits[1].Author.AccountID != ana.AccountID {
		t.Errorf("first commit's author %+v, want ana", commits[1].Author)
	}

	// A commit whose email Bitbucket cannot map carries only its raw line.
	ghost, err := s.Push(repo, id, bitbuckettest.Commit{AuthorRaw: "Ghost <ghost@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	commits, _ = c.PullRequestCommits(ctx, repo, id)
	if commits[0].Hash != ghost || commits[0].Author != (model.Actor{}) || commits[0].AuthorRaw != "Ghost <ghost@example.com>" {
		t.Errorf("unmapped %+v", commits[0])
	}
}

func TestFakeResolvesShortCommits(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	pr, _ := s.PullRequest(repo, id)
	c := newClient(t, s, nil)
	full, err := c.ResolveCommit(context.Background(), repo, pr.SourceCommit)
	if err != nil || len(full) != 40 || !strings.HasPrefix(full, pr.SourceCommit) {
		t.Fatalf("%q %v", full, err)
	}
	if _, err := c.ResolveCommit(context.Background(), repo, strings.Repeat("0", 12)); !upstream.IsNotFound(err) {
		t.Errorf("unknown commit: %v", err)
	}
}

func TestFakeRefusesLongStatusKeys(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	pr, _ := s.PullRequest(repo, id)
	c := newClient(t, s, nil)
	ctx := context.Background()
	long := "rolekeeper-deploy-" + strings.Repeat("e", 23) // 41 characters
	err := c.SetCommitStatus(ctx, repo, pr.SourceCommit, model.CommitStatus{Key: long, State: "INPROGRESS", URL: "http://127.0.0.1/g"})
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || !upstream.IsPermanent(err) || !strings.Contains(e.Message, "at most 40 characters") || !strings.Contains(e.Message, "key") {
		t.Fatalf("41-character key: %v", err)
	}
	if len(s.Statuses(repo, pr.SourceCommit)) != 0 {
		t.Error("a refused status was stored")
	}
	ok40 := long[:40]
	if err := c.SetCommitStatus(ctx, repo, pr.SourceCommit, model.CommitStatus{Key: ok40, State: "INPROGRESS", URL: "http://127.0.0.1/g"}); err != nil {
		t.Fatalf("40-character key: %v", err)
	}
	if _, found := s.Statuses(repo, pr.SourceCommit)[ok40]; !found {
		t.Error("40-character key not stored")
	}
}

func TestFakeDeletedCommentIsA404(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	c := newClient(t, s, nil)
	ctx := context.Background()
	mine, err := c.CreateComment(ctx, repo, id, "rolekeeper: asked Cai")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateComment(ctx, repo, id, mine.ID, "rolekeeper: asked Ben"); err != nil {
		t.Fatalf("honest edit: %v", err)
	}
	if err := s.DeleteComment(repo, id, mine.ID); err != nil {
		t.Fatal(err)
	}
	err = c.UpdateComment(ctx, repo, id, mine.ID, "rolekeeper: asked Dee")
	var e *upstream.Error
	if !errors.As(err, &e) || !upstream.IsNotFound(err) || !upstream.IsPermanent(err) || e.Service != "bitbucket" || e.Message == "" {
		t.Fatalf("edit of a deleted comment: %#v", err)
	}
	// A comment that never was answers the same.
	if err := c.UpdateComment(ctx, repo, id, "999999", "x"); !errors.As(err, &e) || !upstream.IsNotFound(err) || e.Service != "bitbucket" {
		t.Errorf("edit of an unknown comment: %#v", err)
	}
	if list, _ := c.ListComments(ctx, repo, id, 0); len(list) != 0 {
		t.Errorf("deleted comment listed: %+v", list)
	}
	// The raw answer is Bitbucket's error body.
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/repositories/"+repo+"/pullrequests/"+itoa(id)+"/comments/"+mine.ID, bytes.NewReader([]byte(`{"content":{"raw":"x"}}`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != 404 || json.NewDecoder(resp.Body).Decode(&body) != nil || body.Type != "error" || body.Error.Message == "" {
		t.Errorf("raw 404: %d %+v", resp.StatusCode, body)
	}
}

// TestFakeForcePushOfATwin: an amend force-pushed over the head leaves the
// pull request's commits, stays a commit of the repository, and the
// activity names both heads by the same 12 hex (what makes a twin of an
// approved head look like an edit of it).
func TestFakeForcePushOfATwin(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	a := "0123456789ab" + strings.Repeat("a", 28)
	twin := "0123456789ab" + strings.Repeat("b", 28)
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana, SourceCommit: a})
	if _, err := s.Push(repo, id, bitbuckettest.Commit{Hash: twin, Force: true}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, nil)
	ctx := context.Background()
	commits, err := c.PullRequestCommits(ctx, repo, id)
	if err != nil || len(commits) != 1 || commits[0].Hash != twin {
		t.Fatalf("commits after the force push %+v %v: want the twin alone", commits, err)
	}
	// Both are commits of the repository: their 12 hex name no single one.
	if _, err := c.ResolveCommit(ctx, repo, a[:12]); !upstream.IsNotFound(err) {
		t.Errorf("resolve the shared 12 hex: %v, want 404", err)
	}
	if full, err := c.ResolveCommit(ctx, repo, a); err != nil || full != a {
		t.Errorf("the force-pushed-over head is gone from the repository: %q %v", full, err)
	}
	acts, err := c.PullRequestActivity(ctx, repo, id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range acts {
		if e.Kind == model.ActivityUpdate {
			n++
			if e.SourceCommit != a[:12] {
				t.Errorf("update entry names %q, want the 12 hex %q", e.SourceCommit, a[:12])
			}
		}
	}
	if n < 2 {
		t.Errorf("%d update entries, want the creation and the push", n)
	}
}

// TestFakeMainBranch: the repository resource names its main branch, as
// the captured repository_get fixture does.
func TestFakeMainBranch(t *testing.T) {
	s, _ := newServer(t)
	c := newClient(t, s, nil)
	s.AddRepository("acme/payments")
	if b, err := c.MainBranch(context.Background(), "acme/payments"); err != nil || b != "main" {
		t.Errorf("main branch %q %v", b, err)
	}
	s.SetMainBranch("acme/payments", "master")
	if b, err := c.MainBranch(context.Background(), "acme/payments"); err != nil || b != "master" {
		t.Errorf("main branch %q %v", b, err)
	}
	if _, err := c.MainBranch(context.Background(), "acme/none"); !upstream.IsNotFound(err) {
		t.Errorf("unknown repository: %v", err)
	}
}

// Edits and reviewer changes are `update` entries too, dated and naming the
// source head as a 12-hex hash (the same one the pushes name): only
// entries that name a new head are pushes.
func TestFakeEditsAndReviewerChangesAreUpdateEntries(t *testing.T) {
	s, clk := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Description: "Adds refunds.", Author: ana})
	c := newClient(t, s, nil)
	ctx := context.Background()
	head, _ := s.PullRequest(repo, id)

	if _, err := c.SetReviewers(ctx, repo, id, "Refunds", "Adds refunds.", []model.Actor{cai}); err != nil {
		t.Fatal(err)
	}
	putAt := clk.t
	title, draft := "Refunds (v2)", true
	if err := s.Edit(repo, id, ana, bitbuckettest.Edit{Title: &title, Draft: &draft, Reviewers: &[]model.Actor{ben}}); err != nil {
		t.Fatal(err)
	}
	editAt := clk.t
	pr, _ := s.PullRequest(repo, id)
	if pr.Title != title || !pr.Draft || pr.DestinationBranch != "main" || len(pr.Reviewers) != 1 || pr.Reviewers[0].AccountID != ben.AccountID ||
		pr.Description != "Adds refunds." || !pr.UpdatedAt.Equal(editAt) {
		t.Errorf("after the edit: %+v", pr)
	}
	acts, err := c.PullRequestActivity(ctx, repo, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 3 {
		t.Fatalf("activity %+v: want the opening, the PUT and the edit", acts)
	}
	for i, want := range []struct {
		at time.Time
		by string
	}{{editAt, ana.AccountID}, {putAt, s.CurrentUser().AccountID}} {
		a := acts[i]
		if a.Kind != model.ActivityUpdate || !a.At.Equal(want.at) || a.User.AccountID != want.by ||
			a.SourceCommit != head.SourceCommit || len(a.SourceCommit) != 12 {
			t.Errorf("entry %d = %+v, want an update by %s at %v naming %s", i, a, want.by, want.at, head.SourceCommit)
		}
	}
	// None of them is a push: the head was pushed when the pull request opened.
	if last, ok := model.LastPush(acts, head.SourceCommit, false); !ok || !last.Before(putAt) {
		t.Errorf("last push %v %v, want the opening", last, ok)
	}
	// A retarget is an update entry too; each entry is a snapshot naming
	// the destination it left: the diff is new from the retarget on.
	if err := s.Edit(repo, id, ana, bitbuckettest.Edit{DestinationBranch: "release/1"}); err != nil {
		t.Fatal(err)
	}
	retargetAt := clk.t
	if acts, err = c.PullRequestActivity(ctx, repo, id); err != nil {
		t.Fatal(err)
	}
	if len(acts) != 4 || acts[0].DestinationBranch != "release/1" || acts[1].DestinationBranch != "main" || acts[3].DestinationBranch != "main" {
		t.Errorf("destinations of the entries: %+v", acts)
	}
	if last, ok := model.LastPush(acts, head.SourceCommit, false); !ok || !last.Equal(retargetAt) {
		t.Errorf("last push %v %v, want the retarget at %v", last, ok, retargetAt)
	}
	// Bitbucket refuses the author as a reviewer in the web interface too.
	if err := s.Edit(repo, id, ana, bitbuckettest.Edit{Reviewers: &[]model.Actor{ana}}); err == nil {
		t.Error("the author was made a reviewer")
	}
	if acts2, _ := c.PullRequestActivity(ctx, repo, id); len(acts2) != 4 {
		t.Errorf("a refused edit left an entry: %d", len(acts2))
	}
}

// A fault can let requests through first and match one endpoint only, so
// that a test fails "the second status post" and nothing else.
func TestFakeFaultSkipsAndMatchesOneEndpoint(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	pr, _ := s.PullRequest(repo, id)
	var waits []time.Duration
	c, err := bitbucket.New(bitbucket.Options{BaseURL: s.URL(), MaxRetries: -1,
		Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Fail(bitbuckettest.Fault{Endpoint: "POST /repositories/{ws}/{repo}/commit/{hash}/statuses/build", Skip: 1, Times: 1, Status: 429, RetryAfter: "7"})
	post := func(key string) error {
		return c.SetCommitStatus(ctx, repo, pr.SourceCommit, model.CommitStatus{Key: key, State: "INPROGRESS", URL: "http://127.0.0.1/d"})
	}
	if err := post("first"); err != nil {
		t.Fatalf("first post: %v", err)
	}
	// Another endpoint, and a path that contains the same words, pass.
	if _, err := c.CreateComment(ctx, repo, id, "statuses/build"); err != nil {
		t.Fatalf("comment: %v", err)
	}
	err = post("second")
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 429 || !e.Temporary() || e.RetryAfter() != 7*time.Second {
		t.Fatalf("second post: %#v", err)
	}
	if err := post("third"); err != nil {
		t.Fatalf("third post: %v", err)
	}
	got := s.Statuses(repo, pr.SourceCommit)
	if _, ok := got["second"]; ok || len(got) != 2 {
		t.Errorf("statuses %v", got)
	}
	// Path and method matchers together.
	s.Fail(bitbuckettest.Fault{Method: "put", Path: "/pullrequests/", Times: 1, Status: 400})
	if _, err := c.SetReviewers(ctx, repo, id, "Refunds", "", nil); !upstream.IsPermanent(err) {
		t.Errorf("PUT: %v", err)
	}
	if _, err := c.GetPullRequest(ctx, repo, id); err != nil {
		t.Errorf("GET after a PUT fault: %v", err)
	}
}

// The commit-links index: without it Bitbucket cannot say which pull
// requests hold a commit (404), while it builds it answers 202.
func TestFakeCommitLinkIndex(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	pr, _ := s.PullRequest(repo, id)
	c := newClient(t, s, nil)
	ctx := context.Background()
	if prs, err := c.CommitPullRequests(ctx, repo, pr.SourceCommit); err != nil || len(prs) != 1 || prs[0].ID != id {
		t.Fatalf("indexed: %+v %v", prs, err)
	}
	s.SetLinkIndex(repo, bitbuckettest.IndexBuilding)
	_, err := c.CommitPullRequests(ctx, repo, pr.SourceCommit)
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 202 || !e.Temporary() {
		t.Errorf("building: %#v", err)
	}
	s.SetLinkIndex(repo, bitbuckettest.IndexMissing)
	if _, err := c.CommitPullRequests(ctx, repo, pr.SourceCommit); !upstream.IsNotFound(err) {
		t.Errorf("missing: %v", err)
	}
	// Only that lookup depends on the index.
	if _, err := c.GetPullRequest(ctx, repo, id); err != nil {
		t.Errorf("pull request read without the index: %v", err)
	}
}

// An outage lasts until the faults are cleared.
func TestFakeClearFaults(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	c, err := bitbucket.New(bitbucket.Options{BaseURL: s.URL(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Fail(bitbuckettest.Fault{Status: 503, Times: 1 << 20})
	for range 3 {
		if _, err := c.GetPullRequest(context.Background(), repo, id); err == nil {
			t.Fatal("answered during the outage")
		}
	}
	s.ClearFaults()
	if _, err := c.GetPullRequest(context.Background(), repo, id); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

// An outage on a test's clock, answered with a maintenance page as a proxy
// in front of Bitbucket does: the client reads no JSON error from it.
func TestFakeOutageWindow(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	c, err := bitbucket.New(bitbucket.Options{BaseURL: s.URL(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	s.Fail(bitbuckettest.Fault{Status: 503, Times: 1 << 20, HTML: true, When: down.Load})
	ctx := context.Background()
	if _, err := c.GetPullRequest(ctx, repo, id); err != nil || s.Faulted() != 0 {
		t.Fatalf("before the outage: %v, %d faulted", err, s.Faulted())
	}
	down.Store(true)
	_, err = c.GetPullRequest(ctx, repo, id)
	var e *upstream.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || !e.Temporary() || e.Message != "Service Unavailable" || s.Faulted() != 1 {
		t.Errorf("during the outage: %#v, %d faulted", err, s.Faulted())
	}
	resp, err := http.Get(s.URL() + "/repositories/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("raw answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	down.Store(false)
	if _, err := c.GetPullRequest(ctx, repo, id); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

// Held requests wait unanswered until Release; one whose client gives up
// leaves the count.
func TestFakeHoldsRequests(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Refunds", Author: ana})
	c, err := bitbucket.New(bitbucket.Options{BaseURL: s.URL(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Hold()
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.GetPullRequest(context.Background(), repo, id)
			done <- err
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.GetPullRequest(ctx, repo, id)
		gaveUp <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Held() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests held, want 3", s.Held())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("a held request was answered: %v", err)
	default:
	}
	cancel()
	if err := <-gaveUp; err == nil {
		t.Error("a request whose client gave up was answered")
	}
	for s.Held() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests held after one gave up, want 2", s.Held())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Release()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("released request: %v", err)
		}
	}
	if s.Held() != 0 || s.TotalCalls() != 2 {
		t.Errorf("held %d, answered %d", s.Held(), s.TotalCalls())
	}
}
