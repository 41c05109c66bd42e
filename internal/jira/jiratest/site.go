// Package jiratest is a fake Jira Cloud site for tests and the demo. It
// answers the REST v2 endpoints rolekeeper uses with the shapes Jira Cloud
// returns (field list, createmeta issue types, issues with text
// descriptions, search/jql with nextPageToken, create with Jira's
// ErrorCollection on refusal, comments, links, versions, attachments,
// myself), keeps state in memory, can play a site without sub-task types
// or without a story-points field, injects failures and counts calls. It
// reads nothing from disk.
package jiratest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options shape the fake site.
type Options struct {
	// Prefix mounts the API under a path ("/jira"), which catches clients
	// that build absolute paths. The client's base URL is URL()+Prefix.
	Prefix string
	// NoSubtasks plays a site whose projects have no sub-task issue type.
	NoSubtasks bool
	// NoStoryPoints plays a site without any story-points field.
	NoStoryPoints bool
	// NoPriority plays a site whose admin hid the priority field: it is
	// neither listed in /field nor returned on issues.
	NoPriority bool
	// SubtaskTypeName is the site's name for sub-tasks (default "Sub-task").
	SubtaskTypeName string
	// StoryPointsField is the id of the "Story point estimate"
	// (jsw-story-points) field (default customfield_10016); the float
	// "Story Points" field is StoryPointsField's number + 20 unless set.
	StoryPointsField string
	FloatPointsField string
	SprintField      string // default customfield_10020
	// PageSize caps search pages (default 50, as Jira with many fields).
	PageSize int
	Now      func() time.Time
}

// Site is the fake's state and its http.Handler.
type Site struct {
	opts Options

	mu          sync.Mutex
	nextID      int
	projects    map[string]*project // by key
	issues      map[string]*issue   // by key
	issueByID   map[string]string   // id → key
	versions    map[string]*version // by id
	sprints     map[int]*sprint
	users       map[string]*user // by account id
	me          *user
	links       []*link
	comments    map[string][]*comment // by issue key
	attachments map[string][]string   // by issue key: file names
	calls       []Call
	failures    []failure
	host        string // last seen Host, for self links
}

// Server is a Site served on 127.0.0.1.
type Server struct {
	*Site
	HTTP *httptest.Server
}

// Start serves a new site on a loopback port. Close it when done.
func Start(opts Options) *Server {
	s := NewSite(opts)
	srv := &Server{Site: s, HTTP: httptest.NewServer(s)}
	s.host = strings.TrimPrefix(srv.HTTP.URL, "http://")
	return srv
}

// URL is the base URL to give the client (including the prefix).
func (s *Server) URL() string { return s.HTTP.URL + s.opts.Prefix }

// Close stops the server.
func (s *Server) Close() { s.HTTP.Close() }

// NewSite returns an empty site with one user, the API user (Myself).
func NewSite(opts Options) *Site {
	if opts.SubtaskTypeName == "" {
		opts.SubtaskTypeName = "Sub-task"
	}
	if opts.StoryPointsField == "" {
		opts.StoryPointsField = "customfield_10016"
	}
	if opts.FloatPointsField == "" {
		n, _ := strconv.Atoi(strings.TrimPrefix(opts.StoryPointsField, "customfield_"))
		opts.FloatPointsField = "customfield_" + strconv.Itoa(n+20)
	}
	if opts.SprintField == "" {
		opts.SprintField = "customfield_10020"
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Site{
		opts: opts, nextID: 10000,
		projects: map[string]*project{}, issues: map[string]*issue{}, issueByID: map[string]string{},
		versions: map[string]*version{}, sprints: map[int]*sprint{}, users: map[string]*user{},
		comments: map[string][]*comment{}, attachments: map[string][]string{},
	}
	s.me = &user{AccountID: "557058:0f3a5c2e-rolekeeper-bot", DisplayName: "rolekeeper", Email: "rolekeeper@example.com"}
	s.users[s.me.AccountID] = s.me
	return s
}

// Sign returns the X-Hub-Signature value Jira sends for a body and secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Call is one request the site answered.
type Call struct {
	Method   string
	Path     string // without the prefix
	Query    string
	Body     string
	Status   int
	Endpoint string // "GET /rest/api/2/issue/{key}"
}

// Calls returns every request answered so far.
func (s *Site) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Count returns how many requests matched an endpoint such as
// "POST /rest/api/2/issue" or "GET /rest/api/2/issue/{key}".
func (s *Site) Count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Endpoint == endpoint {
			n++
		}
	}
	return n
}

// Total returns how many requests were answered.
func (s *Site) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// ResetCalls forgets the recorded calls.
func (s *Site) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

type failure struct {
	endpoint   string // "" matches any
	n          int
	status     int // 0 with after: the connection is cut
	retryAfter string
	after      bool // the request is carried out first, then the answer fails
}

// FailNext makes the next n requests answer status (with Retry-After when
// retryAfter is not empty), as Jira does under load.
func (s *Site) FailNext(n, status int, retryAfter string) { s.FailNextOn("", n, status, retryAfter) }

// FailNextOn is FailNext for requests to one endpoint ("POST /rest/api/2/issue").
func (s *Site) FailNextOn(endpoint string, n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{endpoint: endpoint, n: n, status: status, retryAfter: retryAfter})
}

// FailAfterNextOn makes the next n requests to endpoint succeed and then
// answer status anyway, as a Jira node does when it times out after
// writing: a create answered 500 may have created the issue. With status
// 0 the connection is cut instead of answered.
func (s *Site) FailAfterNextOn(endpoint string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{endpoint: endpoint, n: n, status: status, after: true})
}

func (s *Site) takeFailure(endpoint string) (failure, bool) {
	for i := range s.failures {
		f := &s.failures[i]
		if f.n > 0 && (f.endpoint == "" || f.endpoint == endpoint) {
			f.n--
			return *f, true
		}
	}
	return failure{}, false
}

// ---- state ----

type user struct {
	AccountID   string
	DisplayName string
	Email       string
}

type issueType struct {
	ID, Name    string
	Subtask     bool
	Description string
	Hierarchy   int
}

type project struct {
	ID, Key, Name string
	Types         []issueType
	next          int
}

type sprint struct {
	ID    int
	Name  string
	State string // active | future | closed
}

type version struct {
	ID, Name    string
	ProjectKey  string
	Released    bool
	ReleaseDate string
	Description string
}

type issue struct {
	ID, Key, Project string
	Type             issueType
	Summary          string
	Description      string
	Status           string
	Assignee         string
	Reporter         string
	FixVersions      []string
	Labels           []string
	Parent           string
	StoryPoints      *float64 // in the jsw field
	Priority         string   // "" renders null, as an issue created without one on a scheme with no default
	FloatPoints      *float64 // in the float "Story Points" field
	Sprints          []int
	Created, Updated time.Time
}

type link struct {
	ID              string
	Type            linkType
	Inward, Outward string // issue keys
}

type linkType struct{ ID, Name, Inward, Outward string }

var linkTypes = []linkType{
	{"10000", "Blocks", "is blocked by", "blocks"},
	{"10001", "Cloners", "is cloned by", "clones"},
	{"10002", "Duplicate", "is duplicated by", "duplicates"},
	{"10003", "Relates", "relates to", "relates to"},
}

type comment struct {
	ID      string
	Author  string
	Body    string
	Created time.Time
}

// statusCategory maps the fake's statuses to Jira's categories.
func statusCategory(status string) (id int, key, name string) {
	switch strings.ToLower(status) {
	case "done", "closed", "resolved":
		return 3, "done", "Done"
	case "in progress", "in review":
		return 4, "indeterminate", "In Progress"
	}
	return 2, "new", "To Do"
}

func (s *Site) id() string {
	s.nextID++
	return strconv.Itoa(s.nextID)
}

// AddUser registers an assignable user.
func (s *Site) AddUser(accountID, displayName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[accountID] = &user{AccountID: accountID, DisplayName: displayName}
}

// Myself is the API user's account id.
func (s *Site) Myself() string { return s.me.AccountID }

// AddProject creates a project with the usual Jira Software issue types:
// Epic, Story, Task, Bug, Design (a custom type) and the sub-task type
// (unless the site has none).
func (s *Site) AddProject(key, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &project{ID: s.id(), Key: strings.ToUpper(key), Name: name}
	p.Types = []issueType{
		{ID: "10000", Name: "Epic", Description: "A big user story that needs to be broken down.", Hierarchy: 1},
		{ID: "10001", Name: "Story", Description: "Functionality or a feature expressed as a user goal."},
		{ID: "10002", Name: "Task", Description: "A small, distinct piece of work."},
		{ID: "10004", Name: "Bug", Description: "A problem or error."},
		{ID: "10005", Name: "Design", Description: "A design to review."},
	}
	if !s.opts.NoSubtasks {
		p.Types = append(p.Types, issueType{ID: "10003", Name: s.opts.SubtaskTypeName, Subtask: true,
			Description: "A small piece of work that's part of a larger task.", Hierarchy: -1})
	}
	s.projects[p.Key] = p
}

// AddSprint creates a sprint (state active, future or closed).
func (s *Site) AddSprint(name, state string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := len(s.sprints) + 1
	s.sprints[id] = &sprint{ID: id, Name: name, State: state}
	return id
}

// AddVersion creates an unreleased version and returns its id.
func (s *Site) AddVersion(projectKey, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &version{ID: s.id(), Name: name, ProjectKey: strings.ToUpper(projectKey)}
	s.versions[v.ID] = v
	return v.ID
}

// NewIssue describes an issue to add.
type NewIssue struct {
	Project     string
	Type        string // issue type name
	Summary     string
	Description string
	Status      string // default "To Do"
	Assignee    string // account id
	Reporter    string // account id (default the API user)
	FixVersions []string
	Labels      []string
	Parent      string
	StoryPoints *float64
	Sprints     []int
	// Priority is the priority's name (Highest … Lowest); default
	// "Medium", the default of Jira's scheme. NoPriority leaves it unset.
	Priority   string
	NoPriority bool
	Created    time.Time // default now
}

// AddIssue adds an issue directly (no validation) and returns its key.
func (s *Site) AddIssue(n NewIssue) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[strings.ToUpper(n.Project)]
	if p == nil {
		panic("jiratest: no project " + n.Project)
	}
	t, ok := p.typeByName(n.Type)
	if !ok {
		panic("jiratest: no issue type " + n.Type + " in " + p.Key)
	}
	is := s.newIssue(p, t)
	is.Summary, is.Description, is.Assignee = n.Summary, n.Description, n.Assignee
	if n.Status != "" {
		is.Status = n.Status
	}
	if n.Reporter != "" {
		is.Reporter = n.Reporter
	}
	is.FixVersions, is.Labels, is.Parent, is.Sprints = n.FixVersions, n.Labels, n.Parent, n.Sprints
	is.StoryPoints = n.StoryPoints
	is.Priority = orDefaultPriority(n.Priority)
	if n.NoPriority {
		is.Priority = ""
	}
	if !n.Created.IsZero() {
		is.Created = n.Created.UTC()
	}
	return is.Key
}

func (s *Site) newIssue(p *project, t issueType) *issue {
	p.next++
	now := s.opts.Now().UTC()
	is := &issue{ID: s.id(), Key: p.Key + "-" + strconv.Itoa(p.next), Project: p.Key, Type: t,
		Status: "To Do", Reporter: s.me.AccountID, Created: now, Updated: now, Priority: "Medium"}
	s.issues[is.Key] = is
	s.issueByID[is.ID] = is.Key
	return is
}

func (p *project) typeByName(name string) (issueType, bool) {
	for _, t := range p.Types {
		if strings.EqualFold(t.Name, name) {
			return t, true
		}
	}
	return issueType{}, false
}

func (p *project) typeByID(id string) (issueType, bool) {
	for _, t := range p.Types {
		if t.ID == id {
			return t, true
		}
	}
	return issueType{}, false
}

// Update changes an issue as a person would in Jira.
func (s *Site) Update(key string, f func(*IssueEdit)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issues[key]
	if is == nil {
		panic("jiratest: no issue " + key)
	}
	e := IssueEdit{Summary: is.Summary, Description: is.Description, Status: is.Status, Type: is.Type.Name,
		Assignee: is.Assignee, FixVersions: is.FixVersions, StoryPoints: is.StoryPoints, Sprints: is.Sprints,
		Priority: is.Priority, Labels: is.Labels}
	f(&e)
	p := s.projects[is.Project]
	if t, ok := p.typeByName(e.Type); ok {
		is.Type = t
	}
	is.Summary, is.Description, is.Status, is.Assignee = e.Summary, e.Description, e.Status, e.Assignee
	is.FixVersions, is.StoryPoints, is.Sprints = e.FixVersions, e.StoryPoints, e.Sprints
	is.Priority, is.Labels = e.Priority, e.Labels
	is.Updated = s.opts.Now().UTC()
}

// IssueEdit is what Update may change.
type IssueEdit struct {
	Summary, Description, Status, Type, Assignee string
	FixVersions                                  []string
	StoryPoints                                  *float64
	Sprints                                      []int
	Priority                                     string // "" clears it
	Labels                                       []string
}

// priorities are the names of Jira Cloud's default priority scheme.
var priorities = map[string]string{"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}

func orDefaultPriority(p string) string {
	if p == "" {
		return "Medium"
	}
	if _, ok := priorities[p]; !ok {
		panic("jiratest: no priority " + p + " in the default scheme")
	}
	return p
}

// Delete removes an issue.
func (s *Site) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if is := s.issues[key]; is != nil {
		delete(s.issueByID, is.ID)
		delete(s.issues, key)
	}
}

// IssueView is a read-only copy of an issue for assertions.
type IssueView struct {
	Key, Project, Type, Summary, Description, Status, Assignee, Parent string
	Subtask                                                            bool
	Subtasks                                                           []string // keys
	Links                                                              []string // "relates to PAY-3"
	Labels                                                             []string
}

// Issue returns a copy of an issue.
func (s *Site) Issue(key string) (IssueView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issues[key]
	if is == nil {
		return IssueView{}, false
	}
	v := IssueView{Key: is.Key, Project: is.Project, Type: is.Type.Name, Summary: is.Summary, Description: is.Description,
		Status: is.Status, Assignee: is.Assignee, Parent: is.Parent, Subtask: is.Type.Subtask, Labels: is.Labels}
	for _, st := range s.subtasksOf(key) {
		v.Subtasks = append(v.Subtasks, st.Key)
	}
	for _, l := range s.links {
		switch key {
		case l.Inward:
			v.Links = append(v.Links, l.Type.Outward+" "+l.Outward)
		case l.Outward:
			v.Links = append(v.Links, l.Type.Inward+" "+l.Inward)
		}
	}
	return v, true
}

// Keys lists every issue key, in creation order.
func (s *Site) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keysLocked()
}

func (s *Site) keysLocked() []string {
	keys := make([]string, 0, len(s.issues))
	for k := range s.issues {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(s.issues[keys[i]].ID)
		b, _ := strconv.Atoi(s.issues[keys[j]].ID)
		return a < b
	})
	return keys
}

// Comments returns the bodies of an issue's comments, oldest first.
func (s *Site) Comments(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.comments[key] {
		out = append(out, c.Body)
	}
	return out
}

// Attachments returns the file names attached to an issue.
func (s *Site) Attachments(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.attachments[key]...)
}

func (s *Site) subtasksOf(key string) []*issue {
	var out []*issue
	for _, k := range s.keysLocked() {
		if st := s.issues[k]; st.Parent == key && st.Type.Subtask {
			out = append(out, st)
		}
	}
	return out
}

func (s *Site) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("jiratest site: %d projects, %d issues", len(s.projects), len(s.issues))
}
