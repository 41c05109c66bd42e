package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
)

// bbUpstream is the shared fake Bitbucket Cloud (bitbuckettest) read
// through the real client, as internal/app's adapter reads it for the
// audit: a list is one call per page, a pull request read one call, the
// deployments one call (two when their environments must be named).
type bbUpstream struct {
	srv *bitbuckettest.Server
	c   *bitbucket.Client

	mu  sync.Mutex
	now time.Time // Bitbucket's clock: everything happens at it
}

func newUpstream(t *testing.T) *bbUpstream {
	t.Helper()
	u := &bbUpstream{srv: bitbuckettest.New(), now: t0}
	t.Cleanup(u.srv.Close)
	u.srv.SetClock(func() time.Time { u.mu.Lock(); defer u.mu.Unlock(); return u.now })
	c, err := bitbucket.New(bitbucket.Options{BaseURL: u.srv.URL(), MaxRetries: -1,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	u.c = c
	for _, repo := range []string{"reloadly/payments-api", "reloadly/checkout-web"} {
		u.srv.AddRepository(repo)
	}
	return u
}

// at sets Bitbucket's clock.
func (u *bbUpstream) at(t time.Time) { u.mu.Lock(); u.now = t; u.mu.Unlock() }

func (u *bbUpstream) UpdatedPullRequests(ctx context.Context, repo string, since time.Time) ([]model.PullRequest, error) {
	return u.c.ListPullRequests(ctx, repo, bitbucket.ListOptions{
		States:       []model.PRState{model.PROpen, model.PRMerged, model.PRDeclined},
		UpdatedSince: since,
	})
}

func (u *bbUpstream) PullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error) {
	return u.c.GetPullRequest(ctx, repo, id)
}

func (u *bbUpstream) Deployments(ctx context.Context, repo string) ([]model.Deployment, error) {
	return u.c.ListDeployments(ctx, repo, 2)
}

func (u *bbUpstream) Calls() int64 { return u.c.Calls() }

var (
	lena = model.Actor{AccountID: "acc-lena", DisplayName: "Lena Berg"}
	ana  = model.Actor{AccountID: "acc-ana", DisplayName: "Ana Souza"}
)

// open puts pull request id on Bitbucket, updated last at `updated` (with
// Bitbucket's microseconds) in the given state, approved by Ana so that a
// full read shows a participant the list objects lack.
func (u *bbUpstream) open(t *testing.T, repo string, id int, updated time.Time, state model.PRState) {
	t.Helper()
	u.at(updated.Add(123456 * time.Nanosecond).Truncate(time.Microsecond))
	u.srv.AddPullRequest(repo, bitbuckettest.PR{ID: id, Author: lena, SourceCommit: strings.Repeat(fmt.Sprintf("%02x", id), 20)})
	if err := u.srv.Approve(repo, id, ana); err != nil {
		t.Fatal(err)
	}
	var err error
	switch state {
	case model.PRMerged:
		err = u.srv.Merge(repo, id, ana, "")
	case model.PRDeclined:
		err = u.srv.Decline(repo, id, ana)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// fakeReconciler stands for prflow: it records what it saw, makes two
// requests (e.g. a status repaired) and stores the PR record the way
// prflow does, so the next pass finds it unchanged.
type fakeReconciler struct {
	st   *memStore
	seen []string
	up   *bbUpstream
}

func (r *fakeReconciler) Reconcile(ctx context.Context, pr model.PullRequest, trigger string) error {
	if trigger != "audit" {
		return fmt.Errorf("trigger %q", trigger)
	}
	if len(pr.Participants) == 0 {
		return errors.New("reconciled a list object without participants")
	}
	r.seen = append(r.seen, fmt.Sprintf("%s#%d", pr.Repository, pr.ID))
	for _, key := range []string{"rolekeeper-review", "rolekeeper-tests"} {
		if err := r.up.c.SetCommitStatus(ctx, pr.Repository, pr.SourceCommit, model.CommitStatus{Key: key, State: "SUCCESSFUL", URL: "http://127.0.0.1/d"}); err != nil {
			return err
		}
	}
	r.st.mu.Lock()
	r.st.prs[fmt.Sprintf("%s#%d", pr.Repository, pr.ID)] = &store.PRRecord{Repository: pr.Repository, ID: pr.ID,
		State: pr.State, SourceCommit: pr.SourceCommit, UpdatedAt: pr.UpdatedAt.Truncate(time.Millisecond)} // the store keeps milliseconds
	r.st.mu.Unlock()
	return nil
}

type memStore struct {
	mu       sync.Mutex
	kv       map[string]string
	prs      map[string]*store.PRRecord
	gates    []store.Gate
	findings map[string]model.Finding
}

func newMemStore() *memStore {
	return &memStore{kv: map[string]string{}, prs: map[string]*store.PRRecord{}, findings: map[string]model.Finding{}}
}

func (m *memStore) PutIfAbsent(_ context.Context, k, v string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.kv[k]; ok {
		return false, nil
	}
	m.kv[k] = v
	return true, nil
}
func (m *memStore) Set(_ context.Context, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[k] = v
	return nil
}
func (m *memStore) Get(_ context.Context, k string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[k]
	return v, ok, nil
}
func (m *memStore) Delete(_ context.Context, k string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.kv, k)
	return nil
}
func (m *memStore) Keys(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}
func (m *memStore) GetPR(_ context.Context, repo string, id int) (*store.PRRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.prs[fmt.Sprintf("%s#%d", repo, id)]; ok {
		cp := *r
		return &cp, nil
	}
	return nil, store.ErrNotFound
}
func (m *memStore) ListGates(_ context.Context, f store.GateFilter) ([]store.Gate, error) {
	var out []store.Gate
	for _, g := range m.gates {
		if f.Repository == "" || g.Repository == f.Repository {
			out = append(out, g)
		}
	}
	return out, nil
}
func (m *memStore) AddFinding(_ context.Context, f model.Finding) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.findings[f.Key]; ok {
		return false, nil
	}
	m.findings[f.Key] = f
	return true, nil
}

func testOrg() *roles.Org {
	deploy := &roles.Rule{ID: "product-owner/deploy-approval", Kind: roles.KindDeployApproval, Role: "product-owner",
		Responsibility: "Performs and oversees production deployments", Environments: []string{"production"}}
	org := &roles.Org{
		Roles: []*roles.Role{{ID: "product-owner", Title: "Product owner", Responsibilities: []*roles.Responsibility{
			{Role: "product-owner", Text: deploy.Responsibility, Rules: []*roles.Rule{deploy}}}}},
		Teams: []*roles.Team{
			{ID: "payments", Repositories: []string{"reloadly/payments-api"}},
			{ID: "checkout", Repositories: []string{"reloadly/checkout-web"}},
		},
		People: []*roles.Person{{ID: "ana", Name: "Ana Souza", AccountID: "acc-ana", Roles: []string{"product-owner"}, Teams: []string{"payments", "checkout"}}},
		Rules:  []*roles.Rule{deploy},
	}
	org.Index()
	return org
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*Auditor, *bbUpstream, *fakeReconciler, *memStore, *time.Time) {
	up := newUpstream(t)
	st := newMemStore()
	rec := &fakeReconciler{st: st, up: up}
	now := t0
	a := New(Options{Upstream: up, Reconciler: rec, Store: st, Roles: roles.NewCurrent(testOrg()), HourlyBudget: 500,
		Now: func() time.Time { return now }})
	return a, up, rec, st, &now
}

func TestIncrementalUnchangedCostsNothing(t *testing.T) {
	a, up, rec, _, now := setup(t)
	up.open(t, "reloadly/payments-api", 1, t0.Add(-3*time.Hour), model.PROpen)
	up.open(t, "reloadly/payments-api", 2, t0.Add(-2*time.Hour), model.PRMerged)
	up.open(t, "reloadly/checkout-web", 5, t0.Add(-time.Hour), model.PROpen)
	res, err := a.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.PRsSynced != 3 || len(rec.seen) != 3 || res.Repos != 2 {
		t.Fatalf("first pass: %+v seen %v", res, rec.seen)
	}
	// Second pass an hour later, nothing changed upstream: one list call and
	// one deployments call per repository, no PR read, no repair.
	*now = t0.Add(time.Hour)
	before := up.Calls()
	res, err = a.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.PRsSynced != 0 || len(rec.seen) != 3 {
		t.Errorf("unchanged PRs re-synced: %+v", res)
	}
	if got := up.Calls() - before; got != 4 {
		t.Errorf("second pass spent %d calls, want 4 (2 lists + 2 deployment lists)", got)
	}
	// A missed webhook: PR 1 changed upstream. Only it is re-read.
	up.at(t0.Add(90 * time.Minute))
	if _, err := up.srv.Push("reloadly/payments-api", 1, bitbuckettest.Commit{Hash: strings.Repeat("a", 40)}); err != nil {
		t.Fatal(err)
	}
	*now = t0.Add(2 * time.Hour)
	res, err = a.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.PRsSynced != 1 || rec.seen[3] != "reloadly/payments-api#1" {
		t.Errorf("changed PR not repaired: %+v %v", res, rec.seen)
	}
}

func TestBudgetStopsAndResumes(t *testing.T) {
	a, up, rec, st, now := setup(t)
	a.o.HourlyBudget = 12
	for i := 1; i <= 6; i++ {
		up.open(t, "reloadly/payments-api", i, t0.Add(time.Duration(-10+i)*time.Minute), model.PROpen)
	}
	res, err := a.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped == "" || res.BudgetLeft < 0 {
		t.Fatalf("budget not enforced: %+v", res)
	}
	if res.Calls > 12 {
		t.Errorf("spent %d calls over a budget of 12", res.Calls)
	}
	firstSeen := len(rec.seen)
	if firstSeen == 0 || firstSeen == 6 {
		t.Fatalf("expected a partial pass, synced %d", firstSeen)
	}
	// Same hour: the budget is already spent, nothing more happens.
	if res, _ := a.Run(context.Background(), nil); res.PRsSynced != 0 {
		t.Errorf("second pass in the same hour synced %d", res.PRsSynced)
	}
	// Next hour: resumes where it stopped, oldest first, none twice.
	*now = t0.Add(time.Hour)
	if _, err := a.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	*now = t0.Add(2 * time.Hour)
	if _, err := a.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if len(rec.seen) != 6 {
		t.Fatalf("after resuming synced %v, want all 6 once", rec.seen)
	}
	dup := map[string]bool{}
	for _, s := range rec.seen {
		if dup[s] {
			t.Errorf("%s synced twice", s)
		}
		dup[s] = true
	}
	if v, ok, _ := st.Get(context.Background(), "audit:budget:bitbucket:2026112612"); !ok || v == "0" {
		t.Errorf("budget not persisted: %q", v)
	}
}

func TestDeploymentsWithoutGateAreFindings(t *testing.T) {
	a, up, _, st, _ := setup(t)
	commit := strings.Repeat("c", 40)
	deploy := func(at time.Time, env, commit, state string) string {
		up.at(at)
		return up.srv.AddDeployment("reloadly/payments-api", env, commit, state)
	}
	d1 := deploy(t0.Add(-time.Hour), "production", commit, "SUCCESSFUL")
	d2 := deploy(t0.Add(-30*time.Minute), "production", strings.Repeat("d", 40), "SUCCESSFUL")
	deploy(t0.Add(-20*time.Minute), "staging", commit, "SUCCESSFUL")
	deploy(t0.Add(-10*time.Minute), "production", strings.Repeat("e", 40), "UNDEPLOYED")
	up.at(t0)
	st.gates = []store.Gate{{ID: "g1", Repository: "reloadly/payments-api", Commit: commit, Environment: "production",
		State: store.GateApproved, DecidedBy: "acc-ana"}}
	res, err := a.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployments != 2 || res.Findings != 2 {
		t.Fatalf("res = %+v", res)
	}
	held := st.findings["deploy:reloadly/payments-api:"+d1]
	if !held.Held || !strings.Contains(held.Reason, "Ana Souza") {
		t.Errorf("gated deployment: %+v", held)
	}
	bad := st.findings["deploy:reloadly/payments-api:"+d2]
	if bad.Held || bad.RuleID != "product-owner/deploy-approval" || bad.Team != "payments" || !strings.Contains(bad.Reason, "no approved gate") {
		t.Errorf("ungated deployment: %+v", bad)
	}
	// Recorded once: the next pass adds nothing.
	res, _ = a.Run(context.Background(), nil)
	if res.Findings != 0 {
		t.Errorf("findings recorded twice: %+v", res)
	}
}

type fakeJira struct{ runs int }

func (f *fakeJira) AuditIssues(context.Context) error { f.runs++; return nil }

func TestJiraAndProgressAndErrors(t *testing.T) {
	a, up, _, _, _ := setup(t)
	j := &fakeJira{}
	a.o.Jira = j
	var last Progress
	if _, err := a.Run(context.Background(), func(p Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if j.runs != 1 || last.ReposDone != 2 || last.ReposTotal != 2 || last.Jira != "done" {
		t.Errorf("progress = %+v, jira runs %d", last, j.runs)
	}
	up.srv.Fail(bitbuckettest.Fault{Status: 503, Times: 1 << 20})
	if _, err := a.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("upstream failure not reported: %v", err)
	}
}

// A deployment matches a gate by the full hash only: a commit sharing the
// gate's 12-hex prefix (a twin) or the abbreviation itself opens nothing.
func TestOpenedGateMatchesFullHashesOnly(t *testing.T) {
	const gateCommit = "4f2a9c1be07d5a3c6b8e9f0a1b2c3d4e5f607182"
	gates := []store.Gate{{ID: "g1", Commit: gateCommit, Environment: "production", State: store.GateApproved}}
	for commit, want := range map[string]bool{
		gateCommit: true,
		"4F2A9C1BE07D5A3C6B8E9F0A1B2C3D4E5F607182": true,
		"4f2a9c1be07d000000000000000000000000beef": false, // the twin
		"4f2a9c1be07d": false,
		"":             false,
	} {
		got := openedGate(gates, model.Deployment{Commit: commit, Environment: "production"}) != nil
		if got != want {
			t.Errorf("deployment of %q: gate found %v, want %v", commit, got, want)
		}
	}
}
