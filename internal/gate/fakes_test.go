package gate

import (
	"context"
	"fmt"
	"maps"
	"slices"
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

const testRepo = "reloadly/payments-api"

// orgYAML: Ana and Bo are product owners (the deploy-approval role), Mei
// and Tom technical leads, Raj the CTO.
const orgYAML = `version: 1
organization: Test
roles:
  product-owner:
    title: Product owner
    responsibilities:
      - text: Performs and oversees production deployments
        enforce:
          deploy-approval: {environments: [production]}
  technical-lead:
    title: Technical lead
    responsibilities:
      - text: Reviews code written by the engineers in the team
        enforce:
          code-review: {reviewers: 1, approvals: 1}
  cto:
    title: Chief Technology Officer
    scope: organization
    responsibilities:
      - text: Owns the entire engineering process
        enforce:
          break-glass: {environments: [production], follow_up: product-owner}
teams:
  payments:
    repositories: [reloadly/payments-api]
    jira_projects: [PAY]
people:
  - {id: ana, name: Ana Souza, account_id: acc-ana, roles: [product-owner], teams: [payments]}
  - {id: bo, name: Bo Lin, account_id: acc-bo, roles: [product-owner], teams: [payments]}
  - {id: mei, name: Mei Chen, account_id: acc-mei, roles: [technical-lead], teams: [payments]}
  - {id: tom, name: Tom Berg, account_id: acc-tom, roles: [technical-lead], teams: [payments]}
  - {id: raj, name: Raj Patel, account_id: acc-raj, roles: [cto]}
`

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func testOrg(t testing.TB) *roles.Org {
	t.Helper()
	org, err := roles.ParseAt("roles.yaml", []byte(orgYAML), t0)
	if err != nil {
		t.Fatal(err)
	}
	return org
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeHost is the shared fake Bitbucket Cloud (bitbuckettest) behind the
// real client, as the gate's Host, with the helpers these tests act through
// (people acting in Bitbucket). It counts the Host calls and answers
// nothing itself: outages and a missing commit-links index are the fake's
// (bb.Fail, bb.SetLinkIndex).
type fakeHost struct {
	bb     *bitbuckettest.Server
	client *bitbucket.Client

	mu       sync.Mutex
	calls    int
	resolves int                 // ResolveCommit calls
	posted   []postedComment     // comments rolekeeper posted
	commits  map[string]bool     // commits rolekeeper posted statuses on
	authors  map[int]model.Actor // pull request → author
	users    map[string]model.Actor
}

type postedComment struct {
	pr   int
	body string
}

func newFakeHost(t testing.TB, now func() time.Time) *fakeHost {
	t.Helper()
	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	bb.SetClock(now)
	bb.AddRepository(testRepo)
	client, err := bitbucket.New(bitbucket.Options{BaseURL: bb.URL(), MaxRetries: 0,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeHost{bb: bb, client: client, commits: map[string]bool{}, authors: map[int]model.Actor{}, users: map[string]model.Actor{}}
}

// begin counts a call.
func (h *fakeHost) begin() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
}

func (h *fakeHost) CommitPullRequests(ctx context.Context, repo, commit string) ([]model.PullRequest, error) {
	h.begin()
	return h.client.CommitPullRequests(ctx, repo, commit)
}

func (h *fakeHost) GetPullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error) {
	h.begin()
	return h.client.GetPullRequest(ctx, repo, id)
}

func (h *fakeHost) PullRequestCommits(ctx context.Context, repo string, id int) ([]model.Commit, error) {
	h.begin()
	return h.client.PullRequestCommits(ctx, repo, id)
}

func (h *fakeHost) PullRequestActivity(ctx context.Context, repo string, id int) ([]model.PRActivity, error) {
	h.begin()
	return h.client.PullRequestActivity(ctx, repo, id)
}

func (h *fakeHost) ResolveCommit(ctx context.Context, repo, hash string) (string, error) {
	h.begin()
	h.mu.Lock()
	h.resolves++
	h.mu.Unlock()
	return h.client.ResolveCommit(ctx, repo, hash)
}

func (h *fakeHost) MainBranch(ctx context.Context, repo string) (string, error) {
	h.begin()
	return h.client.MainBranch(ctx, repo)
}

func (h *fakeHost) ListComments(ctx context.Context, repo string, id int, maxPages int) ([]model.Comment, error) {
	h.begin()
	return h.client.ListComments(ctx, repo, id, maxPages)
}

func (h *fakeHost) CreateComment(ctx context.Context, repo string, id int, body string) (model.Comment, error) {
	h.begin()
	c, err := h.client.CreateComment(ctx, repo, id, body)
	if err == nil {
		h.mu.Lock()
		h.posted = append(h.posted, postedComment{id, body})
		h.mu.Unlock()
	}
	return c, err
}

func (h *fakeHost) SetCommitStatus(ctx context.Context, repo, commit string, st model.CommitStatus) error {
	h.begin()
	err := h.client.SetCommitStatus(ctx, repo, commit, st)
	if err == nil {
		h.mu.Lock()
		h.commits[strings.ToLower(commit)] = true
		h.mu.Unlock()
	}
	return err
}

// world changes (as people acting in Bitbucket)

func (h *fakeHost) user(account string) model.Actor {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a, ok := h.users[account]; ok {
		return a
	}
	a := h.bb.AddUser(model.Actor{AccountID: account, DisplayName: strings.TrimPrefix(account, "acc-")})
	h.users[account] = a
	return a
}

// addPR opens pull request id by author with head as its source commit.
func (h *fakeHost) addPR(id int, author, head string) {
	a := h.user(author)
	h.bb.AddPullRequest(testRepo, bitbuckettest.PR{ID: id, Author: a, SourceCommit: head})
	h.mu.Lock()
	h.authors[id] = a
	h.mu.Unlock()
}

// push pushes head onto the pull request as its author.
func (h *fakeHost) push(id int, head string) {
	h.mu.Lock()
	author := h.authors[id]
	h.mu.Unlock()
	h.pushBy(id, head, author.AccountID, false)
}

// pushBy pushes head onto the pull request, authored and pushed by who (a
// colleague pushing onto someone's branch). Approvals survive, as in
// Bitbucket.
func (h *fakeHost) pushBy(id int, head, who string, force bool) {
	a := h.user(who)
	if _, err := h.bb.Push(testRepo, id, bitbuckettest.Commit{Hash: head, Author: a, Pusher: a, Force: force}); err != nil {
		panic(err)
	}
}

func (h *fakeHost) merge(id int, mergeCommit string) {
	h.mu.Lock()
	author := h.authors[id]
	h.mu.Unlock()
	if err := h.bb.Merge(testRepo, id, author, mergeCommit); err != nil {
		panic(err)
	}
}

func (h *fakeHost) decline(id int) {
	h.mu.Lock()
	author := h.authors[id]
	h.mu.Unlock()
	if err := h.bb.Decline(testRepo, id, author); err != nil {
		panic(err)
	}
}

// approve approves as who; false when Bitbucket refuses (a closed pull
// request).
func (h *fakeHost) approve(id int, who string) bool {
	return h.bb.Approve(testRepo, id, h.user(who)) == nil
}

// unapprove withdraws who's approval; false when Bitbucket refuses.
func (h *fakeHost) unapprove(id int, who string) bool {
	return h.bb.Unapprove(testRepo, id, h.user(who)) == nil
}

func (h *fakeHost) say(id int, who, body string) string {
	return h.bb.AddComment(testRepo, id, h.user(who), body)
}

func (h *fakeHost) status(commit, env string) model.CommitStatus {
	return h.bb.Statuses(testRepo, strings.ToLower(commit))[StatusKey(env)]
}

// statuses are the statuses on the commits rolekeeper posted on, by
// "commit|key".
func (h *fakeHost) statuses() map[string]model.CommitStatus {
	h.mu.Lock()
	commits := maps.Clone(h.commits)
	h.mu.Unlock()
	out := map[string]model.CommitStatus{}
	for c := range commits {
		for k, st := range h.bb.Statuses(testRepo, c) {
			out[c+"|"+k] = st
		}
	}
	return out
}

func (h *fakeHost) postedAll() []postedComment {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.posted)
}

func (h *fakeHost) postedTo(pr int) []string {
	var out []string
	for _, c := range h.postedAll() {
		if c.pr == pr {
			out = append(out, c.body)
		}
	}
	return out
}

func (h *fakeHost) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// memStore is an in-memory store.Gates (with optimistic versions) plus the
// few other methods the gate uses. Gates are copied in and out, as a
// database would.
type memStore struct {
	mu        sync.Mutex
	gates     map[string]*store.Gate
	keys      map[string]string
	prs       []store.PRRecord
	findings  map[string]model.Finding
	decisions []store.DecisionRecord
}

func newMemStore() *memStore {
	return &memStore{gates: map[string]*store.Gate{}, keys: map[string]string{}, findings: map[string]model.Finding{}}
}

func (m *memStore) CreateGate(_ context.Context, g *store.Gate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.gates[g.ID]; ok {
		return store.ErrConflict
	}
	if _, ok := m.keys[g.DedupeKey]; ok {
		return store.ErrConflict
	}
	g.Version = 1
	m.gates[g.ID] = cloneGate(g)
	m.keys[g.DedupeKey] = g.ID
	return nil
}

func cloneGate(g *store.Gate) *store.Gate {
	c := *g
	c.Approvers, c.Excluded, c.PRs = slices.Clone(g.Approvers), slices.Clone(g.Excluded), slices.Clone(g.PRs)
	c.Data = slices.Clone(g.Data)
	return &c
}

func (m *memStore) get(id string) (*store.Gate, error) {
	g, ok := m.gates[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneGate(g), nil
}

func (m *memStore) GetGate(_ context.Context, id string) (*store.Gate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.get(id)
}

func (m *memStore) GetGateByKey(_ context.Context, key string) (*store.Gate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.keys[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return m.get(id)
}

func (m *memStore) UpdateGate(_ context.Context, g *store.Gate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.get(g.ID)
	if err != nil {
		return err
	}
	if cur.Version != g.Version {
		return store.ErrConflict
	}
	g.Version++
	m.gates[g.ID] = cloneGate(g)
	return nil
}

func (m *memStore) ListGates(_ context.Context, f store.GateFilter) ([]store.Gate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Gate
	for id := range m.gates {
		g, _ := m.get(id)
		if (f.State == "" || g.State == f.State) && (f.Repository == "" || g.Repository == f.Repository) {
			out = append(out, *g)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (m *memStore) PRsByCommit(_ context.Context, repo, commit string) ([]store.PRRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.PRRecord
	for _, r := range m.prs {
		if r.Repository == repo && (prefixOf(r.MergeCommit, commit) || prefixOf(r.SourceCommit, commit)) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) GetPR(_ context.Context, repo string, id int) (*store.PRRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.prs {
		if r.Repository == repo && r.ID == id {
			return &r, nil
		}
	}
	return nil, store.ErrNotFound
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

func (m *memStore) SaveDecision(_ context.Context, d *store.DecisionRecord) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d.ID, d.PublicID = int64(len(m.decisions)+1), store.NewPublicID()
	m.decisions = append(m.decisions, *d)
	return d.ID, nil
}

func (m *memStore) decisionsOf(gateID string) []store.DecisionRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.DecisionRecord
	for _, d := range m.decisions {
		if strings.Contains(d.Summary, gateID) {
			out = append(out, d)
		}
	}
	return out
}

// followUps records the Jira follow-ups asked for.
type followUps struct {
	mu      sync.Mutex
	created []string
	err     error
}

func (f *followUps) CreateFollowUp(_ context.Context, project, summary, _, assignee string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.created = append(f.created, project+"|"+assignee+"|"+summary)
	return fmt.Sprintf("%s-%d", project, 40+len(f.created)), nil
}

// prefixOf is how the SQL stores match their records (a candidate list
// the gate must check by full hash).
func prefixOf(short, full string) bool { return len(short) >= 7 && strings.HasPrefix(full, short) }

// hex40 makes a full commit hash from n whose 12-character prefix (what
// payloads carry) is distinct too.
func hex40(n int) string { return fmt.Sprintf("%012x%028x", 0xabc000000000+n, n) }
