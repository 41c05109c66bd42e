package bitbuckettest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

var (
	ana = model.Actor{AccountID: "712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11", DisplayName: "Amara Okafor", Nickname: "amara"}
	ben = model.Actor{AccountID: "5c7c7b1a0b79db7c3e33eca2", DisplayName: "Ben Lee", Nickname: "ben"}
	cai = model.Actor{AccountID: "557058:2a6349dc-4346-4805-bd84-3abdd0812d17", DisplayName: "Cai Wu", Nickname: "cai"}
)

// clock advances one second per reading, at microsecond precision like
// Bitbucket's timestamps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second + 1500*time.Nanosecond).Truncate(time.Microsecond)
	return c.t
}

func newServer(t *testing.T) (*bitbuckettest.Server, *clock) {
	t.Helper()
	s := bitbuckettest.New()
	t.Cleanup(s.Close)
	c := &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	s.SetClock(c.now)
	for _, a := range []model.Actor{ana, ben, cai} {
		s.AddUser(a)
	}
	return s, c
}

func newClient(t *testing.T, s *bitbuckettest.Server, waits *[]time.Duration) *bitbucket.Client {
	t.Helper()
	c, err := bitbucket.New(bitbucket.Options{
		BaseURL: s.URL(), Username: "bot@example.com", Token: "tok",
		Sleep: func(ctx context.Context, d time.Duration) error {
			if waits != nil {
				*waits = append(*waits, d)
			}
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canon makes pull requests comparable: UTC times, nil for empty slices.
func canon(p model.PullRequest) model.PullRequest {
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	if len(p.Reviewers) == 0 {
		p.Reviewers = nil
	}
	if len(p.Participants) == 0 {
		p.Participants = nil
	}
	parts := make([]model.Participant, len(p.Participants))
	for i, pt := range p.Participants {
		pt.On = pt.On.UTC()
		parts[i] = pt
	}
	if p.Participants != nil {
		p.Participants = parts
	}
	return p
}

func samePR(t *testing.T, what string, got, want model.PullRequest) {
	t.Helper()
	if g, w := canon(got), canon(want); !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", " ")
		wj, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("%s:\n got %s\nwant %s", what, gj, wj)
	}
}

func TestWebhookBodiesRoundTrip(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{
		Title: "Add refunds", Description: "Refund API & <docs>", Author: ana,
		SourceBranch: "feature/refunds", Reviewers: []model.Actor{ben},
		Files: []model.ChangedFile{{Path: "api/refunds.go", Status: model.FileAdded}},
	})
	steps := []struct {
		key   string
		actor model.Actor
		do    func() error
		check func(t *testing.T, ev *model.Event)
	}{
		{"pullrequest:created", ana, func() error { return nil }, nil},
		{"pullrequest:approved", ben, func() error { return s.Approve(repo, id, ben) }, func(t *testing.T, ev *model.Event) {
			if ev.Approval == nil || ev.Approval.AccountID != ben.AccountID || ev.Approval.State != model.ReviewApproved || ev.Approval.At.IsZero() {
				t.Errorf("approval %+v", ev.Approval)
			}
			if a := ev.PullRequest.Approvals(); len(a) != 1 || a[0].AccountID != ben.AccountID || !a[0].At.Equal(ev.Approval.At) {
				t.Errorf("approvals %+v", a)
			}
		}},
		{"pullrequest:changes_request_created", cai, func() error { return s.RequestChanges(repo, id, cai) }, func(t *testing.T, ev *model.Event) {
			if ev.Approval == nil || ev.Approval.AccountID != cai.AccountID || ev.Approval.State != model.ReviewChangesRequested {
				t.Errorf("change request %+v", ev.Approval)
			}
		}},
		{"pullrequest:unapproved", ben, func() error { return s.Unapprove(repo, id, ben) }, func(t *testing.T, ev *model.Event) {
			if ev.Approval == nil || ev.Approval.AccountID != ben.AccountID || ev.Approval.State != model.ReviewNone {
				t.Errorf("unapproval %+v", ev.Approval)
			}
		}},
		{"pullrequest:changes_request_removed", cai, func() error { return s.RemoveChangesRequest(repo, id, cai) }, nil},
		{"pullrequest:push", ana, func() error {
			return s.PushCommit(repo, id, strings.Repeat("ab", 20), []model.ChangedFile{{Path: "helm/values.yaml", Status: model.FileModified}})
		}, func(t *testing.T, ev *model.Event) {
			if ev.PullRequest.SourceCommit != "abababababab" {
				t.Errorf("source commit %q", ev.PullRequest.SourceCommit)
			}
		}},
		{"pullrequest:updated", ana, func() error { return nil }, nil},
		{"pullrequest:fulfilled", ben, func() error { return s.Merge(repo, id, ben, strings.Repeat("c", 40)) }, func(t *testing.T, ev *model.Event) {
			if ev.PullRequest.State != model.PRMerged || ev.PullRequest.MergeCommit != "cccccccccccc" || ev.PullRequest.ClosedBy == nil || ev.PullRequest.ClosedBy.AccountID != ben.AccountID {
				t.Errorf("merged %+v", ev.PullRequest)
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.key, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			body := s.WebhookBody(st.key, repo, id, st.actor)
			ev, err := bitbucket.ParseWebhook(st.key, body)
			if err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			want, _ := bitbucket.EventKind(st.key)
			if ev.Kind != want || ev.Repository != repo || ev.Actor.AccountID != st.actor.AccountID || ev.Actor.DisplayName != st.actor.DisplayName || ev.Actor.UUID == "" {
				t.Errorf("event %s %s %+v", ev.Kind, ev.Repository, ev.Actor)
			}
			cur, err := s.PullRequest(repo, id)
			if err != nil {
				t.Fatal(err)
			}
			samePR(t, "parsed pull request vs the fake's state", *ev.PullRequest, cur)
			if st.check != nil {
				st.check(t, ev)
			}
		})
	}

	t.Run("comment", func(t *testing.T) {
		cid := s.AddComment(repo, id, cai, "Looks good, but see **helm** values")
		ev, err := bitbucket.ParseWebhook("pullrequest:comment_created", s.WebhookCommentBody(repo, id, cid))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != model.EventPRComment || ev.Comment == nil || ev.Comment.ID != cid || ev.Comment.Body != "Looks good, but see **helm** values" ||
			ev.Comment.Author.AccountID != cai.AccountID || ev.Actor.AccountID != cai.AccountID {
			t.Errorf("comment event %+v %+v", ev, ev.Comment)
		}
		if got := s.Comments(repo, id); len(got) != 1 || got[0].ID != cid || !got[0].CreatedAt.Equal(ev.Comment.CreatedAt) {
			t.Errorf("comments %+v", got)
		}
		if s.WebhookCommentBody(repo, id, "404") != nil || s.WebhookBody("pullrequest:created", repo, 99, ana) != nil {
			t.Error("bodies for things that do not exist")
		}
	})

	t.Run("push", func(t *testing.T) {
		ev, err := bitbucket.ParseWebhook("repo:push", s.WebhookPushBody(repo, "main", strings.Repeat("1", 40), strings.Repeat("c", 40), ben))
		if err != nil {
			t.Fatal(err)
		}
		// A range the fake cannot tell lists nothing and says truncated:
		// never a complete list.
		want := []model.PushChange{{RefType: "branch", RefName: "main", OldCommit: strings.Repeat("1", 40), NewCommit: strings.Repeat("c", 40)}}
		if !reflect.DeepEqual(ev.Push.Changes, want) || ev.Actor.AccountID != ben.AccountID {
			t.Errorf("push %+v", ev.Push.Changes)
		}
		// A push onto the pull request's branch lists the commit it
		// brought, with its author's account, as Bitbucket does.
		open := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Fix refunds", Author: ana, SourceBranch: "feature/fix"})
		old, err := s.Push(repo, open, bitbuckettest.Commit{})
		if err != nil {
			t.Fatal(err)
		}
		hash, err := s.Push(repo, open, bitbuckettest.Commit{Author: ben, Pusher: ben})
		if err != nil {
			t.Fatal(err)
		}
		ev, err = bitbucket.ParseWebhook("repo:push", s.WebhookPushBody(repo, "feature/fix", old, hash, ben))
		if err != nil || len(ev.Push.Changes) != 1 {
			t.Fatalf("push %+v %v", ev, err)
		}
		c := ev.Push.Changes[0]
		if !c.CommitsComplete || len(c.Commits) != 1 || c.Commits[0].Hash != hash || c.Commits[0].Author.AccountID != ben.AccountID {
			t.Errorf("pushed commits %+v (complete %v)", c.Commits, c.CommitsComplete)
		}
		ev, err = bitbucket.ParseWebhook("repo:push", s.WebhookPushBody(repo, "feature/refunds", strings.Repeat("ab", 20), "", ana))
		if err != nil || len(ev.Push.Changes) != 1 || !ev.Push.Changes[0].Closed || ev.Push.Changes[0].NewCommit != "" {
			t.Errorf("branch deletion %+v %v", ev.Push, err)
		}
	})

	t.Run("commit status", func(t *testing.T) {
		pipelines := model.Actor{UUID: "{612f7b18-b167-4bff-8ee9-d43570117ff1}", DisplayName: "Acme", Nickname: "acme", IsTeam: true}
		s.SetCommitStatus(repo, "abababababab", model.CommitStatus{Key: "42", State: "SUCCESSFUL", Name: "Pipeline #42", URL: "https://ci.example.com/42", RefName: "feature/refunds"})
		ev, err := bitbucket.ParseWebhook("repo:commit_status_updated", s.WebhookCommitStatusBody(repo, "abababababab", "42", pipelines))
		if err != nil {
			t.Fatal(err)
		}
		cs := ev.CommitStatus
		if ev.Actor != pipelines || cs.Commit != strings.Repeat("ab", 20) || cs.State != "SUCCESSFUL" || cs.RefName != "feature/refunds" || cs.URL != "https://ci.example.com/42" {
			t.Errorf("status event %+v %+v", ev.Actor, cs)
		}
	})
}

func TestClientAgainstFake(t *testing.T) {
	s, _ := newServer(t)
	s.RequireAuth("bot@example.com", "tok")
	var waits []time.Duration
	c := newClient(t, s, &waits)
	ctx := context.Background()
	const repo = "acme/payments"
	var files []model.ChangedFile
	for i := range 250 {
		files = append(files, model.ChangedFile{Path: fmt.Sprintf("svc/file%03d.go", i), Status: model.FileModified})
	}
	files[0] = model.ChangedFile{Path: "helm/values.yaml", OldPath: "chart/values.yaml", Status: model.FileRenamed}
	files[1] = model.ChangedFile{Path: "Dockerfile", Status: model.FileRemoved}
	files[2] = model.ChangedFile{Path: "api/new.go", Status: model.FileAdded}
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "Big change", Author: ana, Reviewers: []model.Actor{ben}, Files: files})
	if err := s.Approve(repo, id, ben); err != nil {
		t.Fatal(err)
	}

	t.Run("get", func(t *testing.T) {
		got, err := c.GetPullRequest(ctx, repo, id)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := s.PullRequest(repo, id)
		samePR(t, "client view vs fake state", *got, want)
		if len(got.Approvals()) != 1 {
			t.Errorf("approvals %+v", got.Approvals())
		}
	})

	t.Run("reviewers", func(t *testing.T) {
		pr, err := c.SetReviewers(ctx, repo, id, "Big change", "", []model.Actor{ben, cai})
		if err != nil {
			t.Fatal(err)
		}
		got := s.Reviewers(repo, id)
		if len(got) != 2 || got[0].AccountID != ben.AccountID || got[1].AccountID != cai.AccountID || len(pr.Reviewers) != 2 {
			t.Errorf("reviewers %+v / %+v", got, pr.Reviewers)
		}
		var put map[string]any
		if err := json.Unmarshal(s.LastPut(repo, id), &put); err != nil || len(put) != 3 {
			t.Errorf("put body %s", s.LastPut(repo, id))
		}
		// The list is replaced, not merged.
		if _, err := c.SetReviewers(ctx, repo, id, "Big change", "", []model.Actor{cai}); err != nil {
			t.Fatal(err)
		}
		if got := s.Reviewers(repo, id); len(got) != 1 || got[0].AccountID != cai.AccountID {
			t.Errorf("after replace %+v", got)
		}
		// The author cannot review.
		_, err = c.SetReviewers(ctx, repo, id, "Big change", "", []model.Actor{cai, ana})
		var e *upstream.Error
		if !errors.As(err, &e) || e.StatusCode != 400 || !e.Permanent() || !strings.Contains(e.Message, "author") {
			t.Errorf("author as reviewer: %v", err)
		}
		if got := s.Reviewers(repo, id); len(got) != 1 {
			t.Errorf("a refused PUT changed reviewers: %+v", got)
		}
		if n := s.PutCount(repo, id); n != 3 {
			t.Errorf("put count %d, want 3", n)
		}
		if pr, _ := s.PullRequest(repo, id); pr.Title != "Big change" {
			t.Errorf("title %q", pr.Title)
		}
	})

	t.Run("diffstat", func(t *testing.T) {
		s.ResetCalls()
		got, err := c.PullRequestDiffStat(ctx, repo, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, files) {
			t.Errorf("%d files; first %+v", len(got), got[:3])
		}
		calls := s.Calls()
		if calls["GET /repositories/{ws}/{repo}/pullrequests/{id}/diffstat"] != 1 || calls["GET /repositories/{ws}/{repo}/diffstat/{spec}"] != 3 {
			t.Errorf("calls %v", calls)
		}
	})

	t.Run("statuses", func(t *testing.T) {
		pr, _ := s.PullRequest(repo, id)
		for _, state := range []string{"INPROGRESS", "SUCCESSFUL"} {
			st := model.CommitStatus{Key: "rolekeeper-review", State: state, Name: "rolekeeper", URL: "http://127.0.0.1/pr"}
			if err := c.SetCommitStatus(ctx, repo, pr.SourceCommit, st); err != nil {
				t.Fatal(err)
			}
		}
		got := s.Statuses(repo, pr.SourceCommit)
		if len(got) != 1 || got["rolekeeper-review"].State != "SUCCESSFUL" || len(got["rolekeeper-review"].Commit) != 40 {
			t.Errorf("statuses %+v", got)
		}
		list, err := c.PullRequestStatuses(ctx, repo, id)
		if err != nil || len(list) != 1 || list[0].State != "SUCCESSFUL" {
			t.Errorf("pull request statuses %+v %v", list, err)
		}
		one, err := c.GetCommitStatus(ctx, repo, pr.SourceCommit, "rolekeeper-review")
		if err != nil || one.State != "SUCCESSFUL" {
			t.Errorf("get %+v %v", one, err)
		}
		if _, err := c.GetCommitStatus(ctx, repo, pr.SourceCommit, "nope"); !upstream.IsNotFound(err) {
			t.Errorf("missing key: %v", err)
		}
		err = c.SetCommitStatus(ctx, repo, pr.SourceCommit, model.CommitStatus{Key: "k", State: "GREEN", URL: "u"})
		var e *upstream.Error
		if !errors.As(err, &e) || e.StatusCode != 400 {
			t.Errorf("bad state: %v", err)
		}
	})

	t.Run("comments", func(t *testing.T) {
		human := s.AddComment(repo, id, cai, "please split this")
		mine, err := c.CreateComment(ctx, repo, id, "rolekeeper: asked Ben")
		if err != nil {
			t.Fatal(err)
		}
		if mine.Author.AccountID != s.CurrentUser().AccountID {
			t.Errorf("author %+v", mine.Author)
		}
		if err := c.UpdateComment(ctx, repo, id, mine.ID, "rolekeeper: asked Cai"); err != nil {
			t.Fatal(err)
		}
		err = c.UpdateComment(ctx, repo, id, human, "hijack")
		var e *upstream.Error
		if !errors.As(err, &e) || e.StatusCode != 403 || !e.Permanent() {
			t.Errorf("editing someone else's comment: %v", err)
		}
		list, err := c.ListComments(ctx, repo, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		fake := s.Comments(repo, id)
		if len(list) != 2 || len(fake) != 2 || list[1].Body != "rolekeeper: asked Cai" || fake[0].ID != human || list[0].ID != human {
			t.Errorf("client %+v\nfake %+v", list, fake)
		}
	})

	t.Run("activity", func(t *testing.T) {
		acts, err := c.PullRequestActivity(ctx, repo, id)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[model.PRActivityKind]int{}
		for i, a := range acts {
			kinds[a.Kind]++
			if i > 0 && a.At.After(acts[i-1].At) {
				t.Errorf("activity not newest first at %d", i)
			}
		}
		if kinds[model.ActivityApproval] != 1 || kinds[model.ActivityComment] != 2 || kinds[model.ActivityUpdate] == 0 {
			t.Errorf("kinds %v", kinds)
		}
	})

	t.Run("list and commit lookups", func(t *testing.T) {
		for i := range 54 {
			s.AddPullRequest(repo, bitbuckettest.PR{Title: fmt.Sprintf("small %d", i), Author: cai})
		}
		s.ResetCalls()
		open, err := c.ListPullRequests(ctx, repo, bitbucket.ListOptions{States: []model.PRState{model.PROpen}})
		if err != nil {
			t.Fatal(err)
		}
		if len(open) != 55 || s.TotalCalls() != 2 {
			t.Errorf("%d open in %d calls", len(open), s.TotalCalls())
		}
		for i := 1; i < len(open); i++ {
			if open[i].UpdatedAt.After(open[i-1].UpdatedAt) {
				t.Fatalf("not sorted by -updated_on at %d", i)
			}
		}
		since := open[2].UpdatedAt
		recent, err := c.ListPullRequests(ctx, repo, bitbucket.ListOptions{States: []model.PRState{model.PROpen}, UpdatedSince: since})
		if err != nil || len(recent) != 2 {
			t.Errorf("updated since: %d, %v", len(recent), err)
		}

		pr, _ := s.PullRequest(repo, id)
		byCommit, err := c.CommitPullRequests(ctx, repo, pr.SourceCommit)
		if err != nil || len(byCommit) != 1 || byCommit[0].ID != id {
			t.Errorf("by source commit %+v %v", byCommit, err)
		}
		merge := strings.Repeat("d", 40)
		if err := s.Merge(repo, id, ben, merge); err != nil {
			t.Fatal(err)
		}
		byCommit, err = c.CommitPullRequests(ctx, repo, merge)
		if err != nil || len(byCommit) != 1 || byCommit[0].State != model.PRMerged {
			t.Errorf("by merge commit %+v %v", byCommit, err)
		}
		merged, err := c.ListPullRequests(ctx, repo, bitbucket.ListOptions{States: []model.PRState{model.PRMerged}})
		if err != nil || len(merged) != 1 || merged[0].ID != id {
			t.Errorf("merged %+v %v", merged, err)
		}
		_, err = c.SetReviewers(ctx, repo, id, "Big change", "", []model.Actor{ben})
		var e *upstream.Error
		if !errors.As(err, &e) || e.StatusCode != 400 {
			t.Errorf("PUT on a merged pull request: %v", err)
		}
	})

	t.Run("deployments", func(t *testing.T) {
		s.AddDeployment(repo, "production", strings.Repeat("d", 40), "SUCCESSFUL")
		s.AddDeployment(repo, "staging", strings.Repeat("e", 40), "IN_PROGRESS")
		ds, err := c.ListDeployments(ctx, repo, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 2 || ds[0].Environment != "staging" || ds[0].State != "IN_PROGRESS" ||
			ds[1].Environment != "production" || ds[1].State != "COMPLETED" || ds[1].Status != "SUCCESSFUL" || ds[1].Commit != strings.Repeat("d", 40) || ds[1].BuildNumber != 1 {
			t.Errorf("deployments %+v", ds)
		}
	})

	t.Run("current user", func(t *testing.T) {
		me, err := c.CurrentUser(ctx)
		if err != nil || me != s.CurrentUser() {
			t.Errorf("%+v %v; want %+v", me, err, s.CurrentUser())
		}
	})

	t.Run("failure injection", func(t *testing.T) {
		waits = nil
		s.FailNext("GET", "/pullrequests/1", http.StatusTooManyRequests, 1, "2")
		s.FailNext("", "/user", http.StatusServiceUnavailable, 2, "")
		before := c.Calls()
		if _, err := c.GetPullRequest(ctx, repo, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CurrentUser(ctx); err != nil {
			t.Fatal(err)
		}
		if n := c.Calls() - before; n != 5 || len(waits) != 3 || waits[0] != 2*time.Second {
			t.Errorf("%d calls, waits %v", n, waits)
		}
	})

	t.Run("auth", func(t *testing.T) {
		bad, err := bitbucket.New(bitbucket.Options{BaseURL: s.URL(), AccessToken: "wrong"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.GetPullRequest(ctx, repo, 1)
		var e *upstream.Error
		if !errors.As(err, &e) || e.StatusCode != 401 {
			t.Errorf("bad token: %v", err)
		}
		good, _ := bitbucket.New(bitbucket.Options{BaseURL: s.URL(), AccessToken: "tok"})
		if _, err := good.GetPullRequest(ctx, repo, 1); err != nil {
			t.Errorf("bearer: %v", err)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := c.GetPullRequest(ctx, "acme/nope", 1)
		if !upstream.IsNotFound(err) {
			t.Errorf("unknown repository: %v", err)
		}
		_, err = c.GetPullRequest(ctx, repo, 999)
		if !upstream.IsNotFound(err) {
			t.Errorf("unknown pull request: %v", err)
		}
	})
}

func TestFakeRefusesWhatBitbucketRefuses(t *testing.T) {
	s, _ := newServer(t)
	id := s.AddPullRequest("acme/api", bitbuckettest.PR{Title: "x", Author: ana})
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"pagelen above 50 on pull requests", "GET", "/repositories/acme/api/pullrequests?pagelen=100", "", 400},
		{"pagelen above 50 on activity", "GET", fmt.Sprintf("/repositories/acme/api/pullrequests/%d/activity?pagelen=51", id), "", 400},
		{"blank title", "PUT", fmt.Sprintf("/repositories/acme/api/pullrequests/%d", id), `{"title":""}`, 400},
		{"unknown reviewer", "PUT", fmt.Sprintf("/repositories/acme/api/pullrequests/%d", id), `{"title":"x","reviewers":[{"account_id":"nobody"}]}`, 400},
		{"status without url", "POST", "/repositories/acme/api/commit/" + strings.Repeat("a", 40) + "/statuses/build", `{"key":"k","state":"FAILED"}`, 400},
		{"status on an unknown short hash", "POST", "/repositories/acme/api/commit/deadbeef1234/statuses/build", `{"key":"k","state":"FAILED","url":"u"}`, 404},
		{"empty comment", "POST", fmt.Sprintf("/repositories/acme/api/pullrequests/%d/comments", id), `{"content":{"raw":""}}`, 400},
		{"unknown endpoint", "GET", "/repositories/acme/api/unknown", "", 404},
		{"diffstat redirect", "GET", fmt.Sprintf("/repositories/acme/api/pullrequests/%d/diffstat", id), "", 302},
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, s.URL()+tt.path, strings.NewReader(tt.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, resp.StatusCode, b, tt.want)
		}
		if resp.StatusCode >= 400 {
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(b, &e) != nil || e.Type != "error" || e.Error.Message == "" {
				t.Errorf("%s: error body %s", tt.name, b)
			}
		}
	}
}

func TestSign(t *testing.T) {
	body := fixtures.Read(t, "bitbucket/webhooks/repo_push__jenkins-bbs-signed.json")
	if got := bitbuckettest.Sign("Gkvl$k$wyNpQAF42", body); got != "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035" {
		t.Errorf("signature %s", got)
	}
	if bitbuckettest.Sign("other", body) == bitbuckettest.Sign("Gkvl$k$wyNpQAF42", body) {
		t.Error("the secret does not matter")
	}
}

// missingKeys lists the keys of the fixture object (recursively, the first
// element standing for arrays) that the fake's object lacks.
func missingKeys(path string, fixture, fake any) []string {
	var out []string
	switch f := fixture.(type) {
	case map[string]any:
		g, ok := fake.(map[string]any)
		if !ok {
			if fake == nil {
				return nil // null where the fixture has an object (merge_commit, closed_by, …)
			}
			return []string{path + " (not an object)"}
		}
		for k, v := range f {
			gv, ok := g[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, missingKeys(path+"."+k, v, gv)...)
		}
	case []any:
		g, ok := fake.([]any)
		if ok && len(f) > 0 && len(g) > 0 {
			out = append(out, missingKeys(path+"[]", f[0], g[0])...)
		}
	}
	return out
}

func TestShapesMatchFixtures(t *testing.T) {
	s, _ := newServer(t)
	const repo = "acme/payments"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "t", Author: ana, Reviewers: []model.Actor{ben},
		Files: []model.ChangedFile{{Path: "a.go", Status: model.FileModified}}})
	if err := s.Approve(repo, id, ben); err != nil {
		t.Fatal(err)
	}
	if err := s.Approve(repo, id, cai); err != nil {
		t.Fatal(err)
	}
	cid := s.AddComment(repo, id, cai, "hi")
	pr, _ := s.PullRequest(repo, id)
	s.SetCommitStatus(repo, pr.SourceCommit, model.CommitStatus{Key: "k", State: "FAILED", URL: "u", Name: "n"})
	get := func(path string) any {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	decode := func(b []byte) any {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	prPath := fmt.Sprintf("/repositories/%s/pullrequests/%d", repo, id)
	tests := []struct {
		fixture string
		fake    any
		ignore  []string // fixture keys the fake leaves out, with why
	}{
		{"bitbucket/api/pullrequest_get-approved__atlantis.json", get(prPath), nil},
		// Users lost "username" in 2019; this capture is older.
		{"bitbucket/api/pullrequest_get__jenkins-bbs.json", get(prPath), []string{".author.username"}},
		{"bitbucket/api/pullrequests_list__jenkins-bbs.json", get("/repositories/" + repo + "/pullrequests"), nil},
		{"bitbucket/api/pullrequest_comment__go-scm.json", get(prPath + "/comments/" + cid), nil},
		{"bitbucket/api/pullrequest_comments_list__atlantis.json", get(prPath + "/comments"), nil},
		{"bitbucket/api/commit_status__jenkins-bbs.json", get("/repositories/" + repo + "/commit/" + pr.SourceCommit + "/statuses/build/k"), nil},
		{"bitbucket/api/diffstat__jenkins-bbs.json", get(fmt.Sprintf("/repositories/%s/diffstat/x?from_pullrequest_id=%d", repo, id)), nil},
		{"bitbucket/api/user_current__atlantis.json", get("/user"), []string{".links.repositories", ".links.snippets", ".links.hooks"}},
		{"bitbucket/api/repository_get__jenkins-bbs.json", get("/repositories/" + repo), repoExtras},
		{"bitbucket/webhooks/pullrequest_created__jenkins-bbs.json", decode(s.WebhookBody("pullrequest:created", repo, id, ana)), nil},
		{"bitbucket/webhooks/pullrequest_approved__b-arol-o-reviewer.json", decode(s.WebhookBody("pullrequest:approved", repo, id, ben)), nil},
		// Here the repository's owner is a user; the fake's workspaces are teams.
		{"bitbucket/webhooks/pullrequest_comment_created__go-scm.json", decode(s.WebhookCommentBody(repo, id, cid)), []string{".repository.owner.account_id", ".repository.owner.nickname"}},
		{"bitbucket/webhooks/repo_push__b-arol-o.json", decode(s.WebhookPushBody(repo, "main", strings.Repeat("1", 40), strings.Repeat("2", 40), ana)), pushExtras},
		{"bitbucket/webhooks/repo_commit_status_created__go-scm.json", decode(s.WebhookCommitStatusBody(repo, pr.SourceCommit, "k", model.Actor{UUID: "{612f7b18-b167-4bff-8ee9-d43570117ff1}", DisplayName: "Acme", Nickname: "acme", IsTeam: true})), commitExtras},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			fx := decode(fixtures.Read(t, tt.fixture))
			ignore := map[string]bool{}
			for _, k := range tt.ignore {
				ignore[k] = true
			}
			var missing []string
			for _, k := range missingKeys("", fx, tt.fake) {
				if !ignore[k] {
					missing = append(missing, k)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("the fake lacks %s", strings.Join(missing, ", "))
			}
		})
	}
}

// Keys of real objects the fake does not model: repository metadata,
// commit details in pushes, commit summaries.
var (
	repoExtras = []string{".enforced_signed_commits", ".override_settings", ".owner.account_id", ".slug", ".created_on", ".updated_on", ".size", ".language", ".has_issues", ".has_wiki", ".fork_policy",
		".description", ".links.clone", ".links.watchers", ".links.branches", ".links.tags", ".links.commits",
		".links.downloads", ".links.source", ".links.hooks", ".links.forks", ".links.pullrequests"}
	pushExtras = []string{".push.changes[].links.html", ".push.changes[].links.diff", ".push.changes[].links.commits",
		".push.changes[].commits[].summary", ".push.changes[].new.target.summary", ".push.changes[].old.target.summary",
		".push.changes[].new.target.rendered", ".push.changes[].old.target.rendered",
		".push.changes[].new.target.committer", ".push.changes[].old.target.committer"}
	commitExtras = []string{".commit_status.commit.links.approve", ".commit_status.commit.links.comments",
		".commit_status.commit.links.diff", ".commit_status.commit.links.statuses", ".commit_status.commit.message", ".commit_status.commit.author", ".commit_status.commit.date",
		".commit_status.commit.summary"}
)

func TestConcurrentUse(t *testing.T) {
	s, _ := newServer(t)
	c := newClient(t, s, nil)
	const repo = "acme/concurrent"
	id := s.AddPullRequest(repo, bitbuckettest.PR{Title: "t", Author: ana, Files: []model.ChangedFile{{Path: "x"}}})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for j := range 4 {
				key := fmt.Sprintf("k%d", i)
				pr, err := c.GetPullRequest(ctx, repo, id)
				if err == nil {
					err = c.SetCommitStatus(ctx, repo, pr.SourceCommit, model.CommitStatus{Key: key, State: "INPROGRESS", URL: "u"})
				}
				if err == nil {
					_, err = c.CreateComment(ctx, repo, id, fmt.Sprintf("%d/%d", i, j))
				}
				if err == nil {
					_, err = c.PullRequestDiffStat(ctx, repo, id)
				}
				if err != nil {
					errs <- err
					return
				}
				_ = s.Approve(repo, id, ben)
				_ = s.WebhookBody("pullrequest:approved", repo, id, ben)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pr, _ := s.PullRequest(repo, id)
	if n := len(s.Statuses(repo, pr.SourceCommit)); n != 8 {
		t.Errorf("%d statuses, want 8", n)
	}
	if n := len(s.Comments(repo, id)); n != 32 {
		t.Errorf("%d comments, want 32", n)
	}
	if int64(s.TotalCalls()) != c.Calls() {
		t.Errorf("fake saw %d calls, client sent %d", s.TotalCalls(), c.Calls())
	}
}
