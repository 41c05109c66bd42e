// Package bitbuckettest is an in-memory Bitbucket Cloud for tests and for
// `rolekeeper demo`: an HTTP server on 127.0.0.1 that answers the REST 2.0
// endpoints rolekeeper uses with the shapes the real API sends (see
// shared/fixtures/bitbucket/api and the OpenAPI spec), keeps what clients
// write for inspection, injects failures and counts calls. It also renders
// webhook bodies from its state, shaped like 2023–2026 captures.
//
// It reads nothing from disk: the demo ships without the fixtures.
package bitbuckettest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// PR describes a pull request to create with AddPullRequest.
type PR struct {
	ID                int // 0: the next number; a test may choose one that is free
	Title             string
	Description       string
	Author            model.Actor
	SourceBranch      string // default "feature/<id>"
	SourceCommit      string // 40 hex; generated when empty
	DestinationBranch string // default "main"
	DestinationCommit string // 40 hex; generated when empty
	Draft             bool
	Reviewers         []model.Actor
	Files             []model.ChangedFile
}

// Server is a fake Bitbucket Cloud. It is safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	now      func() time.Time
	repos    map[string]*repo       // by lower-case full name
	users    map[string]model.Actor // by account id and by uuid
	me       model.Actor            // the account the credentials belong to
	calls    map[string]int         // "METHOD /template"
	total    int                    //
	failures []*failure             //
	faulted  int                    // requests answered by a fault
	hold     chan struct{}          // not nil: requests wait until it closes
	held     atomic.Int64           // requests waiting on hold
	auth     *credentials           // nil: anything goes
	seq      int                    // ids of comments, deployments, uuids
}

type credentials struct{ user, token string }

// Fault is an injected failure: once Skip matching requests went through,
// the next Times matching requests answer Status with Bitbucket's error
// body (and Retry-After when set), before any other check. Empty matchers
// match everything.
type Fault struct {
	Method     string // "GET", "PUT", …
	Path       string // a substring of the request path
	Endpoint   string // exactly as Calls names it: "PUT /repositories/{ws}/{repo}/pullrequests/{id}"
	Skip       int
	Times      int
	Status     int
	RetryAfter string
	// When, if set, limits the fault to the moments it returns true (an
	// outage window on a test's clock). It runs under the server's lock:
	// it must not call the server.
	When func() bool
	// HTML answers a maintenance page (text/html) instead of Bitbucket's
	// JSON error, as a proxy in front of Bitbucket does when it is down.
	HTML bool
}

type failure struct {
	Fault
	seen int // matching requests let through so far
}

func (f *failure) match(method, path, endpoint string) bool {
	return f.Times > 0 && (f.Method == "" || f.Method == method) && strings.Contains(path, f.Path) &&
		(f.Endpoint == "" || f.Endpoint == endpoint) && (f.When == nil || f.When())
}

type repo struct {
	fullName     string
	uuid         string
	prs          map[int]*pullRequest
	nextID       int
	commits      map[string]bool               // full hashes known in this repository
	commitInfo   map[string]*commitRec         // authors and dates of commits pushed onto pull requests
	statuses     map[string]map[string]*status // commit → key → status
	environments []*environment                //
	deployments  []*deployment                 // oldest first
	statusOrder  map[string][]string           // commit → keys in creation order
	mainBranch   string                        // the repository's main branch ("" reads as main)
	linkIndex    LinkIndex                     // the pull request commit-links index
}

// LinkIndex is the state of a repository's pull request commit-links
// index, which GET commit/{hash}/pullrequests needs: Bitbucket builds it
// when the API is first asked, and old repositories may lack it.
type LinkIndex int

const (
	IndexReady    LinkIndex = iota // the lookup answers (the default)
	IndexBuilding                  // 202: "still being indexed"
	IndexMissing                   // 404: "commit links have not yet been indexed"
)

type pullRequest struct {
	id                 int
	title, description string
	state              model.PRState
	draft              bool
	author             model.Actor
	srcBranch          string
	srcCommit          string
	dstBranch          string
	dstCommit          string
	commits            []string // every source head the pull request has had
	mergeCommit        string
	closedBy           *model.Actor
	reviewers          []model.Actor
	acted              []*participant // people who approved, requested changes or commented
	files              []model.ChangedFile
	created, updated   time.Time
	comments           []*comment
	activity           []activity // oldest first
	puts               int
	lastPut            []byte
}

// commitRec is what a commit says about itself: the author (an account
// only when Bitbucket maps the email to one) and the author-chosen date.
type commitRec struct {
	author model.Actor
	raw    string
	date   time.Time
}

type participant struct {
	user     model.Actor
	approved bool
	state    model.ReviewState
	on       time.Time
}

type comment struct {
	id               int
	author           model.Actor
	body             string
	created, updated time.Time
	deleted          bool
}

type activity struct {
	kind    string // approval, changes_request, comment, update
	user    model.Actor
	at      time.Time
	comment *comment
	state   model.PRState
	commit  string // update: the source head after it
	dest    string // update: the destination branch after it (an entry is a snapshot)
}

type status struct {
	st      model.CommitStatus
	created time.Time
}

type environment struct {
	uuid, name, typ string
	rank            int
}

type deployment struct {
	uuid, envUUID, commit, state string
	pipelineUUID                 string
	build                        int
	at                           time.Time
}

// New starts a fake Bitbucket Cloud on 127.0.0.1 with a random port.
func New() *Server {
	s := &Server{
		now:   func() time.Time { return time.Now().UTC() },
		repos: map[string]*repo{},
		users: map[string]model.Actor{},
		calls: map[string]int{},
		me: model.Actor{
			AccountID:   "557058:7f1e2d3c-4b5a-4697-8a1b-0c2d3e4f5a6b",
			UUID:        "{9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d}",
			DisplayName: "rolekeeper",
			Nickname:    "rolekeeper",
		},
	}
	s.users[s.me.AccountID] = s.me
	s.users[s.me.UUID] = s.me
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API root, including "/2.0".
func (s *Server) URL() string { return s.srv.URL + "/2.0" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetClock replaces the clock stamping created_on, updated_on and dates.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = func() time.Time { return now().UTC() }
}

// RequireAuth makes every request need Basic user:token or Bearer token;
// others get 401.
func (s *Server) RequireAuth(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = &credentials{user: user, token: token}
}

// SetCurrentUser sets the account behind the credentials (GET /user, and
// the author of comments the client posts).
func (s *Server) SetCurrentUser(a model.Actor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.me = s.addUser(a)
}

// CurrentUser is the account behind the credentials.
func (s *Server) CurrentUser() model.Actor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.me
}

// AddUser makes an account known (reviewers must be known users). A missing
// uuid is derived from the account id. It returns the account as stored.
func (s *Server) AddUser(a model.Actor) model.Actor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUser(a)
}

func (s *Server) addUser(a model.Actor) model.Actor {
	if a.UUID == "" {
		a.UUID = uuidFor("user:" + a.AccountID + a.Nickname + a.DisplayName)
	}
	if a.DisplayName == "" {
		a.DisplayName = a.Nickname
	}
	if a.Nickname == "" {
		a.Nickname = a.DisplayName
	}
	if a.AccountID != "" {
		s.users[a.AccountID] = a
	}
	s.users[a.UUID] = a
	return a
}

// user finds a known account by account id or uuid.
func (s *Server) user(id string) (model.Actor, bool) {
	a, ok := s.users[id]
	return a, ok
}

// AddRepository creates an empty repository ("workspace/slug").
func (s *Server) AddRepository(fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName, true)
}

func (s *Server) repo(fullName string, create bool) *repo {
	key := strings.ToLower(fullName)
	r := s.repos[key]
	if r == nil && create {
		r = &repo{
			fullName:    key,
			uuid:        uuidFor("repo:" + key),
			prs:         map[int]*pullRequest{},
			commits:     map[string]bool{},
			commitInfo:  map[string]*commitRec{},
			statuses:    map[string]map[string]*status{},
			statusOrder: map[string][]string{},
		}
		s.repos[key] = r
	}
	return r
}

func (s *Server) pr(fullName string, id int) (*repo, *pullRequest, error) {
	r := s.repo(fullName, false)
	if r == nil {
		return nil, nil, fmt.Errorf("bitbuckettest: no repository %s", fullName)
	}
	p := r.prs[id]
	if p == nil {
		return nil, nil, fmt.Errorf("bitbuckettest: no pull request %s#%d", fullName, id)
	}
	return r, p, nil
}

// SetMainBranch sets the repository's main branch (mainbranch.name of the
// repository resource; "main" until set).
func (s *Server) SetMainBranch(fullName, branch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName, true).mainBranch = branch
}

// AddPullRequest opens a pull request (creating the repository if needed)
// and returns its id.
func (s *Server) AddPullRequest(fullName string, in PR) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName, true)
	id := r.nextID + 1
	if in.ID > 0 {
		if r.prs[in.ID] != nil {
			panic(fmt.Sprintf("bitbuckettest: %s#%d exists", fullName, in.ID))
		}
		id = in.ID
	}
	r.nextID = max(r.nextID, id)
	now := s.now()
	p := &pullRequest{
		id:          id,
		title:       in.Title,
		description: in.Description,
		state:       model.PROpen,
		draft:       in.Draft,
		author:      s.addUser(in.Author),
		srcBranch:   in.SourceBranch,
		srcCommit:   strings.ToLower(in.SourceCommit),
		dstBranch:   in.DestinationBranch,
		dstCommit:   strings.ToLower(in.DestinationCommit),
		files:       append([]model.ChangedFile(nil), in.Files...),
		created:     now,
		updated:     now,
	}
	if p.title == "" {
		p.title = fmt.Sprintf("Pull request %d", p.id)
	}
	if p.srcBranch == "" {
		p.srcBranch = fmt.Sprintf("feature/%d", p.id)
	}
	if p.dstBranch == "" {
		p.dstBranch = "main"
	}
	if p.srcCommit == "" {
		p.srcCommit = hashFor(fmt.Sprintf("%s#%d:src", r.fullName, p.id))
	}
	if p.dstCommit == "" {
		p.dstCommit = hashFor(fmt.Sprintf("%s#%d:dst", r.fullName, p.id))
	}
	for _, a := range in.Reviewers {
		p.reviewers = append(p.reviewers, s.addUser(a))
	}
	p.commits = []string{p.srcCommit}
	r.commits[p.srcCommit], r.commits[p.dstCommit] = true, true
	if r.commitInfo[p.srcCommit] == nil {
		r.commitInfo[p.srcCommit] = &commitRec{author: p.author, raw: rawAuthor(p.author), date: now}
	}
	p.activity = append(p.activity, activity{kind: "update", user: p.author, at: now, state: model.PROpen, commit: p.srcCommit, dest: p.dstBranch})
	r.prs[p.id] = p
	return p.id
}

// PullRequest returns the current state of a pull request as the API shows
// it (hashes shortened to 12, as Bitbucket does).
func (s *Server) PullRequest(fullName string, id int) (model.PullRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p, err := s.pr(fullName, id)
	if err != nil {
		return model.PullRequest{}, err
	}
	return s.modelPR(r, p), nil
}

func (s *Server) modelPR(r *repo, p *pullRequest) model.PullRequest {
	out := model.PullRequest{
		Repository: r.fullName, ID: p.id, Title: p.title, Description: p.description, State: p.state,
		Draft: p.draft, Author: p.author, SourceBranch: p.srcBranch, SourceCommit: short(p.srcCommit),
		DestinationBranch: p.dstBranch, DestinationCommit: short(p.dstCommit), MergeCommit: short(p.mergeCommit),
		Reviewers: append([]model.Actor(nil), p.reviewers...), Participants: s.participants(p),
		CreatedAt: p.created, UpdatedAt: p.updated, URL: s.htmlURL(r.fullName, "pull-requests", fmt.Sprint(p.id)),
		DiffStatURL: s.diffStatHref(r, p),
	}
	if p.closedBy != nil {
		a := *p.closedBy
		out.ClosedBy = &a
	}
	return out
}

// participants lists reviewers first (role REVIEWER), then everyone else
// who acted (PARTICIPANT), as Bitbucket does.
func (s *Server) participants(p *pullRequest) []model.Participant {
	var out []model.Participant
	seen := map[string]bool{}
	find := func(a model.Actor) *participant {
		for _, pt := range p.acted {
			if sameActor(pt.user, a) {
				return pt
			}
		}
		return nil
	}
	for _, rv := range p.reviewers {
		mp := model.Participant{User: rv, Role: "REVIEWER"}
		if pt := find(rv); pt != nil {
			mp.Approved, mp.State, mp.On = pt.approved, pt.state, pt.on
		}
		out = append(out, mp)
		seen[key(rv)] = true
	}
	for _, pt := range p.acted {
		if seen[key(pt.user)] {
			continue
		}
		out = append(out, model.Participant{User: pt.user, Role: "PARTICIPANT", Approved: pt.approved, State: pt.state, On: pt.on})
	}
	return out
}

func (s *Server) act(p *pullRequest, a model.Actor) *participant {
	for _, pt := range p.acted {
		if sameActor(pt.user, a) {
			return pt
		}
	}
	pt := &participant{user: a}
	p.acted = append(p.acted, pt)
	return pt
}

// review records an approval, its removal, a change request or its removal.
func (s *Server) review(fullName string, id int, who model.Actor, approved bool, st model.ReviewState, kind string, add bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return err
	}
	if p.state != model.PROpen {
		return fmt.Errorf("bitbuckettest: %s#%d is %s", fullName, id, p.state)
	}
	who = s.addUser(who)
	now := s.now()
	pt := s.act(p, who)
	pt.approved, pt.state, pt.on = approved, st, now
	p.updated = now
	// The activity log lists current approvals and change requests only.
	kept := p.activity[:0]
	for _, a := range p.activity {
		if (a.kind == "approval" || a.kind == "changes_request") && sameActor(a.user, who) {
			continue
		}
		kept = append(kept, a)
	}
	p.activity = kept
	if add {
		p.activity = append(p.activity, activity{kind: kind, user: who, at: now})
	}
	return nil
}

// Approve records who's approval (replacing a change request of theirs).
func (s *Server) Approve(fullName string, id int, who model.Actor) error {
	return s.review(fullName, id, who, true, model.ReviewApproved, "approval", true)
}

// Unapprove withdraws who's approval.
func (s *Server) Unapprove(fullName string, id int, who model.Actor) error {
	return s.review(fullName, id, who, false, model.ReviewNone, "approval", false)
}

// RequestChanges records who's change request (replacing an approval).
func (s *Server) RequestChanges(fullName string, id int, who model.Actor) error {
	return s.review(fullName, id, who, false, model.ReviewChangesRequested, "changes_request", true)
}

// RemoveChangesRequest withdraws who's change request.
func (s *Server) RemoveChangesRequest(fullName string, id int, who model.Actor) error {
	return s.review(fullName, id, who, false, model.ReviewNone, "changes_request", false)
}

// Merge merges an open pull request as by, with the given merge commit (40
// hex; generated when empty).
func (s *Server) Merge(fullName string, id int, by model.Actor, mergeCommit string) error {
	return s.close(fullName, id, by, model.PRMerged, strings.ToLower(mergeCommit))
}

// Decline declines an open pull request as by.
func (s *Server) Decline(fullName string, id int, by model.Actor) error {
	return s.close(fullName, id, by, model.PRDeclined, "")
}

func (s *Server) close(fullName string, id int, by model.Actor, st model.PRState, mergeCommit string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p, err := s.pr(fullName, id)
	if err != nil {
		return err
	}
	if p.state != model.PROpen {
		return fmt.Errorf("bitbuckettest: %s#%d is %s", fullName, id, p.state)
	}
	by = s.addUser(by)
	now := s.now()
	p.state, p.updated = st, now
	p.closedBy = &by
	if st == model.PRMerged {
		if mergeCommit == "" {
			mergeCommit = hashFor(fmt.Sprintf("%s#%d:merge", r.fullName, p.id))
		}
		p.mergeCommit = mergeCommit
		r.commits[mergeCommit] = true
	}
	p.activity = append(p.activity, activity{kind: "update", user: by, at: now, state: st, commit: p.srcCommit, dest: p.dstBranch})
	return nil
}

// PushCommit moves an open pull request's source branch to newHash (a
// commit by the pull request's author, pushed by them); files, when not
// nil, become its changed files.
func (s *Server) PushCommit(fullName string, id int, newHash string, files []model.ChangedFile) error {
	_, err := s.Push(fullName, id, Commit{Hash: newHash, Files: files})
	return err
}

// Commit is a commit pushed onto a pull request's source branch with Push.
type Commit struct {
	Hash      string              // 40 hex; generated when empty
	Author    model.Actor         // the account Bitbucket maps the commit's email to; zero: unmapped
	AuthorRaw string              // "Name <email>"; derived from Author when empty
	Date      time.Time           // the commit's own date, chosen by its author (default: now)
	Pusher    model.Actor         // who pushed (default: the pull request's author)
	Files     []model.ChangedFile // not nil: the pull request's changed files after the push
	// Force replaces the head (an amend pushed with --force): the old head
	// leaves the pull request's commits but stays a commit of the
	// repository, as Bitbucket keeps it until garbage collection.
	Force bool
}

// Push pushes a commit onto an open pull request's source branch, as
// Bitbucket sees a push: a dated `update` activity entry naming the new
// head, the commit (with its author) in the pull request's commits, and
// approvals kept (Bitbucket keeps them unless the repository resets them).
// It returns the commit's full hash. With Author zero and AuthorRaw empty
// the commit is the pull request author's.
func (s *Server) Push(fullName string, id int, c Commit) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p, err := s.pr(fullName, id)
	if err != nil {
		return "", err
	}
	if p.state != model.PROpen {
		return "", fmt.Errorf("bitbuckettest: %s#%d is %s", fullName, id, p.state)
	}
	hash := strings.ToLower(c.Hash)
	if hash == "" {
		hash = hashFor(fmt.Sprintf("%s#%d:push%d", r.fullName, p.id, len(p.commits)))
	}
	if len(hash) != 40 || !isHex(hash) {
		return "", fmt.Errorf("bitbuckettest: push %q: want 40 hex", c.Hash)
	}
	now := s.now()
	author, raw := c.Author, c.AuthorRaw
	if author == (model.Actor{}) && raw == "" {
		author = p.author
	}
	if author != (model.Actor{}) {
		author = s.addUser(author)
	}
	if raw == "" {
		raw = rawAuthor(author)
	}
	date := c.Date
	if date.IsZero() {
		date = now
	}
	pusher := p.author
	if c.Pusher != (model.Actor{}) {
		pusher = s.addUser(c.Pusher)
	}
	if c.Force && len(p.commits) > 0 && p.commits[len(p.commits)-1] == p.srcCommit {
		p.commits = p.commits[:len(p.commits)-1]
	}
	p.srcCommit, p.updated = hash, now
	p.commits = append(p.commits, hash)
	r.commits[hash] = true
	r.commitInfo[hash] = &commitRec{author: author, raw: raw, date: date.UTC()}
	if c.Files != nil {
		p.files = append([]model.ChangedFile(nil), c.Files...)
	}
	p.activity = append(p.activity, activity{kind: "update", user: pusher, at: now, state: p.state, commit: hash, dest: p.dstBranch})
	return hash, nil
}

// Edit is a change a person makes to an open pull request in the web
// interface; nil fields and an empty DestinationBranch stay as they are.
type Edit struct {
	Title, Description *string
	Draft              *bool
	DestinationBranch  string              // retarget
	Reviewers          *[]model.Actor      // the whole new list
	Files              []model.ChangedFile // not nil: the changed files against the new destination
}

// Edit applies an edit by `by`, as Bitbucket records one: updated_on moves
// and the activity gets a dated `update` entry naming the unchanged source
// head. Reviewers must be known users, the author excepted.
func (s *Server) Edit(fullName string, id int, by model.Actor, e Edit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return err
	}
	if p.state != model.PROpen {
		return fmt.Errorf("bitbuckettest: %s#%d is %s", fullName, id, p.state)
	}
	var reviewers []model.Actor
	if e.Reviewers != nil {
		for _, a := range *e.Reviewers {
			if sameActor(a, p.author) {
				return fmt.Errorf("bitbuckettest: %s is the author and cannot be included as a reviewer", a.DisplayName)
			}
			reviewers = append(reviewers, s.addUser(a))
		}
	}
	if e.Title != nil {
		if strings.TrimSpace(*e.Title) == "" {
			return fmt.Errorf("bitbuckettest: a pull request needs a title")
		}
		p.title = *e.Title
	}
	if e.Description != nil {
		p.description = *e.Description
	}
	if e.Draft != nil {
		p.draft = *e.Draft
	}
	if e.DestinationBranch != "" {
		p.dstBranch = e.DestinationBranch
	}
	if e.Reviewers != nil {
		p.reviewers = reviewers
	}
	if e.Files != nil {
		p.files = append([]model.ChangedFile(nil), e.Files...)
	}
	now := s.now()
	p.updated = now
	p.activity = append(p.activity, activity{kind: "update", user: s.addUser(by), at: now, state: p.state, commit: p.srcCommit, dest: p.dstBranch})
	return nil
}

// DeleteComment deletes a comment as a person would in the web interface:
// it disappears from lists, and reading or editing it answers 404.
func (s *Server) DeleteComment(fullName string, id int, commentID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return err
	}
	for _, c := range p.comments {
		if fmt.Sprint(c.id) == commentID && !c.deleted {
			c.deleted = true
			return nil
		}
	}
	return fmt.Errorf("bitbuckettest: no comment %s on %s#%d", commentID, fullName, id)
}

// rawAuthor is the "Name <email>" a commit by a carries.
func rawAuthor(a model.Actor) string {
	name := a.DisplayName
	if name == "" {
		name = "Someone"
	}
	nick := a.Nickname
	if nick == "" {
		nick = "someone"
	}
	return fmt.Sprintf("%s <%s@example.com>", name, strings.ToLower(strings.ReplaceAll(nick, " ", ".")))
}

// AddComment posts a comment as author and returns its id ("" when there
// is no such pull request).
func (s *Server) AddComment(fullName string, id int, author model.Actor, body string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return ""
	}
	return fmt.Sprint(s.addComment(p, s.addUser(author), body).id)
}

func (s *Server) addComment(p *pullRequest, author model.Actor, body string) *comment {
	s.seq++
	now := s.now()
	c := &comment{id: 100000 + s.seq, author: author, body: body, created: now, updated: now}
	p.comments = append(p.comments, c)
	p.activity = append(p.activity, activity{kind: "comment", user: author, at: now, comment: c})
	pt := s.act(p, author)
	pt.on = now
	p.updated = now
	return c
}

// Comments lists a pull request's comments (people's and the client's),
// oldest first, without deleted ones.
func (s *Server) Comments(fullName string, id int) []model.Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return nil
	}
	var out []model.Comment
	for _, c := range p.comments {
		if !c.deleted {
			out = append(out, model.Comment{ID: fmt.Sprint(c.id), Author: c.author, Body: c.body, CreatedAt: c.created})
		}
	}
	return out
}

// Reviewers is a pull request's current reviewer list.
func (s *Server) Reviewers(fullName string, id int) []model.Actor {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return nil
	}
	return append([]model.Actor(nil), p.reviewers...)
}

// PutCount is how many PUTs the pull request received (accepted or not).
func (s *Server) PutCount(fullName string, id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return 0
	}
	return p.puts
}

// LastPut is the body of the last PUT the pull request received.
func (s *Server) LastPut(fullName string, id int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.pr(fullName, id)
	if err != nil {
		return nil
	}
	return append([]byte(nil), p.lastPut...)
}

// Statuses are the build statuses on a commit (a full or short hash), by key.
func (s *Server) Statuses(fullName, commit string) map[string]model.CommitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]model.CommitStatus{}
	r := s.repo(fullName, false)
	if r == nil {
		return out
	}
	for k, st := range r.statuses[r.resolve(commit)] {
		out[k] = st.st
	}
	return out
}

// SetCommitStatus posts a build status as a CI system would.
func (s *Server) SetCommitStatus(fullName, commit string, st model.CommitStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName, true)
	s.putStatus(r, r.resolve(strings.ToLower(commit)), st)
}

func (s *Server) putStatus(r *repo, commit string, st model.CommitStatus) *status {
	r.commits[commit] = true
	now := s.now()
	st.Commit, st.UpdatedAt = commit, now
	m := r.statuses[commit]
	if m == nil {
		m = map[string]*status{}
		r.statuses[commit] = m
	}
	old := m[st.Key]
	if old == nil {
		old = &status{created: now}
		r.statusOrder[commit] = append(r.statusOrder[commit], st.Key)
	}
	old.st = st
	m[st.Key] = old
	return old
}

// resolve expands a short hash to the one known commit it prefixes.
func (r *repo) resolve(h string) string {
	h = strings.ToLower(h)
	if len(h) >= 40 || r.commits[h] {
		return h
	}
	var found string
	for c := range r.commits {
		if strings.HasPrefix(c, h) {
			if found != "" {
				return h // ambiguous
			}
			found = c
		}
	}
	if found == "" {
		return h
	}
	return found
}

// AddDeployment records a Pipelines deployment of commit to the environment
// named env (created on first use). state is SUCCESSFUL, FAILED, STOPPED
// (a completed deployment), IN_PROGRESS or UNDEPLOYED. It returns the
// deployment's uuid.
func (s *Server) AddDeployment(fullName, env, commit, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName, true)
	var e *environment
	for _, x := range r.environments {
		if strings.EqualFold(x.name, env) {
			e = x
		}
	}
	if e == nil {
		typ := "Test"
		switch strings.ToLower(env) {
		case "staging":
			typ = "Staging"
		case "production", "prod":
			typ = "Production"
		}
		e = &environment{uuid: uuidFor("env:" + r.fullName + ":" + env), name: env, typ: typ, rank: len(r.environments)}
		r.environments = append(r.environments, e)
	}
	s.seq++
	commit = r.resolve(strings.ToLower(commit))
	r.commits[commit] = true
	d := &deployment{
		uuid: uuidFor(fmt.Sprintf("deploy:%s:%d", r.fullName, s.seq)), envUUID: e.uuid, commit: commit,
		state: strings.ToUpper(state), pipelineUUID: uuidFor(fmt.Sprintf("pipeline:%s:%d", r.fullName, s.seq)),
		build: len(r.deployments) + 1, at: s.now(),
	}
	r.deployments = append(r.deployments, d)
	return d.uuid
}

// SetLinkIndex sets the state of a repository's commit-links index.
func (s *Server) SetLinkIndex(fullName string, st LinkIndex) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(fullName, true).linkIndex = st
}

// Faulted is how many requests a fault answered.
func (s *Server) Faulted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faulted
}

// Hold makes requests wait, unanswered, until Release: a slow or hung
// Bitbucket with requests in flight. A request whose client gives up
// returns unanswered.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release answers the held requests and stops holding.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Held is how many requests are waiting on Hold.
func (s *Server) Held() int { return int(s.held.Load()) }

// ClearFaults removes every injected fault (Bitbucket is back).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// FailNext makes the next `times` requests whose method matches (""
// matches any) and whose path contains pathSubstring answer status with a
// Bitbucket error body, and Retry-After when retryAfter is not empty.
func (s *Server) FailNext(method, pathSubstring string, status, times int, retryAfter string) {
	s.Fail(Fault{Method: method, Path: pathSubstring, Status: status, Times: times, RetryAfter: retryAfter})
}

// Fail injects a fault (see Fault): a failure part-way through a sequence
// of calls ("the second status post answers 429") or on one endpoint only.
func (s *Server) Fail(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Method = strings.ToUpper(f.Method)
	s.failures = append(s.failures, &failure{Fault: f})
}

// Calls counts requests received, by "METHOD /normalised/path" (the
// client's metric endpoint names).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// TotalCalls is the number of requests received.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetCalls zeroes the call counts.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.total = 0
}

func key(a model.Actor) string {
	if a.AccountID != "" {
		return a.AccountID
	}
	return a.UUID
}

func sameActor(a, b model.Actor) bool {
	if a.AccountID != "" && b.AccountID != "" {
		return a.AccountID == b.AccountID
	}
	return a.UUID != "" && a.UUID == b.UUID
}

// uuidFor derives a stable, well-formed uuid (with braces) from a seed.
func uuidFor(seed string) string {
	h := sha256.Sum256([]byte(seed))
	x := hex.EncodeToString(h[:16])
	return "{" + x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32] + "}"
}

// hashFor derives a stable 40-hex commit hash from a seed.
func hashFor(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(h[:20])
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
