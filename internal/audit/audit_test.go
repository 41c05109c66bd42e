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

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
)

// fakeUpstream answers like Bitbucket would and counts every request: a
// list is one call per page of 100, a PR read one call, deployments one call.
type fakeUpstream struct {
	mu    sync.Mutex
	prs   map[string][]model.PullRequest
	deps  map[string][]model.Deployment
	calls int64
	fail  error
}

func (f *fakeUpstream) UpdatedPullRequests(_ context.Context, repo string, since time.Time) ([]model.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var out []model.PullRequest
	for _, pr := range f.prs[repo] {
		if !pr.UpdatedAt.Before(since) {
			lite := pr
			lite.Participants = nil // list objects carry no participants
			out = append(out, lite)
		}
	}
	f.calls += int64(1 + len(out)/100)
	sort.Slice(out, func(i, j int) bool { return out[i].UpdatedAt.After(out[j].UpdatedAt) }) // sort=-updated_on
	return out, nil
}

func (f *fakeUpstream) PullRequest(_ context.Context, repo string, id int) (*model.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for _, pr := range f.prs[repo] {
		if pr.ID == id {
			cp := pr
			return &cp, nil
		}
	}
	return nil, errors.New("404")
}

func (f *fakeUpstream) Deployments(_ context.Context, repo string) ([]model.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.deps[repo], nil
}

func (f *fakeUpstream) Calls() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// fakeReconciler stands for prflow: it records what it saw and stores the
// PR record the way prflow does, so the next pass finds it unchanged.
type fakeReconciler struct {
	st   *memStore
	seen []string
	up   *fakeUpstream
}

func (r *fakeReconciler) Reconcile(_ context.Context, pr model.PullRequest, trigger string) error {
	if trigger != "audit" {
		return fmt.Errorf("trigger %q", trigger)
	}
	if pr.Participants == nil {
		return errors.New("reconciled a list object without participants")
	}
	r.seen = append(r.seen, fmt.Sprintf("%s#%d", pr.Repository, pr.ID))
	r.up.mu.Lock()
	r.up.calls += 2 // e.g. a status repaired and a reviewer added
	r.up.mu.Unlock()
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

func pr(repo string, id int, updated time.Time, state model.PRState) model.PullRequest {
	// Bitbucket's updated_on carries microseconds.
	return model.PullRequest{Repository: repo, ID: id, State: state, SourceCommit: fmt.Sprintf("%040d", id), UpdatedAt: updated.Add(123456 * time.Nanosecond).Truncate(time.Microsecond),
		Participants: []model.Participant{}}
}

func setup() (*Auditor, *fakeUpstream, *fakeReconciler, *memStore, *time.Time) {
	up := &fakeUpstream{prs: map[string][]model.PullRequest{}, deps: map[string][]model.Deployment{}}
	st := newMemStore()
	rec := &fakeReconciler{st: st, up: up}
	now := t0
	a := New(Options{Upstream: up, Reconciler: rec, Store: st, Roles: roles.NewCurrent(testOrg()), HourlyBudget: 500,
		Now: func() time.Time { return now }})
	return a, up, rec, st, &now
}

func TestIncrementalUnchangedCostsNothing(t *testing.T) {
	a, up, rec, _, now := setup()
	up.prs["reloadly/payments-api"] = []model.PullRequest{
		pr("reloadly/payments-api", 1, t0.Add(-3*time.Hour), model.PROpen),
		pr("reloadly/payments-api", 2, t0.Add(-2*time.Hour), model.PRMerged),
	}
	up.prs["reloadly/checkout-web"] = []model.PullRequest{pr("reloadly/checkout-web", 5, t0.Add(-time.Hour), model.PROpen)}
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
	up.prs["reloadly/payments-api"][0].UpdatedAt = t0.Add(90 * time.Minute)
	up.prs["reloadly/payments-api"][0].SourceCommit = strings.Repeat("a", 40)
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
	a, up, rec, st, now := setup()
	a.o.HourlyBudget = 12
	for i := 1; i <= 6; i++ {
		up.prs["reloadly/payments-api"] = append(up.prs["reloadly/payments-api"], pr("reloadly/payments-api", i, t0.Add(time.Duration(-10+i)*time.Minute), model.PROpen))
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
	a, up, _, st, _ := setup()
	commit := strings.Repeat("c", 40)
	up.deps["reloadly/payments-api"] = []model.Deployment{
		{UUID: "{d1}", Environment: "production", Commit: commit, State: "COMPLETED", Status: "SUCCESSFUL", At: t0.Add(-time.Hour)},
		{UUID: "{d2}", Environment: "production", Commit: strings.Repeat("d", 40), State: "COMPLETED", At: t0.Add(-30 * time.Minute)},
		{UUID: "{d3}", Environment: "staging", Commit: commit, State: "COMPLETED", At: t0.Add(-20 * time.Minute)},
		{UUID: "{d4}", Environment: "production", Commit: strings.Repeat("e", 40), State: "UNDEPLOYED", At: t0.Add(-10 * time.Minute)},
	}
	st.gates = []store.Gate{{ID: "g1", Repository: "reloadly/payments-api", Commit: commit, Environment: "production",
		State: store.GateApproved, DecidedBy: "acc-ana"}}
	res, err := a.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployments != 2 || res.Findings != 2 {
		t.Fatalf("res = %+v", res)
	}
	held := st.findings["deploy:reloadly/payments-api:{d1}"]
	if !held.Held || !strings.Contains(held.Reason, "Ana Souza") {
		t.Errorf("gated deployment: %+v", held)
	}
	bad := st.findings["deploy:reloadly/payments-api:{d2}"]
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
	a, up, _, _, _ := setup()
	j := &fakeJira{}
	a.o.Jira = j
	var last Progress
	if _, err := a.Run(context.Background(), func(p Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if j.runs != 1 || last.ReposDone != 2 || last.ReposTotal != 2 || last.Jira != "done" {
		t.Errorf("progress = %+v, jira runs %d", last, j.runs)
	}
	up.fail = errors.New("503 from upstream")
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
