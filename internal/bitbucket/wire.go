package bitbucket

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// The wire types mirror Bitbucket Cloud JSON just enough to build model
// values. They are lenient where real payloads vary (see
// shared/fixtures/PROVENANCE.md): times that do not parse become zero, ids
// may be numbers or strings, links may be any shape, uuids are kept as text.

// wireAccount is a user or team ("account" in the OpenAPI spec).
type wireAccount struct {
	Type        string `json:"type"`
	UUID        string `json:"uuid"`
	AccountID   string `json:"account_id"`
	DisplayName string `json:"display_name"`
	Nickname    string `json:"nickname"`
	Username    string `json:"username"` // pre-2019 payloads and teams
}

func (a *wireAccount) actor() model.Actor {
	if a == nil {
		return model.Actor{}
	}
	nick := a.Nickname
	if nick == "" {
		nick = a.Username
	}
	return model.Actor{
		AccountID:   a.AccountID,
		UUID:        a.UUID,
		DisplayName: a.DisplayName,
		Nickname:    nick,
		IsTeam:      a.Type == "team",
	}
}

func (a *wireAccount) empty() bool {
	return a == nil || (a.UUID == "" && a.AccountID == "" && a.DisplayName == "" && a.Nickname == "" && a.Username == "")
}

type wireRepo struct {
	FullName string `json:"full_name"`
	UUID     string `json:"uuid"`
}

type wireCommit struct {
	Hash  string    `json:"hash"`
	Date  wireTime  `json:"date"`
	Links wireLinks `json:"links"`
}

type wireEndpoint struct {
	Branch *struct {
		Name string `json:"name"`
	} `json:"branch"`
	Commit     *wireCommit `json:"commit"`
	Repository *wireRepo   `json:"repository"`
}

func (e wireEndpoint) branch() string {
	if e.Branch == nil {
		return ""
	}
	return e.Branch.Name
}

func (e wireEndpoint) commit() string {
	if e.Commit == nil {
		return ""
	}
	return e.Commit.Hash
}

// wireParticipant is a participant; the Atlassian documentation examples
// (go-playground fixtures) put the user's fields on the participant itself
// and have no role, approved or state.
type wireParticipant struct {
	wireAccount
	User           *wireAccount `json:"user"`
	Role           string       `json:"role"`
	Approved       bool         `json:"approved"`
	State          *string      `json:"state"` // null or absent before 2023
	ParticipatedOn wireTime     `json:"participated_on"`
}

func (p wireParticipant) participant() model.Participant {
	u := p.User
	if u == nil {
		flat := p.wireAccount
		flat.Type = "" // "participant" when present
		u = &flat
	}
	st := model.ReviewNone
	if p.State != nil {
		st = model.ReviewState(*p.State)
	}
	if st == model.ReviewNone && p.Approved {
		st = model.ReviewApproved
	}
	return model.Participant{User: u.actor(), Role: p.Role, Approved: p.Approved, State: st, On: p.ParticipatedOn.Time}
}

type wirePullRequest struct {
	ID           wireInt           `json:"id"`
	Title        string            `json:"title"`
	Description  string            `json:"description"`
	State        string            `json:"state"`
	Draft        bool              `json:"draft"`
	Author       *wireAccount      `json:"author"`
	Source       wireEndpoint      `json:"source"`
	Destination  wireEndpoint      `json:"destination"`
	MergeCommit  *wireCommit       `json:"merge_commit"`
	Reviewers    []wireAccount     `json:"reviewers"`
	Participants []wireParticipant `json:"participants"`
	ClosedBy     *wireAccount      `json:"closed_by"`
	CreatedOn    wireTime          `json:"created_on"`
	UpdatedOn    wireTime          `json:"updated_on"`
	Links        wireLinks         `json:"links"`
}

// pullRequest converts; repo is used when the payload names no destination
// repository.
func (w *wirePullRequest) pullRequest(repo string) *model.PullRequest {
	if w.Destination.Repository != nil && w.Destination.Repository.FullName != "" {
		repo = w.Destination.Repository.FullName
	}
	pr := &model.PullRequest{
		Repository:        strings.ToLower(repo),
		ID:                int(w.ID),
		Title:             w.Title,
		Description:       w.Description,
		State:             prState(w.State),
		Draft:             w.Draft,
		Author:            w.Author.actor(),
		SourceBranch:      w.Source.branch(),
		SourceCommit:      w.Source.commit(),
		DestinationBranch: w.Destination.branch(),
		DestinationCommit: w.Destination.commit(),
		CreatedAt:         w.CreatedOn.Time,
		UpdatedAt:         w.UpdatedOn.Time,
		URL:               w.Links.href("html"),
		DiffStatURL:       w.Links.href("diffstat"),
	}
	if w.MergeCommit != nil {
		pr.MergeCommit = w.MergeCommit.Hash
	}
	if !w.ClosedBy.empty() {
		a := w.ClosedBy.actor()
		pr.ClosedBy = &a
	}
	for i := range w.Reviewers {
		pr.Reviewers = append(pr.Reviewers, w.Reviewers[i].actor())
	}
	for _, p := range w.Participants {
		pr.Participants = append(pr.Participants, p.participant())
	}
	return pr
}

// prState maps Bitbucket's state; anything else (such as the documentation
// example's literal "OPEN|MERGED|DECLINED") is kept as received.
func prState(s string) model.PRState {
	for _, st := range []model.PRState{model.PROpen, model.PRMerged, model.PRDeclined, model.PRSuperseded} {
		if strings.EqualFold(s, string(st)) {
			return st
		}
	}
	return model.PRState(s)
}

type wireComment struct {
	ID      wireID `json:"id"`
	Content struct {
		Raw string `json:"raw"`
	} `json:"content"`
	User      *wireAccount `json:"user"`
	CreatedOn wireTime     `json:"created_on"`
	UpdatedOn wireTime     `json:"updated_on"`
	Deleted   bool         `json:"deleted"`
}

func (w *wireComment) comment() model.Comment {
	return model.Comment{ID: string(w.ID), Author: w.User.actor(), Body: w.Content.Raw, CreatedAt: w.CreatedOn.Time}
}

type wireStatus struct {
	Key         string      `json:"key"`
	State       string      `json:"state"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	URL         string      `json:"url"`
	Refname     *string     `json:"refname"`
	Commit      *wireCommit `json:"commit"`
	Repository  *wireRepo   `json:"repository"`
	CreatedOn   wireTime    `json:"created_on"`
	UpdatedOn   wireTime    `json:"updated_on"`
	Links       wireLinks   `json:"links"`
}

func (w *wireStatus) status() model.CommitStatus {
	st := model.CommitStatus{
		Key:         w.Key,
		State:       w.State,
		Name:        w.Name,
		Description: w.Description,
		URL:         w.URL,
		UpdatedAt:   w.UpdatedOn.Time,
	}
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = w.CreatedOn.Time
	}
	if w.Refname != nil {
		st.RefName = *w.Refname
	}
	if w.Commit != nil {
		st.Commit = w.Commit.Hash
	}
	if st.Commit == "" {
		// The documentation example has only links.commit.href.
		st.Commit = lastSegmentAfter(w.Links.href("commit"), "/commit/")
	}
	return st
}

type wireApproval struct {
	Date wireTime     `json:"date"`
	User *wireAccount `json:"user"`
}

type wireRefState struct {
	Type   string      `json:"type"` // branch | tag | named_branch
	Name   string      `json:"name"`
	Target *wireCommit `json:"target"`
}

type wirePush struct {
	Changes []struct {
		Old       *wireRefState    `json:"old"`
		New       *wireRefState    `json:"new"`
		Created   *bool            `json:"created"`
		Closed    *bool            `json:"closed"`
		Forced    *bool            `json:"forced"`
		Truncated *bool            `json:"truncated"`
		Commits   []wirePushCommit `json:"commits"`
	} `json:"changes"`
}

// wirePushCommit is a commit as a push payload lists it.
type wirePushCommit struct {
	wireCommitFull
	Parents []json.RawMessage `json:"parents"`
}

// pushCommits converts a push's commit list and says whether it is the
// whole of what the push brought (model.PushChange.CommitsComplete).
func pushCommits(ws []wirePushCommit, truncated, forced *bool) ([]model.Commit, bool) {
	complete := truncated != nil && !*truncated && forced != nil && !*forced
	var out []model.Commit
	for i := range ws {
		w := &ws[i]
		c := w.commit()
		if !model.IsFullCommit(c.Hash) || len(w.Parents) > 1 || (w.Author.User != nil && c.Author.AccountID == "") {
			complete = false
		}
		out = append(out, c)
	}
	return out, complete
}

func (w *wirePush) push() (*model.Push, time.Time) {
	p := &model.Push{Changes: []model.PushChange{}}
	var last time.Time
	if w == nil {
		return p, last
	}
	for _, c := range w.Changes {
		pc := model.PushChange{Created: c.Old == nil && c.New != nil, Closed: c.New == nil && c.Old != nil}
		if c.Created != nil {
			pc.Created = *c.Created
		}
		if c.Closed != nil {
			pc.Closed = *c.Closed
		}
		for _, ref := range []*wireRefState{c.Old, c.New} {
			if ref == nil {
				continue
			}
			pc.RefType, pc.RefName = refType(ref.Type), ref.Name
		}
		if c.Old != nil && c.Old.Target != nil {
			pc.OldCommit = c.Old.Target.Hash
		}
		if c.New != nil && c.Old != nil {
			pc.Commits, pc.CommitsComplete = pushCommits(c.Commits, c.Truncated, c.Forced)
		}
		if c.New != nil && c.New.Target != nil {
			pc.NewCommit = c.New.Target.Hash
			if c.New.Target.Date.After(last) {
				last = c.New.Target.Date.Time
			}
		}
		p.Changes = append(p.Changes, pc)
	}
	return p, last
}

func refType(t string) string {
	if t == "named_branch" {
		return "branch"
	}
	return t
}

type wireDiffStat struct {
	Status string `json:"status"`
	Old    *struct {
		Path string `json:"path"`
	} `json:"old"`
	New *struct {
		Path string `json:"path"`
	} `json:"new"`
}

func (w *wireDiffStat) file() model.ChangedFile {
	var oldPath, newPath string
	if w.Old != nil {
		oldPath = w.Old.Path
	}
	if w.New != nil {
		newPath = w.New.Path
	}
	f := model.ChangedFile{Path: newPath, Status: model.FileStatus(w.Status)}
	if f.Path == "" {
		f.Path = oldPath
	} else if oldPath != "" && oldPath != newPath {
		f.OldPath = oldPath
	}
	return f
}

// wireLinks keeps links raw: their shape differs between objects (html is an
// object on pull requests, clone is a list on repositories).
type wireLinks map[string]json.RawMessage

func (l wireLinks) href(name string) string {
	raw, ok := l[name]
	if !ok {
		return ""
	}
	var v struct {
		Href string `json:"href"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Href
}

// wireTime accepts Bitbucket's ISO 8601 times (fractional seconds, "+00:00"
// or "Z" offsets, sometimes none) and null; anything else becomes zero
// rather than failing a whole payload.
type wireTime struct{ time.Time }

func (t *wireTime) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	var s string
	if json.Unmarshal(b, &s) != nil || s == "" {
		return nil
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return nil
}

// wireInt is a number that may arrive as a JSON number or a numeric string.
type wireInt int

func (n *wireInt) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || v < 0 || v > 1<<31-1 {
		*n = 0
		return nil
	}
	*n = wireInt(v)
	return nil
}

// wireID is an identifier kept as text whether a number or a string.
type wireID string

func (id *wireID) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*id = wireID(s)
		return nil
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		*id = wireID(n.String())
		return nil
	}
	*id = ""
	return nil
}

func lastSegmentAfter(href, marker string) string {
	i := strings.LastIndex(href, marker)
	if i < 0 {
		return ""
	}
	s := href[i+len(marker):]
	if j := strings.IndexAny(s, "/?#"); j >= 0 {
		s = s[:j]
	}
	return s
}
