package prflow

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// The store in memory, with failures to inject: Bitbucket is never faked
// here (the tests run the real client against bitbuckettest).

func prKey(repo string, id int) string { return fmt.Sprintf("%s#%d", repo, id) }

// memStore keeps records in memory, copying on the way in and out as a
// database would.
type memStore struct {
	mu         sync.Mutex
	prs        map[string]store.PRRecord
	decisions  []store.DecisionRecord
	findings   map[string]model.Finding
	failUpsert []error // errors for the next UpsertPR calls
	// failUpsertIf, when set, may refuse a write by the record it writes.
	failUpsertIf func(*store.PRRecord) error
	failOutcome  []error // errors for the next SetOutcome calls
}

func newMemStore() *memStore {
	return &memStore{prs: map[string]store.PRRecord{}, findings: map[string]model.Finding{}}
}

func copyRec(r store.PRRecord) store.PRRecord {
	r.ChangedFiles = append([]string(nil), r.ChangedFiles...)
	r.Reviewers = append([]string(nil), r.Reviewers...)
	r.Requested = append([]string(nil), r.Requested...)
	r.Approvals = append([]model.Approval(nil), r.Approvals...)
	if r.Statuses != nil {
		m := make(map[string]string, len(r.Statuses))
		for k, v := range r.Statuses {
			m[k] = v
		}
		r.Statuses = m
	}
	return r
}

func (s *memStore) UpsertPR(_ context.Context, pr *store.PRRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failUpsert) > 0 {
		err := s.failUpsert[0]
		s.failUpsert = s.failUpsert[1:]
		if err != nil {
			return err
		}
	}
	if s.failUpsertIf != nil {
		if err := s.failUpsertIf(pr); err != nil {
			return err
		}
	}
	s.prs[prKey(pr.Repository, pr.ID)] = copyRec(*pr)
	return nil
}

func (s *memStore) GetPR(_ context.Context, repo string, id int) (*store.PRRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.prs[prKey(repo, id)]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := copyRec(r)
	return &c, nil
}

func (s *memStore) ListPRs(_ context.Context, f store.PRFilter) ([]store.PRRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.PRRecord
	for _, r := range s.prs {
		if (f.Repository == "" || r.Repository == f.Repository) && (f.State == "" || r.State == f.State) {
			out = append(out, copyRec(r))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Repository != out[j].Repository {
			return out[i].Repository < out[j].Repository
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (s *memStore) PRsByCommit(_ context.Context, repo, commit string) ([]store.PRRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.PRRecord
	for _, r := range s.prs {
		if r.Repository == repo && (model.SameFullCommit(r.SourceCommit, commit) || model.SameFullCommit(r.MergeCommit, commit)) {
			out = append(out, copyRec(r))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *memStore) SaveDecision(_ context.Context, d *store.DecisionRecord) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *d
	c.ID, c.PublicID = int64(len(s.decisions)+1), store.NewPublicID()
	s.decisions = append(s.decisions, c)
	d.ID, d.PublicID = c.ID, c.PublicID
	return c.ID, nil
}

func (s *memStore) GetDecisionByPublicID(_ context.Context, pub string) (*store.DecisionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.decisions {
		if c.PublicID == pub && pub != "" {
			return &c, nil
		}
	}
	return nil, store.ErrNotFound
}

func (s *memStore) SetOutcome(_ context.Context, id int64, outcome string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failOutcome) > 0 {
		err := s.failOutcome[0]
		s.failOutcome = s.failOutcome[1:]
		if err != nil {
			return err
		}
	}
	if id <= 0 || int(id) > len(s.decisions) {
		return store.ErrNotFound
	}
	s.decisions[id-1].Outcome = outcome
	return nil
}

func (s *memStore) GetDecision(_ context.Context, id int64) (*store.DecisionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id <= 0 || int(id) > len(s.decisions) {
		return nil, store.ErrNotFound
	}
	c := s.decisions[id-1]
	return &c, nil
}

func (s *memStore) ListDecisions(_ context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.DecisionRecord
	for _, d := range s.decisions {
		if (f.Repository == "" || d.Repository == f.Repository) && (f.PR == 0 || d.PR == f.PR) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *memStore) AddFinding(_ context.Context, f model.Finding) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.findings[f.Key]; ok {
		return false, nil
	}
	s.findings[f.Key] = f
	return true, nil
}

func (s *memStore) ListFindings(_ context.Context, _ store.FindingFilter) ([]model.Finding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]model.Finding, 0, len(s.findings))
	for _, f := range s.findings {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *memStore) rec(repo string, id int) (store.PRRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.prs[prKey(repo, id)]
	return copyRec(r), ok
}

func (s *memStore) lastDecision() store.DecisionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.decisions) == 0 {
		return store.DecisionRecord{}
	}
	return s.decisions[len(s.decisions)-1]
}

func (s *memStore) decisionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.decisions)
}
