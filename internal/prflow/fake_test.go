package prflow

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// fakeErr answers like the Bitbucket client's errors: Temporary for 429
// and 5xx, Permanent for other 4xx, NotFound for 404.
type fakeErr struct{ status int }

func (e *fakeErr) Error() string   { return "bitbucket: status " + strconv.Itoa(e.status) }
func (e *fakeErr) Temporary() bool { return e.status == 429 || e.status >= 500 }
func (e *fakeErr) Permanent() bool { return e.status >= 400 && e.status < 500 && e.status != 429 }
func (e *fakeErr) NotFound() bool  { return e.status == http.StatusNotFound }

// fakeHost is Bitbucket in memory, answering as the real API does: the
// reviewers PUT replaces the list and refuses the author or a closed pull
// request, statuses are overwritten by key, comments get ids.
type fakeHost struct {
	mu         sync.Mutex
	prs        map[string]*model.PullRequest // "repo#id"
	diffs      map[string][]model.ChangedFile
	statuses   map[string]map[string]model.CommitStatus // "repo@commit" → key
	comments   map[string][]model.Comment
	calls      []string
	fail       map[string][]error // method → errors for the next calls (nil: succeed)
	abbreviate bool               // pull-request answers carry 12-character hashes, as Bitbucket's do
	nextID     int
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		prs:      map[string]*model.PullRequest{},
		diffs:    map[string][]model.ChangedFile{},
		statuses: map[string]map[string]model.CommitStatus{},
		comments: map[string][]model.Comment{},
		fail:     map[string][]error{},
	}
}

func prKey(repo string, id int) string { return fmt.Sprintf("%s#%d", repo, id) }

func (f *fakeHost) add(pr model.PullRequest, files ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := clonePR(&pr)
	f.prs[prKey(pr.Repository, pr.ID)] = &c
	cf := make([]model.ChangedFile, len(files))
	for i, p := range files {
		cf[i] = model.ChangedFile{Path: p, Status: model.FileModified}
	}
	f.diffs[prKey(pr.Repository, pr.ID)] = cf
}

// mirror makes the fake's review state what the event shows: its
// participants, then the event's own approval fact.
func (f *fakeHost) mirror(ev *model.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.PullRequest == nil {
		return
	}
	pr := f.prs[prKey(ev.PullRequest.Repository, ev.PullRequest.ID)]
	if pr == nil {
		return
	}
	parts := append([]model.Participant(nil), ev.PullRequest.Participants...)
	who := ev.Actor.AccountID
	if ev.Approval != nil && ev.Approval.AccountID != "" {
		who = ev.Approval.AccountID
	}
	set := func(approved bool, st model.ReviewState) {
		for i := range parts {
			if parts[i].User.AccountID == who {
				parts[i].Approved, parts[i].State = approved, st
				return
			}
		}
		if approved || st != model.ReviewNone {
			parts = append(parts, model.Participant{User: ev.Actor, Approved: approved, State: st, On: ev.At})
		}
	}
	switch ev.Kind {
	case model.EventPRApproved:
		set(true, model.ReviewApproved)
	case model.EventPRUnapproved, model.EventPRChangesRequestRemoved:
		set(false, model.ReviewNone)
	case model.EventPRChangesRequested:
		set(false, model.ReviewChangesRequested)
	}
	pr.Participants = parts
	if closed(ev.PullRequest.State) {
		pr.State, pr.MergeCommit, pr.ClosedBy = ev.PullRequest.State, ev.PullRequest.MergeCommit, ev.PullRequest.ClosedBy
	}
	if ev.PullRequest.UpdatedAt.After(pr.UpdatedAt) {
		pr.UpdatedAt = ev.PullRequest.UpdatedAt
	}
}

// record notes a call and returns the injected error for it, if any.
func (f *fakeHost) record(method string) error {
	f.calls = append(f.calls, method)
	if errs := f.fail[method]; len(errs) > 0 {
		f.fail[method] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeHost) failNext(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = append(f.fail[method], errs...)
}

func (f *fakeHost) answer(pr *model.PullRequest) *model.PullRequest {
	c := clonePR(pr)
	if f.abbreviate && len(c.SourceCommit) > 12 {
		c.SourceCommit = c.SourceCommit[:12]
	}
	return &c
}

func (f *fakeHost) GetPullRequest(_ context.Context, repo string, id int) (*model.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("GetPullRequest"); err != nil {
		return nil, err
	}
	pr := f.prs[prKey(repo, id)]
	if pr == nil {
		return nil, &fakeErr{404}
	}
	return f.answer(pr), nil
}

func (f *fakeHost) PullRequestDiffStat(_ context.Context, repo string, id int) ([]model.ChangedFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("PullRequestDiffStat"); err != nil {
		return nil, err
	}
	d, ok := f.diffs[prKey(repo, id)]
	if !ok {
		return nil, &fakeErr{404}
	}
	return append([]model.ChangedFile(nil), d...), nil
}

// PullRequestCommits answers the head commit, by the pull request's author.
func (f *fakeHost) PullRequestCommits(_ context.Context, repo string, id int) ([]model.Commit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("PullRequestCommits"); err != nil {
		return nil, err
	}
	pr := f.prs[prKey(repo, id)]
	if pr == nil {
		return nil, &fakeErr{404}
	}
	return []model.Commit{{Hash: pr.SourceCommit, Author: pr.Author}}, nil
}

// PullRequestActivity answers one update entry: the head pushed at the pull
// request's update time.
func (f *fakeHost) PullRequestActivity(_ context.Context, repo string, id int) ([]model.PRActivity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("PullRequestActivity"); err != nil {
		return nil, err
	}
	pr := f.prs[prKey(repo, id)]
	if pr == nil {
		return nil, &fakeErr{404}
	}
	return []model.PRActivity{{Kind: model.ActivityUpdate, At: pr.CreatedAt, SourceCommit: pr.SourceCommit}}, nil
}

func (f *fakeHost) ResolveCommit(_ context.Context, repo, commit string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("ResolveCommit"); err != nil {
		return "", err
	}
	for _, pr := range f.prs {
		if pr.Repository == repo && len(pr.SourceCommit) == 40 && strings.HasPrefix(pr.SourceCommit, commit) {
			return pr.SourceCommit, nil
		}
	}
	return "", &fakeErr{404}
}

func (f *fakeHost) SetReviewers(_ context.Context, repo string, id int, title, _ string, reviewers []model.Actor) (*model.PullRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("SetReviewers"); err != nil {
		return nil, err
	}
	pr := f.prs[prKey(repo, id)]
	if pr == nil {
		return nil, &fakeErr{404}
	}
	if pr.State != model.PROpen {
		return nil, &fakeErr{400}
	}
	for _, r := range reviewers {
		if r.AccountID == pr.Author.AccountID {
			return nil, &fakeErr{400} // "the author cannot be a reviewer"
		}
	}
	pr.Title = title
	pr.Reviewers = append([]model.Actor(nil), reviewers...)
	pr.UpdatedAt = pr.UpdatedAt.Add(time.Minute)
	return f.answer(pr), nil
}

func (f *fakeHost) SetCommitStatus(_ context.Context, repo, commit string, st model.CommitStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("SetCommitStatus"); err != nil {
		return err
	}
	if st.URL == "" || st.Key == "" || st.State == "" {
		return &fakeErr{400}
	}
	k := repo + "@" + commit
	if f.statuses[k] == nil {
		f.statuses[k] = map[string]model.CommitStatus{}
	}
	st.Commit = commit
	f.statuses[k][st.Key] = st
	return nil
}

func (f *fakeHost) CreateComment(_ context.Context, repo string, id int, body string) (model.Comment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("CreateComment"); err != nil {
		return model.Comment{}, err
	}
	f.nextID++
	c := model.Comment{ID: strconv.Itoa(1000 + f.nextID), Body: body}
	f.comments[prKey(repo, id)] = append(f.comments[prKey(repo, id)], c)
	return c, nil
}

func (f *fakeHost) UpdateComment(_ context.Context, repo string, id int, commentID, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("UpdateComment"); err != nil {
		return err
	}
	cs := f.comments[prKey(repo, id)]
	for i := range cs {
		if cs[i].ID == commentID {
			cs[i].Body = body
			return nil
		}
	}
	return &fakeErr{404}
}

// deleteComments removes every comment of a pull request, as a person would.
func (f *fakeHost) deleteComments(repo string, id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.comments, prKey(repo, id))
}

func (f *fakeHost) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeHost) pr(repo string, id int) model.PullRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return clonePR(f.prs[prKey(repo, id)])
}

func (f *fakeHost) reviewerIDs(repo string, id int) []string {
	pr := f.pr(repo, id)
	return accountIDs(pr.Reviewers)
}

func (f *fakeHost) status(repo, commit, key string) (model.CommitStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.statuses[repo+"@"+commit][key]
	return st, ok
}

func (f *fakeHost) commentsOn(repo string, id int) []model.Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]model.Comment(nil), f.comments[prKey(repo, id)]...)
}

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
