package prflow

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// bbEnv is the workflow with the real client against the shared fake
// Bitbucket Cloud and the SQLite store, fed webhook bodies the fake renders
// from its state (as Bitbucket would send them).
type bbEnv struct {
	t   *testing.T
	ctx context.Context
	srv *bitbuckettest.Server
	st  *sqlite.Store
	h   *Handler
	id  int

	mu  sync.Mutex
	now time.Time
}

func newBBEnv(t *testing.T, org *roles.Org, pr bitbuckettest.PR) *bbEnv {
	t.Helper()
	e := &bbEnv{t: t, ctx: context.Background(), srv: bitbuckettest.New(), now: t0}
	t.Cleanup(e.srv.Close)
	// Bitbucket's clock moves a second per reading, at microseconds.
	e.srv.SetClock(func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.now = e.now.Add(time.Second)
		return e.now
	})
	client, err := bitbucket.New(bitbucket.Options{BaseURL: e.srv.URL(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = sqlite.Open(e.ctx, filepath.Join(t.TempDir(), "rolekeeper.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	e.h, err = New(Options{Host: client, Store: e.st, Roles: roles.NewCurrent(org),
		PublicURL: "http://127.0.0.1:8080", Registerer: prometheus.NewRegistry(), Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []model.Actor{mei, kofi, lena} {
		e.srv.AddUser(a)
	}
	if pr.Author == (model.Actor{}) {
		pr.Author = lena
	}
	if pr.Title == "" {
		pr.Title = "Add refunds"
	}
	if pr.SourceCommit == "" {
		pr.SourceCommit = fullA
	}
	if pr.Files == nil {
		pr.Files = []model.ChangedFile{
			{Path: "internal/refund/refund.go", Status: model.FileModified},
			{Path: "internal/refund/refund_test.go", Status: model.FileAdded},
		}
	}
	e.id = e.srv.AddPullRequest(repoPay, pr)
	return e
}

// handle parses a body under a key, as the intake does, and runs the
// workflow; it returns the HTTP requests Bitbucket received.
func (e *bbEnv) handle(key string, body []byte) int {
	e.t.Helper()
	ev, err := bitbucket.ParseWebhook(key, body)
	if err != nil {
		e.t.Fatalf("parse %s: %v", key, err)
	}
	before := e.srv.TotalCalls()
	if err := e.h.Handle(e.ctx, ev); err != nil {
		e.t.Fatalf("handle %s: %v", key, err)
	}
	return e.srv.TotalCalls() - before
}

func (e *bbEnv) deliver(key string, actor model.Actor) int {
	e.t.Helper()
	return e.handle(key, e.srv.WebhookBody(key, repoPay, e.id, actor))
}

func (e *bbEnv) review() model.CommitStatus {
	pr, _ := e.srv.PullRequest(repoPay, e.id)
	for k, st := range e.srv.Statuses(repoPay, pr.SourceCommit) {
		if k == rules.StatusReview {
			return st
		}
	}
	return model.CommitStatus{}
}

func (e *bbEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *bbEnv) lastDecision() rules.Decision {
	e.t.Helper()
	ds, err := e.st.ListDecisions(e.ctx, store.DecisionFilter{Repository: repoPay, PR: e.id})
	if err != nil || len(ds) == 0 {
		e.t.Fatalf("decisions %v %v", ds, err)
	}
	last := ds[0]
	for _, d := range ds {
		if d.ID > last.ID {
			last = d
		}
	}
	var d rules.Decision
	e.must(json.Unmarshal(last.Decision, &d))
	return d
}

// TestBudgetOfOnePullRequest measures the Bitbucket requests of one pull
// request's life with every guarantee on: created; the echo of rolekeeper's
// own reviewer change; a second push (repo:push and pullrequest:updated);
// the lead's approval; the merge. A redelivery and the echo cost nothing.
func TestBudgetOfOnePullRequest(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{Description: "Adds refunds.\n\nPAY-12"})
	steps := []struct {
		name string
		do   func() int
		want int
	}{
		// commits, diffstat (one page: the body's links.diffstat), the pull
		// request (title and description for the PUT), the PUT, two
		// statuses, the comment.
		{"created", func() int { return e.deliver("pullrequest:created", lena) }, 7},
		{"redelivery of created", func() int { return e.deliver("pullrequest:created", lena) }, 0},
		{"echo of the reviewers PUT", func() int { return e.deliver("pullrequest:updated", lena) }, 0},
		// the diffstat of the new head (2: the push names no diffstat
		// link), two statuses on it; no commits read: the signed push
		// lists the new commit with its author; no comment edit: the
		// tests verdict changed, which the status says, not the
		// explanation.
		{"second push", func() int {
			e.must(e.srv.PushCommit(repoPay, e.id, fullB, []model.ChangedFile{{Path: "internal/refund/refund.go", Status: model.FileModified}}))
			n := e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", fullA, fullB, lena))
			return n + e.deliver("pullrequest:updated", lena)
		}, 4},
		// the pull request (the approval verified), the review status; the
		// comment explains nothing new.
		{"lead's approval", func() int {
			e.must(e.srv.Approve(repoPay, e.id, e.srv.Reviewers(repoPay, e.id)[0]))
			return e.deliver("pullrequest:approved", e.srv.Reviewers(repoPay, e.id)[0])
		}, 2},
		{"redelivered approval (new request id)", func() int {
			return e.deliver("pullrequest:approved", e.srv.Reviewers(repoPay, e.id)[0])
		}, 0},
		{"merge", func() int {
			e.must(e.srv.Merge(repoPay, e.id, kofi, ""))
			return e.deliver("pullrequest:fulfilled", kofi)
		}, 0},
	}
	total := 0
	for _, s := range steps {
		before := e.srv.Calls()
		n := s.do()
		total += n
		t.Logf("%-40s %2d requests %v", s.name, n, diffCalls(before, e.srv.Calls()))
		if n != s.want {
			t.Errorf("%s: %d requests, want %d", s.name, n, s.want)
		}
	}
	t.Logf("one pull request's life: %d requests", total)
	if total != 13 {
		t.Errorf("life: %d requests, want 13", total)
	}
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("review %+v", st)
	}
	fs, err := e.st.ListFindings(e.ctx, store.FindingFilter{})
	if err != nil || len(fs) == 0 {
		t.Fatalf("findings %v %v", fs, err)
	}
	for _, f := range fs {
		if strings.HasPrefix(f.Key, findingApproved) && !f.Held {
			t.Errorf("merge finding %+v", f)
		}
	}
}

func diffCalls(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// An approved event handled after a later unapproved one (4 workers) must
// not leave the review green: the pass reads the pull request.
func TestOutOfOrderApprovalDoesNotTurnGreen(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]

	e.must(e.srv.Approve(repoPay, e.id, lead))
	approved := e.srv.WebhookBody("pullrequest:approved", repoPay, e.id, lead)
	e.must(e.srv.Unapprove(repoPay, e.id, lead))
	unapproved := e.srv.WebhookBody("pullrequest:unapproved", repoPay, e.id, lead)

	e.handle("pullrequest:unapproved", unapproved)
	if n := e.handle("pullrequest:approved", approved); n != 0 {
		t.Errorf("the older approval cost %d requests, want 0 (superseded)", n)
	}
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("review green after the approval was withdrawn: %+v", st)
	}
	// Even when both carry the same updated_on (an approval that does not
	// move it), the approval claim is verified and found withdrawn.
	rec, err := e.st.GetPR(e.ctx, repoPay, e.id)
	e.must(err)
	rec.UpdatedAt = rec.UpdatedAt.Add(-time.Hour)
	e.must(e.st.UpsertPR(e.ctx, rec))
	e.handle("pullrequest:approved", approved)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("stale approval turned the review green: %+v", st)
	}

	// The honest path: the lead approves again and it turns green.
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("honest approval: %+v", st)
	}
}

// A body that shows an approval Bitbucket does not have (a replayed or
// hand-made body under a real key) changes nothing: the approval is
// verified against the pull request.
func TestApprovalClaimNotOnBitbucketChangesNothing(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	// Render an approval body, then withdraw the approval before delivery.
	e.must(e.srv.Approve(repoPay, e.id, lead))
	body := e.srv.WebhookBody("pullrequest:approved", repoPay, e.id, lead)
	e.must(e.srv.Unapprove(repoPay, e.id, lead))
	e.handle("pullrequest:approved", body)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("an approval Bitbucket does not show turned the review green: %+v", st)
	}
	if d := e.lastDecision(); d.ApprovalsMet {
		t.Errorf("decision counts an unverified approval: %+v", d.Rules)
	}
}

// invalidate_on_push: an approval given before the last push does not
// count; one given after it does. Commit dates never count.
func TestStaleApprovalWithInvalidateOnPush(t *testing.T) {
	org := testOrg()
	for _, r := range org.Rules {
		if r.Kind == roles.KindCodeReview {
			r.InvalidateOnPush = true
		}
	}
	e := newBBEnv(t, org, bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Fatalf("approval of the head: %+v", st)
	}
	// Lena pushes B; the commit claims a date after the approval.
	_, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Hash: fullB, Date: t0.Add(48 * time.Hour)})
	e.must(err)
	e.deliver("pullrequest:updated", lena)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("approval of A counted for B: %+v", st)
	}
	d := e.lastDecision()
	r := d.Rules[0]
	if r.Met || len(r.Ignored) != 1 || !strings.Contains(r.Ignored[0], "before the last push") {
		t.Errorf("code review %+v", r)
	}
	// The honest path: the lead approves B.
	e.must(e.srv.Unapprove(repoPay, e.id, lead))
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("approval after the push: %+v", st)
	}

	// Without invalidate_on_push (the default, as Bitbucket) the approval
	// survives the push.
	e2 := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e2.deliver("pullrequest:created", lena)
	lead2 := e2.srv.Reviewers(repoPay, e2.id)[0]
	e2.must(e2.srv.Approve(repoPay, e2.id, lead2))
	e2.deliver("pullrequest:approved", lead2)
	e2.must(e2.srv.PushCommit(repoPay, e2.id, fullB, nil))
	e2.deliver("pullrequest:updated", lena)
	if st := e2.review(); st.State != rules.StateSuccessful {
		t.Errorf("default: approval lost on push: %+v", st)
	}
}

// Separation of duties: a lead who pushed commits onto a colleague's
// branch is not asked, and their approval does not count.
func TestCommitAuthorApprovalDoesNotCount(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	other := mei
	if lead.AccountID == accMei {
		other = kofi
	}
	// The asked lead pushes a commit onto Lena's branch, then approves.
	_, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Hash: fullB, Author: lead, Pusher: lead})
	e.must(err)
	e.deliver("pullrequest:updated", lead)
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("a commit author's approval turned the review green: %+v", st)
	}
	d := e.lastDecision()
	r := d.Rules[0]
	if len(r.Excluded) != 1 || !strings.Contains(r.Excluded[0], "wrote commits of this pull request") ||
		len(r.Ignored) != 1 || !strings.Contains(r.Ignored[0], "separation of duties") {
		t.Errorf("code review %+v", r)
	}
	if !strings.Contains(rules.Explain(d), "excluded: ") {
		t.Errorf("explain does not say whom it excluded:\n%s", rules.Explain(d))
	}
	// The other lead was asked instead; their approval counts.
	revs := e.srv.Reviewers(repoPay, e.id)
	if len(revs) != 2 || revs[1].AccountID != other.AccountID {
		t.Errorf("reviewers %+v, want %s added", revs, other.DisplayName)
	}
	e.must(e.srv.Approve(repoPay, e.id, other))
	e.deliver("pullrequest:approved", other)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("honest approval: %+v", st)
	}
}

// The reviewers PUT replaces the pull request on Bitbucket: it carries the
// description as it is just before, including an edit after the event.
func TestReviewersPutKeepsTheDescription(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{Description: "Adds refunds.\n\nPAY-12"})
	body := e.srv.WebhookBody("pullrequest:created", repoPay, e.id, lena)
	// Lena edits the description before rolekeeper handles the event.
	code, out := putRaw(t, e.srv, `{"title":"Add refunds","description":"Adds refunds, v2.\n\nPAY-12"}`, e.id)
	if code != 200 {
		t.Fatalf("edit: %d %s", code, out)
	}
	e.handle("pullrequest:created", body)
	pr, _ := e.srv.PullRequest(repoPay, e.id)
	if pr.Description != "Adds refunds, v2.\n\nPAY-12" || pr.Title != "Add refunds" || len(pr.Reviewers) != 1 {
		t.Errorf("after the reviewers PUT: title %q, description %q, reviewers %+v", pr.Title, pr.Description, pr.Reviewers)
	}
	var put map[string]any
	e.must(json.Unmarshal(e.srv.LastPut(repoPay, e.id), &put))
	if put["description"] != "Adds refunds, v2.\n\nPAY-12" {
		t.Errorf("PUT body %v", put)
	}
}

// A deleted rolekeeper comment is posted again at the next change.
func TestDeletedCommentIsPostedAgain(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	cs := e.srv.Comments(repoPay, e.id)
	if len(cs) != 1 {
		t.Fatalf("comments %+v", cs)
	}
	e.must(e.srv.DeleteComment(repoPay, e.id, cs[0].ID))
	// An approval changes no explanation (the statuses say where things
	// stand): the comment is not touched.
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if cs := e.srv.Comments(repoPay, e.id); len(cs) != 0 {
		t.Fatalf("comments after the approval %+v", cs)
	}
	// A push that touches helm/ triggers the path review: the explanation
	// changes, the edit finds the comment gone (404) and posts it again,
	// with nothing dead-lettered.
	e.must(e.srv.PushCommit(repoPay, e.id, fullB, []model.ChangedFile{{Path: "helm/values.yaml", Status: model.FileModified}}))
	e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", fullA, fullB, lena))
	e.deliver("pullrequest:updated", lena)
	cs = e.srv.Comments(repoPay, e.id)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "technical-lead/path-review (") {
		t.Fatalf("comments after the change %+v", cs)
	}
	// The honest path: the new comment is edited in place from now on.
	const fullC = "c0c1c2c3c4c5c6c7c8c9d0d1d2d3d4d5d6d7d8d9"
	e.must(e.srv.PushCommit(repoPay, e.id, fullC, []model.ChangedFile{{Path: "main.go", Status: model.FileModified}}))
	e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", fullB, fullC, lena))
	if got := e.srv.Comments(repoPay, e.id); len(got) != 1 || got[0].ID != cs[0].ID || got[0].Body == cs[0].Body {
		t.Errorf("comments %+v", got)
	}
}

// A relabelled body (a lead's comment sent as an approval) is refused by
// the parser: the intake answers 400 and stores nothing (see
// bitbucket.TestParseWebhookRefusesRelabelledBodies and the app test).
func TestRelabelledCommentIsNoApproval(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	cid := e.srv.AddComment(repoPay, e.id, lead, "LGTM once the tests pass")
	body := e.srv.WebhookCommentBody(repoPay, e.id, cid)
	if _, err := bitbucket.ParseWebhook("pullrequest:approved", body); err == nil {
		t.Fatal("a comment body passes as an approval")
	}
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("review %+v", st)
	}
	// The honest path: the comment under its own key is handled.
	if n := e.handle("pullrequest:comment_created", body); n != 0 {
		t.Errorf("comment event: %d requests", n)
	}
}

func putRaw(t *testing.T, srv *bitbuckettest.Server, body string, id int) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, srv.URL()+"/repositories/"+repoPay+"/pullrequests/"+strconv.Itoa(id), strings.NewReader(body))
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
	return resp.StatusCode, string(b)
}

// A pass that could not carry its decision out leaves the record's
// updated_on behind, so that the retry and the audit do not skip it.
func TestFailedPassIsNotSuperseded(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	e.must(e.srv.Approve(repoPay, e.id, lead))
	body := e.srv.WebhookBody("pullrequest:approved", repoPay, e.id, lead)
	ev, err := bitbucket.ParseWebhook("pullrequest:approved", body)
	e.must(err)
	e.srv.FailNext("POST", "/statuses/build", 503, 1, "")
	if err := e.h.Handle(e.ctx, ev); err == nil {
		t.Fatal("the failed status post was not reported")
	}
	rec, err := e.st.GetPR(e.ctx, repoPay, e.id)
	e.must(err)
	pr, _ := e.srv.PullRequest(repoPay, e.id)
	if !rec.UpdatedAt.Before(pr.UpdatedAt.Truncate(time.Millisecond)) {
		t.Errorf("record at %v after a failed pass on the state of %v: the audit would skip it", rec.UpdatedAt, pr.UpdatedAt)
	}
	// The retry (same body) is not superseded and turns the review green.
	if n := e.handle("pullrequest:approved", body); n == 0 {
		t.Error("the retry was skipped")
	}
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("review after the retry %+v", st)
	}
}

// A merged pull request whose commits Bitbucket no longer lists (the
// branch is gone) is still judged; an open one is never decided without
// its commits.
func TestMergeWithoutCommits(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.must(e.srv.Merge(repoPay, e.id, kofi, ""))
	e.srv.FailNext("GET", "/commits", 404, 1, "")
	e.deliver("pullrequest:fulfilled", kofi)
	fs, err := e.st.ListFindings(e.ctx, store.FindingFilter{})
	if err != nil || len(fs) == 0 {
		t.Errorf("findings %v %v", fs, err)
	}

	open := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	open.srv.FailNext("GET", "/commits", 404, 1, "")
	ev, err := bitbucket.ParseWebhook("pullrequest:created", open.srv.WebhookBody("pullrequest:created", repoPay, open.id, lena))
	open.must(err)
	if err := open.h.Handle(open.ctx, ev); err == nil {
		t.Error("an open pull request was decided without its commits")
	}
	if revs := open.srv.Reviewers(repoPay, open.id); len(revs) != 0 {
		t.Errorf("reviewers %+v asked without the commit authors", revs)
	}
}

// The signed repo:push names the authors of the commits it brought: a
// complete list stands for the commits read (none is made) and a lead who
// pushed onto the branch is excluded all the same; a truncated list is
// never trusted (the commits are read).
func TestCommitAuthorsFromTheSignedPush(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	hash, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Author: lead, Pusher: lead})
	e.must(err)
	before := e.srv.Calls()
	e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", fullA, hash, lead))
	if n := diffCalls(before, e.srv.Calls())["GET /repositories/{ws}/{repo}/pullrequests/{id}/commits"]; n != 0 {
		t.Errorf("commits read %d times for a complete push", n)
	}
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("the approval of a lead who pushed onto the branch counted: %+v", st)
	}
	if r := e.lastDecision().Rules[0]; len(r.Excluded) != 1 || !strings.Contains(r.Excluded[0], lead.DisplayName) {
		t.Errorf("code review %+v, want %s excluded", r, lead.DisplayName)
	}

	// Six commits in one push: Bitbucket lists five and says truncated.
	from := hash
	var last string
	for i := 0; i < 6; i++ {
		last, err = e.srv.Push(repoPay, e.id, bitbuckettest.Commit{})
		e.must(err)
	}
	before = e.srv.Calls()
	e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", from, last, lena))
	if n := diffCalls(before, e.srv.Calls())["GET /repositories/{ws}/{repo}/pullrequests/{id}/commits"]; n != 1 {
		t.Errorf("commits read %d times for a truncated push, want 1", n)
	}
}

// A team whose deployments are gated gets its merge commit resolved from
// the payload's 12 hex (one read at the merge), so that a gate finds the
// pull request by the full hash; a twin sharing the 12-hex prefix finds
// nothing. Teams without gates keep the merge at no read (the budget).
func TestMergeCommitResolvedForGatedTeams(t *testing.T) {
	org := testOrg()
	org.Rules = append(org.Rules, &roles.Rule{ID: "technical-lead/deploy-approval", Kind: roles.KindDeployApproval,
		Role: "technical-lead", Responsibility: "Approves deployments", Environments: []string{"production"}, Teams: []string{"payments"}})
	org.Index()
	e := newBBEnv(t, org, bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	const merge = "5d1d5087d4090000000000000000000000000001"
	e.must(e.srv.Merge(repoPay, e.id, kofi, merge))
	before := e.srv.Calls()
	e.deliver("pullrequest:fulfilled", kofi)
	if n := diffCalls(before, e.srv.Calls())["GET /repositories/{ws}/{repo}/commit/{hash}"]; n != 1 {
		t.Errorf("merge commit resolved %d times, want 1", n)
	}
	recs, err := e.st.PRsByCommit(e.ctx, repoPay, merge)
	if err != nil || len(recs) != 1 || recs[0].ID != e.id {
		t.Errorf("by the full merge commit: %+v %v", recs, err)
	}
	twin := merge[:12] + strings.Repeat("f", 28)
	if recs, _ := e.st.PRsByCommit(e.ctx, repoPay, twin); len(recs) != 0 {
		t.Errorf("the twin %s found %+v", twin, recs)
	}
}
