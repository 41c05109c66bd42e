package prflow

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

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

type harness struct {
	t    testing.TB
	host *fakeHost
	st   *memStore
	reg  *prometheus.Registry
	h    *Handler
	now  time.Time
}

func newHarness(t testing.TB, mutate ...func(*Options)) *harness {
	t.Helper()
	hs := &harness{t: t, host: newFakeHost(), st: newMemStore(), reg: prometheus.NewRegistry(), now: t0.Add(time.Minute)}
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

// upstream puts a pull request on the fake Bitbucket with its full hash.
func (hs *harness) upstream(pr model.PullRequest, files ...string) {
	full := pr
	if model.SameCommit(pr.SourceCommit, fullA) {
		full.SourceCommit = fullA
	} else if model.SameCommit(pr.SourceCommit, fullB) {
		full.SourceCommit = fullB
	}
	hs.host.add(full, files...)
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
// the review state it shows is put on the fake first, so that the pass's
// read finds it (truth_test.go covers events that lie).
func (hs *harness) handle(ev *model.Event) error {
	hs.t.Helper()
	hs.host.mirror(ev)
	return hs.h.Handle(context.Background(), ev)
}

func (hs *harness) mustHandle(ev *model.Event) []string {
	hs.t.Helper()
	if err := hs.handle(ev); err != nil {
		hs.t.Fatalf("handle %s: %v", ev.Kind, err)
	}
	return hs.host.takeCalls()
}

// current returns the pull request as the fake Bitbucket now has it, with
// the webhook's 12-character hash: what the next event would carry.
func (hs *harness) current(repo string, id int) model.PullRequest {
	pr := hs.host.pr(repo, id)
	pr.SourceCommit = pr.SourceCommit[:12]
	return pr
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
