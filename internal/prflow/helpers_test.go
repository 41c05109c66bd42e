package prflow

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// The test organisation.
//
//	payments (reloadly/payments-api): leads Mei and Kofi, engineer Lena,
//	  rules code-review, path-review of helm/** by a lead, unit-tests.
//	web (reloadly/web-app): lead Wes, code-review only (no rule looks at
//	  paths, so no diffstat is ever needed).
//	reloadly/unowned: no team.
const (
	accMei  = "712020:mei"
	accKofi = "712020:kofi"
	accLena = "712020:lena"
	accWes  = "712020:wes"
	accPaul = "712020:paul" // not in roles.yaml
	accAna  = "712020:ana"  // engineer in web

	repoPay = "reloadly/payments-api"
	repoWeb = "reloadly/web-app"
	repoOut = "reloadly/unowned"

	fullA = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
	fullB = "b1b2b3b4b5b6b7b8b9b0c1c2c3c4c5c6c7c8c9c0"
)

var t0 = time.Date(2026, 6, 10, 9, 0, 0, 0, time.UTC)

func testOrg() *roles.Org {
	o := &roles.Org{Version: 1, Organization: "Test"}
	lead := &roles.Role{ID: "technical-lead", Title: "Technical lead", Scope: roles.ScopeTeam}
	eng := &roles.Role{ID: "backend-engineer", Title: "Back-end engineer", Scope: roles.ScopeTeam}
	enforce := func(role *roles.Role, text string, r *roles.Rule) {
		r.Role, r.Responsibility = role.ID, text
		if r.ID == "" {
			r.ID = role.ID + "/" + string(r.Kind)
		}
		role.Responsibilities = append(role.Responsibilities, &roles.Responsibility{Role: role.ID, Text: text, Rules: []*roles.Rule{r}})
		o.Rules = append(o.Rules, r)
	}
	enforce(lead, "Reviews code written by the engineers in the team",
		&roles.Rule{Kind: roles.KindCodeReview, Reviewers: 1, Approvals: 1})
	enforce(lead, "Maintains and manages infrastructure and tools",
		&roles.Rule{Kind: roles.KindPathReview, Reviewers: 1, Approvals: 1, Paths: []string{"helm/**"}, Teams: []string{"payments"}})
	enforce(eng, "Writes unit tests to test the behavior of each task built",
		&roles.Rule{Kind: roles.KindUnitTests, SourcePaths: []string{"**/*.go"}, TestPaths: []string{"**/*_test.go"}, Teams: []string{"payments"}})
	o.Roles = []*roles.Role{lead, eng}
	o.Teams = []*roles.Team{
		{ID: "payments", Repositories: []string{"reloadly/Payments-API"}},
		{ID: "web", Repositories: []string{repoWeb}},
	}
	o.People = []*roles.Person{
		{ID: "mei", Name: "Mei Chen", AccountID: accMei, Roles: []string{"technical-lead"}, Teams: []string{"payments"}},
		{ID: "kofi", Name: "Kofi Mensah", AccountID: accKofi, Roles: []string{"technical-lead"}, Teams: []string{"payments"}},
		{ID: "lena", Name: "Lena Berg", AccountID: accLena, Roles: []string{"backend-engineer"}, Teams: []string{"payments"}},
		{ID: "wes", Name: "Wes Ode", AccountID: accWes, Roles: []string{"technical-lead"}, Teams: []string{"web"}},
		{ID: "ana", Name: "Ana Lima", AccountID: accAna, Roles: []string{"backend-engineer"}, Teams: []string{"web"}},
	}
	o.Index()
	return o
}

func actor(acc, name string) model.Actor { return model.Actor{AccountID: acc, DisplayName: name} }

var (
	lena = actor(accLena, "Lena Berg")
	mei  = actor(accMei, "Mei Chen")
	kofi = actor(accKofi, "Kofi Mensah")
	paul = actor(accPaul, "Paul Outsider")
	wes  = actor(accWes, "Wes Ode")
	ana  = actor(accAna, "Ana Lima")
)

// newPR is pull request #7 by Lena in payments-api, as a webhook carries
// it: a 12-character head hash, nobody asked yet.
func newPR() model.PullRequest {
	return model.PullRequest{
		Repository:        repoPay,
		ID:                7,
		Title:             "Add refunds",
		State:             model.PROpen,
		Author:            lena,
		SourceBranch:      "feature/refunds",
		SourceCommit:      fullA[:12],
		DestinationBranch: "main",
		CreatedAt:         t0,
		UpdatedAt:         t0,
		URL:               "https://bitbucket.org/reloadly/payments-api/pull-requests/7",
	}
}

var goodFiles = []string{"internal/refund/refund.go", "internal/refund/refund_test.go"}

// harness runs the workflow with the real Bitbucket client against the
// shared fake Bitbucket Cloud (bitbuckettest) and the store in memory.
type harness struct {
	t    testing.TB
	srv  *bitbuckettest.Server
	host *recorder
	st   *memStore
	reg  *prometheus.Registry
	h    *Handler
	now  time.Time // rolekeeper's clock

	mu     sync.Mutex
	bbNext time.Time // Bitbucket's clock: its next reading (then a second later)
}

// people are the accounts Bitbucket knows, by account id.
var people = map[string]model.Actor{}

func init() {
	for _, a := range []model.Actor{lena, mei, kofi, paul, wes, ana} {
		people[a.AccountID] = a
	}
}

// person is the known account behind an account id (tests often name
// people by id only).
func person(a model.Actor) model.Actor {
	if p, ok := people[a.AccountID]; ok {
		return p
	}
	return a
}

func newHarness(t testing.TB, mutate ...func(*Options)) *harness {
	t.Helper()
	hs := &harness{t: t, srv: bitbuckettest.New(), st: newMemStore(), reg: prometheus.NewRegistry(), now: t0.Add(time.Minute), bbNext: t0}
	t.Cleanup(hs.srv.Close)
	hs.srv.SetClock(func() time.Time {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		now := hs.bbNext
		hs.bbNext = now.Add(time.Second)
		return now
	})
	for _, a := range people {
		hs.srv.AddUser(a)
	}
	// The client shares rolekeeper's clock: a rate-limit block it keeps
	// after a 429 ends when a test moves hs.now past it.
	client, err := bitbucket.New(bitbucket.Options{BaseURL: hs.srv.URL(), MaxRetries: -1,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Now:   func() time.Time { return hs.now }})
	if err != nil {
		t.Fatal(err)
	}
	hs.host = &recorder{c: client, posted: map[string]string{}}
	opts := Options{
		Host:       hs.host,
		Store:      hs.st,
		Roles:      roles.NewCurrent(testOrg()),
		PublicURL:  "https://rolekeeper.example/",
		Logger:     zap.NewNop(),
		Registerer: hs.reg,
		Now:        func() time.Time { return hs.now },
	}
	for _, m := range mutate {
		m(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs.h = h
	return hs
}

// at sets Bitbucket's clock: what it does next happens at t.
func (hs *harness) at(t time.Time) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.bbNext = t
}

func (hs *harness) must(err error) {
	hs.t.Helper()
	if err != nil {
		hs.t.Fatal(err)
	}
}

// fullHash is the 40-hex commit a test's 12-hex hash stands for.
func fullHash(h string) string {
	for _, f := range []string{fullA, fullB} {
		if model.SameCommit(h, f) {
			return f
		}
	}
	return h
}

// upstream opens a pull request on the fake Bitbucket (created and updated
// at pr.CreatedAt) with the full hash of its head and these changed files.
func (hs *harness) upstream(pr model.PullRequest, files ...string) {
	hs.t.Helper()
	hs.at(pr.CreatedAt)
	in := bitbuckettest.PR{
		ID: pr.ID, Title: pr.Title, Description: pr.Description, Author: person(pr.Author),
		SourceBranch: pr.SourceBranch, SourceCommit: fullHash(pr.SourceCommit),
		DestinationBranch: pr.DestinationBranch, Draft: pr.Draft, Files: changed(files...),
	}
	for _, r := range pr.Reviewers {
		in.Reviewers = append(in.Reviewers, person(r))
	}
	hs.srv.AddPullRequest(pr.Repository, in)
}

// changed lists files as modified (never nil).
func changed(files ...string) []model.ChangedFile {
	cf := make([]model.ChangedFile, len(files))
	for i, p := range files {
		cf[i] = model.ChangedFile{Path: p, Status: model.FileModified}
	}
	return cf
}

// edit changes the pull request on Bitbucket as Lena would in the web
// interface, at t.
func (hs *harness) edit(id int, at time.Time, e bitbuckettest.Edit) {
	hs.t.Helper()
	hs.at(at)
	hs.must(hs.srv.Edit(repoPay, id, lena, e))
}

func event(kind model.EventKind, pr model.PullRequest, by model.Actor) *model.Event {
	return &model.Event{
		Source:      model.SourceBitbucket,
		Kind:        kind,
		DeliveryID:  string(kind) + "-" + pr.SourceCommit,
		Actor:       by,
		Repository:  pr.Repository,
		PullRequest: &pr,
		At:          pr.UpdatedAt,
	}
}

// handle delivers an event. These tests let the event describe Bitbucket:
// the review state and closing it shows are made true on the fake first
// (approvals at their dates), so that the pass's reads find them
// (truth_test.go covers events that lie).
func (hs *harness) handle(ev *model.Event) error {
	hs.t.Helper()
	hs.mirror(ev)
	return hs.h.Handle(context.Background(), ev)
}

func (hs *harness) mirror(ev *model.Event) {
	hs.t.Helper()
	if ev.PullRequest == nil {
		return
	}
	repo, id := ev.PullRequest.Repository, ev.PullRequest.ID
	cur, err := hs.srv.PullRequest(repo, id)
	if err != nil || cur.State != model.PROpen {
		return
	}
	set := func(who model.Actor, approved bool, st model.ReviewState, at time.Time) {
		who = person(who)
		var was model.Participant
		for _, p := range cur.Participants {
			if p.User.AccountID == who.AccountID {
				was = p
			}
		}
		if was.Approved == approved && was.State == st {
			return
		}
		hs.at(at)
		switch {
		case approved:
			hs.must(hs.srv.Approve(repo, id, who))
		case st == model.ReviewChangesRequested:
			hs.must(hs.srv.RequestChanges(repo, id, who))
		case was.State == model.ReviewChangesRequested:
			hs.must(hs.srv.RemoveChangesRequest(repo, id, who))
		default:
			hs.must(hs.srv.Unapprove(repo, id, who))
		}
		cur, _ = hs.srv.PullRequest(repo, id)
	}
	for _, p := range ev.PullRequest.Participants {
		if p.Approved || p.State != model.ReviewNone {
			set(p.User, p.Approved, p.State, p.On)
		}
	}
	who, at := ev.Actor, ev.At
	if a := ev.Approval; a != nil {
		if a.AccountID != "" {
			who = model.Actor{AccountID: a.AccountID, DisplayName: a.Name}
		}
		if !a.At.IsZero() {
			at = a.At
		}
	}
	switch ev.Kind {
	case model.EventPRApproved:
		set(who, true, model.ReviewApproved, at)
	case model.EventPRUnapproved, model.EventPRChangesRequestRemoved:
		set(who, false, model.ReviewNone, at)
	case model.EventPRChangesRequested:
		set(who, false, model.ReviewChangesRequested, at)
	}
	pr := ev.PullRequest
	if closed(pr.State) {
		by := ev.Actor
		if pr.ClosedBy != nil {
			by = *pr.ClosedBy
		}
		hs.at(pr.UpdatedAt)
		if pr.State == model.PRMerged {
			hs.must(hs.srv.Merge(repo, id, person(by), mergeFull(pr.MergeCommit)))
		} else {
			hs.must(hs.srv.Decline(repo, id, person(by)))
		}
	}
}

func (hs *harness) mustHandle(ev *model.Event) []string {
	hs.t.Helper()
	if err := hs.handle(ev); err != nil {
		hs.t.Fatalf("handle %s: %v", ev.Kind, err)
	}
	return hs.host.take()
}

// current returns the pull request as the fake Bitbucket now has it, with
// the API's and webhooks' 12-character hash: what the next event carries.
func (hs *harness) current(repo string, id int) model.PullRequest {
	hs.t.Helper()
	pr, err := hs.srv.PullRequest(repo, id)
	hs.must(err)
	return pr
}

func (hs *harness) reviewerIDs(repo string, id int) []string {
	return accountIDs(hs.srv.Reviewers(repo, id))
}

// status is the status under key on commit as Bitbucket has it, found only
// when rolekeeper posted it to exactly that commit (statuses must go on
// full hashes).
func (hs *harness) status(repo, commit, key string) (model.CommitStatus, bool) {
	if !hs.host.postedTo(repo, commit, key) {
		return model.CommitStatus{}, false
	}
	st, ok := hs.srv.Statuses(repo, commit)[key]
	return st, ok
}

// deleteComments deletes every comment of a pull request, as a person would.
func (hs *harness) deleteComments(repo string, id int) {
	for _, c := range hs.srv.Comments(repo, id) {
		hs.must(hs.srv.DeleteComment(repo, id, c.ID))
	}
}

// mergeFull is the 40-hex merge commit a test's short one stands for.
func mergeFull(h string) string {
	if h == "" || len(h) == 40 {
		return h
	}
	return h + strings.Repeat("0", 40-len(h))
}

// recorder is the real client seen through Host: it notes each call
// (method names in order, and where statuses were posted) so that tests
// can say what the workflow asked of Bitbucket. Every answer is the
// client's, from bitbuckettest.
type recorder struct {
	c      *bitbucket.Client
	mu     sync.Mutex
	calls  []string
	posted map[string]string // "repo key" → commit as given
}

func (r *recorder) note(method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, method)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *recorder) postedTo(repo, commit, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posted[repo+" "+key] == commit
}

func (r *recorder) GetPullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error) {
	r.note("GetPullRequest")
	return r.c.GetPullRequest(ctx, repo, id)
}

func (r *recorder) PullRequestDiffStat(ctx context.Context, repo string, id int) ([]model.ChangedFile, error) {
	r.note("PullRequestDiffStat")
	return r.c.PullRequestDiffStat(ctx, repo, id)
}

func (r *recorder) PullRequestCommits(ctx context.Context, repo string, id int) ([]model.Commit, error) {
	r.note("PullRequestCommits")
	return r.c.PullRequestCommits(ctx, repo, id)
}

func (r *recorder) PullRequestActivity(ctx context.Context, repo string, id int) ([]model.PRActivity, error) {
	r.note("PullRequestActivity")
	return r.c.PullRequestActivity(ctx, repo, id)
}

func (r *recorder) ResolveCommit(ctx context.Context, repo, commit string) (string, error) {
	r.note("ResolveCommit")
	return r.c.ResolveCommit(ctx, repo, commit)
}

func (r *recorder) SetReviewers(ctx context.Context, repo string, id int, title, description string, reviewers []model.Actor) (*model.PullRequest, error) {
	r.note("SetReviewers")
	return r.c.SetReviewers(ctx, repo, id, title, description, reviewers)
}

func (r *recorder) SetCommitStatus(ctx context.Context, repo, commit string, st model.CommitStatus) error {
	r.note("SetCommitStatus")
	err := r.c.SetCommitStatus(ctx, repo, commit, st)
	if err == nil {
		r.mu.Lock()
		r.posted[repo+" "+st.Key] = commit
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) CreateComment(ctx context.Context, repo string, id int, body string) (model.Comment, error) {
	r.note("CreateComment")
	return r.c.CreateComment(ctx, repo, id, body)
}

func (r *recorder) UpdateComment(ctx context.Context, repo string, id int, commentID, body string) error {
	r.note("UpdateComment")
	return r.c.UpdateComment(ctx, repo, id, commentID, body)
}

func approvedBy(pr model.PullRequest, a model.Actor, at time.Time) model.PullRequest {
	pr.Participants = append(pr.Participants, model.Participant{User: a, Role: "PARTICIPANT", Approved: true, State: model.ReviewApproved, On: at})
	return pr
}

func approvalEvent(pr model.PullRequest, a model.Actor, at time.Time) *model.Event {
	pr = approvedBy(pr, a, at)
	ev := event(model.EventPRApproved, pr, a)
	ev.Approval = &model.Approval{AccountID: a.AccountID, Name: a.DisplayName, State: model.ReviewApproved, At: at}
	ev.At = at
	ev.DeliveryID = "approved-" + a.AccountID
	return ev
}

func wantCalls(t testing.TB, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("upstream calls = %q, want %q", got, want)
	}
}

func count(calls []string, method string) int {
	n := 0
	for _, c := range calls {
		if c == method {
			n++
		}
	}
	return n
}
