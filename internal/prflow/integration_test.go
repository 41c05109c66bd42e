package prflow

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// TestWithBitbucketClient drives the workflow with the real client against
// the fake Bitbucket Cloud and the SQLite store, from webhook bodies the
// fake renders, and counts HTTP requests per event.
func TestWithBitbucketClient(t *testing.T) {
	ctx := context.Background()
	srv := bitbuckettest.New()
	t.Cleanup(srv.Close)
	client, err := bitbucket.New(bitbucket.Options{BaseURL: srv.URL(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rolekeeper.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := New(Options{Host: client, Store: st, Roles: roles.NewCurrent(testOrg()),
		PublicURL: "http://127.0.0.1:8080", Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}

	for _, a := range []model.Actor{mei, kofi, lena} {
		srv.AddUser(a)
	}
	id := srv.AddPullRequest(repoPay, bitbuckettest.PR{
		Title: "Add refunds", Author: lena, SourceBranch: "feature/refunds", SourceCommit: fullA,
		Files: []model.ChangedFile{
			{Path: "internal/refund/refund.go", Status: model.FileModified},
			{Path: "internal/refund/refund_test.go", Status: model.FileAdded},
		},
	})
	handle := func(key string, body []byte) int {
		t.Helper()
		ev, err := bitbucket.ParseWebhook(key, body)
		if err != nil {
			t.Fatalf("parse %s: %v", key, err)
		}
		before := srv.TotalCalls()
		if err := h.Handle(ctx, ev); err != nil {
			t.Fatalf("handle %s: %v", key, err)
		}
		return srv.TotalCalls() - before
	}
	deliver := func(key string, actor model.Actor) int {
		t.Helper()
		return handle(key, srv.WebhookBody(key, repoPay, id, actor))
	}

	// A new pull request: its commits, diffstat (one page, through the
	// pull request's links.diffstat in the signed body), the pull request
	// read before the reviewers PUT, the PUT, two statuses, one comment.
	if n := deliver("pullrequest:created", lena); n != 7 {
		t.Errorf("new pull request: %d HTTP requests (%v), want 7", n, srv.Calls())
	} else {
		t.Logf("new pull request: %d HTTP requests for 5 workflow calls: %v", n, srv.Calls())
	}
	revs := srv.Reviewers(repoPay, id)
	if len(revs) != 1 || (revs[0].AccountID != accMei && revs[0].AccountID != accKofi) {
		t.Fatalf("reviewers %+v", revs)
	}
	lead := revs[0]
	sts := srv.Statuses(repoPay, fullA)
	if sts[rules.StatusReview].State != rules.StateInProgress || sts[rules.StatusTests].State != rules.StateSuccessful {
		t.Errorf("statuses %+v", sts)
	}
	if !strings.HasPrefix(sts[rules.StatusReview].URL, "http://127.0.0.1:8080/decisions/") {
		t.Errorf("status url %q", sts[rules.StatusReview].URL)
	}
	if cs := srv.Comments(repoPay, id); len(cs) != 1 {
		t.Fatalf("comments %+v", cs)
	}

	for _, key := range []string{"pullrequest:created", "pullrequest:updated"} {
		if n := deliver(key, lena); n != 0 {
			t.Errorf("%s again: %d HTTP requests, want 0", key, n)
		}
	}

	if err := srv.Approve(repoPay, id, lead); err != nil {
		t.Fatal(err)
	}
	if n := deliver("pullrequest:approved", lead); n != 2 {
		t.Errorf("approval: %d HTTP requests, want 2 (the pull request read to verify it, review status; the comment explains nothing new)", n)
	}
	if n := deliver("pullrequest:approved", lead); n != 0 {
		t.Errorf("approval redelivered: %d HTTP requests, want 0 (%v)", n, srv.Calls())
	}
	if s := srv.Statuses(repoPay, fullA)[rules.StatusReview]; s.State != rules.StateSuccessful {
		t.Errorf("review after approval %+v", s)
	}

	// Lena pushes source without a test.
	if err := srv.PushCommit(repoPay, id, fullB, []model.ChangedFile{{Path: "internal/refund/refund.go", Status: model.FileModified}}); err != nil {
		t.Fatal(err)
	}
	handle("repo:push", srv.WebhookPushBody(repoPay, "feature/refunds", fullA, fullB, lena))
	if s := srv.Statuses(repoPay, fullB)[rules.StatusTests]; s.State != rules.StateFailed {
		t.Errorf("tests on the new head %+v", s)
	}
	if n := deliver("pullrequest:updated", lena); n != 0 {
		t.Errorf("updated after the push: %d HTTP requests, want 0", n)
	}

	if err := srv.Merge(repoPay, id, kofi, ""); err != nil {
		t.Fatal(err)
	}
	if n := deliver("pullrequest:fulfilled", kofi); n != 0 {
		t.Errorf("merge: %d HTTP requests, want 0", n)
	}
	fs, err := st.ListFindings(ctx, store.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, f := range fs {
		keys[f.Key] = f.Held
	}
	ref := repoPay + "#" + "1"
	if held, ok := keys[findingApproved+ref]; !ok || !held {
		t.Errorf("findings %v: want %s held", keys, findingApproved+ref)
	}
	if held, ok := keys[findingUntested+ref]; !ok || held {
		t.Errorf("findings %v: want %s violated", keys, findingUntested+ref)
	}
	if n := len(srv.Comments(repoPay, id)); n != 1 {
		t.Errorf("%d comments at the end, want 1", n)
	}
}
