package gate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/upstream"
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
      - Owns the entire engineering process
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

// fakeHost is an in-memory Bitbucket behind the gate's narrow interface,
// answering as the real client does: commit lookups by full hash,
// short hashes (12, as payloads carry) in pull requests, participants with
// approvals, dated activity, commits with authors, comments oldest first,
// a 404 for a missing pull request or a hash that resolves to no single
// commit.
type fakeHost struct {
	mu       sync.Mutex
	now      func() time.Time
	prs      map[int]*fakePR
	statuses map[string]model.CommitStatus // commit|key
	posted   []postedComment
	calls    int
	failAll  error // every call fails with it while set
	resolves int   // ResolveCommit calls
	noIndex  bool  // no pull request commit-links index: commit lookups answer 404
	seq      int
}

type fakePR struct {
	id        int
	author    string
	state     model.PRState
	head      string
	commits   []string
	authors   map[string]string // commit → author account ("" for an unmapped email)
	merge     string
	approvals map[string]time.Time
	updates   []model.PRActivity // creation, pushes, merge or decline, oldest first
	comments  []model.Comment
}

type postedComment struct {
	pr   int
	body string
}

func newFakeHost(now func() time.Time) *fakeHost {
	return &fakeHost{now: now, prs: map[int]*fakePR{}, statuses: map[string]model.CommitStatus{}}
}

func (h *fakeHost) modelPR(p *fakePR, full bool) *model.PullRequest {
	pr := &model.PullRequest{Repository: testRepo, ID: p.id, State: p.state, Author: model.Actor{AccountID: p.author},
		SourceCommit: p.head[:12], MergeCommit: p.merge}
	if len(pr.MergeCommit) > 12 {
		pr.MergeCommit = pr.MergeCommit[:12] // payloads carry short hashes
	}
	if full {
		accs := make([]string, 0, len(p.approvals))
		for a := range p.approvals {
			accs = append(accs, a)
		}
		sort.Strings(accs)
		for _, a := range accs {
			pr.Participants = append(pr.Participants, model.Participant{User: model.Actor{AccountID: a}, Approved: true,
				State: model.ReviewApproved, On: p.approvals[a]})
		}
	}
	return pr
}

func (h *fakeHost) begin() error {
	h.mu.Lock()
	h.calls++
	return h.failAll
}

func (h *fakeHost) CommitPullRequests(_ context.Context, _ string, commit string) ([]model.PullRequest, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	defer h.mu.Unlock()
	if h.noIndex {
		return nil, &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "GET", Endpoint: "commit/{hash}/pullrequests", Message: "not found"}
	}
	var ids []int
	for id, p := range h.prs {
		if slices.ContainsFunc(append([]string{p.merge}, p.commits...), func(c string) bool { return model.SameFullCommit(c, commit) }) {
			ids = append(ids, id)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	var out []model.PullRequest
	for _, id := range ids {
		out = append(out, *h.modelPR(h.prs[id], false))
	}
	return out, nil
}

func (h *fakeHost) GetPullRequest(_ context.Context, _ string, id int) (*model.PullRequest, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	defer h.mu.Unlock()
	p := h.prs[id]
	if p == nil {
		return nil, &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "GET", Endpoint: "pullrequests/{id}", Message: "not found"}
	}
	return h.modelPR(p, true), nil
}

func (h *fakeHost) PullRequestCommits(_ context.Context, _ string, id int) ([]model.Commit, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	defer h.mu.Unlock()
	p := h.prs[id]
	if p == nil {
		return nil, &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "GET", Endpoint: "pullrequests/{id}/commits"}
	}
	var out []model.Commit
	for i := len(p.commits) - 1; i >= 0; i-- { // newest first
		c := p.commits[i]
		out = append(out, model.Commit{Hash: c, Author: model.Actor{AccountID: p.authors[c]}, AuthorRaw: "Someone <" + p.authors[c] + "@example.com>"})
	}
	return out, nil
}

func (h *fakeHost) PullRequestActivity(_ context.Context, _ string, id int) ([]model.PRActivity, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	defer h.mu.Unlock()
	p := h.prs[id]
	if p == nil {
		return nil, &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "GET", Endpoint: "pullrequests/{id}/activity"}
	}
	out := slices.Clone(p.updates)
	for who, at := range p.approvals {
		out = append(out, model.PRActivity{Kind: model.ActivityApproval, User: model.Actor{AccountID: who}, At: at})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) }) // newest first
	return out, nil
}

func (h *fakeHost) ResolveCommit(_ context.Context, _ string, hash string) (string, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return "", err
	}
	defer h.mu.Unlock()
	h.resolves++
	var found []string
	for _, p := range h.prs {
		for _, c := range append([]string{p.merge}, p.commits...) {
			if c != "" && len(hash) >= 7 && strings.HasPrefix(c, strings.ToLower(hash)) && !slices.Contains(found, c) {
				found = append(found, c)
			}
		}
	}
	if len(found) != 1 {
		return "", &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "GET", Endpoint: "commit/{hash}", Message: "no single commit " + hash}
	}
	return found[0], nil
}

func (h *fakeHost) ListComments(_ context.Context, _ string, id int, _ int) ([]model.Comment, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	defer h.mu.Unlock()
	if h.prs[id] == nil {
		return nil, &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "GET", Endpoint: "pullrequests/{id}/comments"}
	}
	return slices.Clone(h.prs[id].comments), nil
}

func (h *fakeHost) CreateComment(_ context.Context, _ string, id int, body string) (model.Comment, error) {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return model.Comment{}, err
	}
	defer h.mu.Unlock()
	p := h.prs[id]
	if p == nil {
		return model.Comment{}, &upstream.Error{Service: "bitbucket", StatusCode: 404, Method: "POST", Endpoint: "pullrequests/{id}/comments"}
	}
	h.seq++
	c := model.Comment{ID: fmt.Sprint(900000 + h.seq), Author: model.Actor{AccountID: "acc-bot"}, Body: body, CreatedAt: h.now()}
	p.comments = append(p.comments, c)
	h.posted = append(h.posted, postedComment{id, body})
	return c, nil
}

func (h *fakeHost) SetCommitStatus(_ context.Context, _ string, commit string, st model.CommitStatus) error {
	if err := h.begin(); err != nil {
		h.mu.Unlock()
		return err
	}
	defer h.mu.Unlock()
	if st.URL == "" || st.Key == "" {
		return &upstream.Error{Service: "bitbucket", StatusCode: 400, Method: "POST", Endpoint: "commit/{hash}/statuses/build", Message: "url and key are required"}
	}
	h.statuses[commit+"|"+st.Key] = st
	return nil
}

// world changes (as people acting in Bitbucket)

func (h *fakeHost) addPR(id int, author, head string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.prs[id] = &fakePR{id: id, author: author, state: model.PROpen, head: head, commits: []string{head},
		authors: map[string]string{head: author}, approvals: map[string]time.Time{},
		updates: []model.PRActivity{{Kind: model.ActivityUpdate, User: model.Actor{AccountID: author}, At: h.now(), State: model.PROpen, SourceCommit: head[:12]}}}
}

// push pushes head onto the pull request as its author.
func (h *fakeHost) push(id int, head string) { h.pushBy(id, head, h.prs[id].author) }

// pushBy pushes head onto the pull request, authored by who (a colleague
// pushing onto someone's branch). Approvals survive, as in Bitbucket.
func (h *fakeHost) pushBy(id int, head, who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.prs[id]
	p.head = head
	p.commits = append(p.commits, head)
	p.authors[head] = who
	p.updates = append(p.updates, model.PRActivity{Kind: model.ActivityUpdate, User: model.Actor{AccountID: who}, At: h.now(), State: model.PROpen, SourceCommit: head[:12]})
}

func (h *fakeHost) merge(id int, mergeCommit string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.prs[id]
	p.state, p.merge = model.PRMerged, mergeCommit
	p.updates = append(p.updates, model.PRActivity{Kind: model.ActivityUpdate, User: model.Actor{AccountID: p.author}, At: h.now(), State: model.PRMerged, SourceCommit: p.head[:12]})
}

func (h *fakeHost) decline(id int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.prs[id]
	p.state = model.PRDeclined
	p.updates = append(p.updates, model.PRActivity{Kind: model.ActivityUpdate, User: model.Actor{AccountID: p.author}, At: h.now(), State: model.PRDeclined, SourceCommit: p.head[:12]})
}

// approve approves as who; approving again keeps the first approval's date,
// as Bitbucket does.
func (h *fakeHost) approve(id int, who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.prs[id].approvals[who]; !ok {
		h.prs[id].approvals[who] = h.now()
	}
}

func (h *fakeHost) unapprove(id int, who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.prs[id].approvals, who)
}

func (h *fakeHost) say(id int, who, body string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	c := model.Comment{ID: fmt.Sprint(100000 + h.seq), Author: model.Actor{AccountID: who}, Body: body, CreatedAt: h.now()}
	h.prs[id].comments = append(h.prs[id].comments, c)
	return c.ID
}

func (h *fakeHost) status(commit, env string) model.CommitStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statuses[commit+"|"+StatusKey(env)]
}

func (h *fakeHost) postedTo(pr int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.posted {
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
	d.ID = int64(len(m.decisions) + 1)
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
