// Package model holds the neutral domain types that every other package
// shares. Vendor payloads (Bitbucket, Jira) are decoded into these at the
// edge; nothing deeper sees vendor structs.
package model

import (
	"slices"
	"strings"
	"time"
)

// Actor is a person (or, in some Bitbucket payloads, a team) acting upstream.
// Identity is the Atlassian account id, shared by Jira and Bitbucket Cloud.
type Actor struct {
	AccountID   string `json:"account_id,omitempty"`
	UUID        string `json:"uuid,omitempty"` // Bitbucket uuid with braces; a cache only
	DisplayName string `json:"display_name,omitempty"`
	Nickname    string `json:"nickname,omitempty"`
	IsTeam      bool   `json:"is_team,omitempty"`
}

// PRState is the state of a pull request.
type PRState string

const (
	PROpen       PRState = "OPEN"
	PRMerged     PRState = "MERGED"
	PRDeclined   PRState = "DECLINED"
	PRSuperseded PRState = "SUPERSEDED"
)

// ReviewState is what a participant said about a pull request.
type ReviewState string

const (
	ReviewApproved         ReviewState = "approved"
	ReviewChangesRequested ReviewState = "changes_requested"
	ReviewNone             ReviewState = ""
)

// Participant is a user on a pull request with their review state.
type Participant struct {
	User     Actor       `json:"user"`
	Role     string      `json:"role,omitempty"` // PARTICIPANT | REVIEWER
	Approved bool        `json:"approved"`
	State    ReviewState `json:"state,omitempty"`
	On       time.Time   `json:"participated_on,omitempty"`
}

// Approval is one approval (or change request) with who and when.
type Approval struct {
	AccountID string      `json:"account_id"`
	Name      string      `json:"name,omitempty"`
	State     ReviewState `json:"state"`
	At        time.Time   `json:"at,omitempty"`
}

// PullRequest is a Bitbucket pull request as rolekeeper sees it.
type PullRequest struct {
	Repository        string        `json:"repository"` // "workspace/slug", lower case
	ID                int           `json:"id"`
	Title             string        `json:"title"`
	Description       string        `json:"description,omitempty"`
	State             PRState       `json:"state"`
	Draft             bool          `json:"draft,omitempty"`
	Author            Actor         `json:"author"`
	SourceBranch      string        `json:"source_branch,omitempty"`
	SourceCommit      string        `json:"source_commit,omitempty"` // may be short (12) in payloads
	DestinationBranch string        `json:"destination_branch,omitempty"`
	DestinationCommit string        `json:"destination_commit,omitempty"`
	MergeCommit       string        `json:"merge_commit,omitempty"`
	Reviewers         []Actor       `json:"reviewers,omitempty"`
	Participants      []Participant `json:"participants,omitempty"`
	ClosedBy          *Actor        `json:"closed_by,omitempty"`
	CreatedAt         time.Time     `json:"created_at,omitempty"`
	UpdatedAt         time.Time     `json:"updated_at,omitempty"`
	URL               string        `json:"url,omitempty"` // html link
	// DiffStatURL is the pull request's links.diffstat: the repository
	// diffstat of this state's revspec (source and destination commits).
	DiffStatURL string `json:"diffstat_url,omitempty"`
}

// Approvals returns the approvals and change requests found in participants.
func (p *PullRequest) Approvals() []Approval {
	var out []Approval
	for _, pt := range p.Participants {
		st := pt.State
		if st == ReviewNone && pt.Approved {
			st = ReviewApproved
		}
		if st == ReviewNone {
			continue
		}
		out = append(out, Approval{AccountID: pt.User.AccountID, Name: pt.User.DisplayName, State: st, At: pt.On})
	}
	return out
}

// FileStatus is how a file changed in a pull request.
type FileStatus string

const (
	FileAdded    FileStatus = "added"
	FileModified FileStatus = "modified"
	FileRemoved  FileStatus = "removed"
	FileRenamed  FileStatus = "renamed"
)

// ChangedFile is one entry of a diffstat.
type ChangedFile struct {
	Path    string     `json:"path"`               // new path, or old path when removed
	OldPath string     `json:"old_path,omitempty"` // set for renames
	Status  FileStatus `json:"status,omitempty"`
}

// Comment is a pull-request or issue comment.
type Comment struct {
	ID        string    `json:"id"`
	Author    Actor     `json:"author"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at,omitempty"`
}

// CommitStatus is a build status on a commit.
type CommitStatus struct {
	Key         string    `json:"key"`
	State       string    `json:"state"` // SUCCESSFUL, FAILED, INPROGRESS, STOPPED
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	URL         string    `json:"url,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	RefName     string    `json:"refname,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitempty"`
}

// Push is a repo:push with its branch changes.
type Push struct {
	Changes []PushChange `json:"changes"`
}

// PushChange is one ref moved by a push. Old or New is empty for a created or
// deleted ref.
type PushChange struct {
	RefType   string `json:"ref_type,omitempty"` // branch | tag
	RefName   string `json:"ref_name,omitempty"`
	OldCommit string `json:"old_commit,omitempty"`
	NewCommit string `json:"new_commit,omitempty"`
	Created   bool   `json:"created,omitempty"`
	Closed    bool   `json:"closed,omitempty"`
	// Commits are the new commits the payload lists, newest first, with
	// the author Bitbucket mapped (Author.AccountID) when it did.
	Commits []Commit `json:"commits,omitempty"`
	// CommitsComplete says Commits is every commit the push brought and
	// names their accounts as the commits API would: the payload said not
	// truncated and not forced, none is a merge commit (which brings
	// commits of another branch), and every author is either mapped to an
	// account id or not mapped at all.
	CommitsComplete bool `json:"commits_complete,omitempty"`
}

// Issue is a Jira issue as rolekeeper sees it (REST v2 representation).
type Issue struct {
	ID          string     `json:"id"`
	Key         string     `json:"key"`
	Project     string     `json:"project"` // project key
	Type        string     `json:"type"`    // issue type name
	TypeID      string     `json:"type_id,omitempty"`
	Subtask     bool       `json:"subtask,omitempty"` // the issue itself is a sub-task
	Summary     string     `json:"summary"`
	Description string     `json:"description,omitempty"`
	Status      string     `json:"status,omitempty"`
	StatusDone  bool       `json:"status_done,omitempty"` // status category is "done"
	Assignee    *Actor     `json:"assignee,omitempty"`
	Reporter    *Actor     `json:"reporter,omitempty"`
	FixVersions []Version  `json:"fix_versions,omitempty"`
	Labels      []string   `json:"labels,omitempty"`
	Parent      string     `json:"parent,omitempty"` // parent key, for sub-tasks
	Subtasks    []IssueRef `json:"subtasks,omitempty"`
	Links       []IssueRef `json:"links,omitempty"` // linked issues, either direction
	StoryPoints *float64   `json:"story_points,omitempty"`
	Sprints     []Sprint   `json:"sprints,omitempty"`
	Created     time.Time  `json:"created,omitempty"`
	Updated     time.Time  `json:"updated,omitempty"`
	URL         string     `json:"url,omitempty"` // browse link

	// StatusCategory is Jira's category of the status: "new" (to do),
	// "indeterminate" (in progress) or "done".
	StatusCategory string `json:"status_category,omitempty"`
	Priority       string `json:"priority,omitempty"` // priority name; "" when none is set
}

// IssueRef is a reference to another issue (sub-task or link).
type IssueRef struct {
	Key        string `json:"key"`
	Summary    string `json:"summary,omitempty"`
	Type       string `json:"type,omitempty"`
	Status     string `json:"status,omitempty"`
	StatusDone bool   `json:"status_done,omitempty"`
	LinkType   string `json:"link_type,omitempty"`
}

// Sprint is a Jira Software sprint.
type Sprint struct {
	ID    int    `json:"id"`
	Name  string `json:"name,omitempty"`
	State string `json:"state,omitempty"` // active | future | closed
}

// Version is a Jira fix version.
type Version struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Project     string    `json:"project,omitempty"`    // project key, when known
	ProjectID   string    `json:"project_id,omitempty"` // numeric project id (webhooks carry only this)
	Released    bool      `json:"released,omitempty"`
	ReleaseDate time.Time `json:"release_date,omitempty"`
}

// ChangeItem is one item of a Jira changelog.
type ChangeItem struct {
	Field      string `json:"field"`
	FieldID    string `json:"field_id,omitempty"`
	From       string `json:"from,omitempty"`
	FromString string `json:"from_string,omitempty"`
	To         string `json:"to,omitempty"`
	ToString   string `json:"to_string,omitempty"`
}

// Source is where an event came from.
type Source string

const (
	SourceBitbucket Source = "bitbucket"
	SourceJira      Source = "jira"
)

// EventKind is the neutral kind of an event, independent of vendor keys.
type EventKind string

const (
	EventPRCreated               EventKind = "pr.created"
	EventPRUpdated               EventKind = "pr.updated"
	EventPRPushed                EventKind = "pr.pushed"
	EventPRApproved              EventKind = "pr.approved"
	EventPRUnapproved            EventKind = "pr.unapproved"
	EventPRChangesRequested      EventKind = "pr.changes_requested"
	EventPRChangesRequestRemoved EventKind = "pr.changes_request_removed"
	EventPRMerged                EventKind = "pr.merged"
	EventPRDeclined              EventKind = "pr.declined"
	EventPRComment               EventKind = "pr.comment"
	EventRepoPush                EventKind = "repo.push"
	EventCommitStatus            EventKind = "repo.commit_status"
	EventIssueCreated            EventKind = "issue.created"
	EventIssueUpdated            EventKind = "issue.updated"
	EventIssueDeleted            EventKind = "issue.deleted"
	EventIssueComment            EventKind = "issue.comment"
	EventVersionReleased         EventKind = "version.released"
	EventSprintChanged           EventKind = "sprint.changed" // started or updated: its stories are checked again
	EventOther                   EventKind = "other"          // understood, nothing to do
)

// Event is one webhook delivery decoded into domain terms. Exactly the
// fields that fit its Kind are set.
type Event struct {
	Source       Source        `json:"source"`
	Kind         EventKind     `json:"kind"`
	Key          string        `json:"key"` // the vendor's event key, as received
	DeliveryID   string        `json:"delivery_id,omitempty"`
	Actor        Actor         `json:"actor"`
	Repository   string        `json:"repository,omitempty"` // "workspace/slug", lower case
	PullRequest  *PullRequest  `json:"pull_request,omitempty"`
	Approval     *Approval     `json:"approval,omitempty"`
	Comment      *Comment      `json:"comment,omitempty"`
	Push         *Push         `json:"push,omitempty"`
	CommitStatus *CommitStatus `json:"commit_status,omitempty"`
	Issue        *Issue        `json:"issue,omitempty"`
	Changelog    []ChangeItem  `json:"changelog,omitempty"`
	Version      *Version      `json:"version,omitempty"`
	Sprint       *Sprint       `json:"sprint,omitempty"`
	At           time.Time     `json:"at,omitempty"`
}

// SubjectKind says what a finding or decision is about.
type SubjectKind string

const (
	SubjectPullRequest SubjectKind = "pull_request"
	SubjectCommit      SubjectKind = "commit"
	SubjectIssue       SubjectKind = "issue"
	SubjectGate        SubjectKind = "gate"
	SubjectVersion     SubjectKind = "version"
	SubjectDeployment  SubjectKind = "deployment"
)

// Finding is something that slipped through a rule, or a break-glass use,
// kept for the weekly report. Key makes it idempotent: the same finding
// recorded twice is stored once.
type Finding struct {
	Key        string      `json:"key"`           // e.g. "merge-unapproved:ws/slug#12"
	Kind       string      `json:"kind"`          // rule kind, or "break-glass"
	RuleID     string      `json:"rule_id"`       // compiled rule id
	Team       string      `json:"team"`          // team id ("" when org-wide)
	Subject    SubjectKind `json:"subject"`       // what it is about
	Ref        string      `json:"ref"`           // "ws/slug#12", commit sha, "PAY-12", gate id
	URL        string      `json:"url,omitempty"` // link a person can follow
	Reason     string      `json:"reason"`        // readable: names rule, role, responsibility
	Held       bool        `json:"held"`          // true: the rule held (a check), false: a violation
	OccurredAt time.Time   `json:"occurred_at"`
	RecordedAt time.Time   `json:"recorded_at,omitempty"`
	Actor      string      `json:"actor,omitempty"` // account id involved (merger, approver)
	Details    string      `json:"details,omitempty"`
}

// Deployment is a Bitbucket Pipelines deployment of a commit to an
// environment.
type Deployment struct {
	UUID         string    `json:"uuid"`
	Environment  string    `json:"environment"` // environment name (e.g. production)
	EnvUUID      string    `json:"environment_uuid,omitempty"`
	Commit       string    `json:"commit"`
	State        string    `json:"state"`            // e.g. COMPLETED, IN_PROGRESS
	Status       string    `json:"status,omitempty"` // e.g. SUCCESSFUL, FAILED
	PipelineUUID string    `json:"pipeline_uuid,omitempty"`
	BuildNumber  int       `json:"build_number,omitempty"`
	At           time.Time `json:"at,omitempty"`
	URL          string    `json:"url,omitempty"`
}

// Commit is one commit of a pull request as Bitbucket lists it.
type Commit struct {
	Hash      string    `json:"hash"`                 // 40 hex
	Author    Actor     `json:"author,omitempty"`     // set only when Bitbucket mapped the author's email to an account
	AuthorRaw string    `json:"author_raw,omitempty"` // "Name <email>", as written in the commit
	Date      time.Time `json:"date,omitempty"`       // chosen by the committer: never order or judge by it
}

// PRActivityKind is the kind of a pull request activity entry.
type PRActivityKind string

const (
	ActivityUpdate         PRActivityKind = "update" // a push, an edit, a state change
	ActivityApproval       PRActivityKind = "approval"
	ActivityChangesRequest PRActivityKind = "changes_request"
	ActivityComment        PRActivityKind = "comment"
)

// PRActivity is one entry of a pull request's activity log. At is
// Bitbucket's own clock, unlike commit dates.
type PRActivity struct {
	Kind         PRActivityKind `json:"kind"`
	User         Actor          `json:"user"`                    // who approved, requested changes, commented or updated
	At           time.Time      `json:"at"`                      //
	State        PRState        `json:"state,omitempty"`         // update: the state after it
	SourceCommit string         `json:"source_commit,omitempty"` // update: the source head after it (often 12 hex)
	// DestinationBranch is, for an update, the branch the pull request
	// targets after it (an update entry is a snapshot of the pull request).
	DestinationBranch string   `json:"destination_branch,omitempty"`
	Comment           *Comment `json:"comment,omitempty"` // comment entries only
}

// LastPush is when head became the pull request's source commit: the oldest
// of the newest run of update entries whose source commit is head (acts
// newest first, as Bitbucket lists them). Activity entries carry 12 hex,
// and every edit (title, description, reviewers) adds an update entry with
// the same source commit, so a run normally means one push and its edits.
// twin says another commit shares head's 12 hex (HasTwin, or Bitbucket
// resolving the abbreviation to no single commit): a push of head then
// cannot be told from an edit made while the twin was the head, and the
// newest entry of the run counts as the push, so an edit may make an
// approval look stale, never a stale one look fresh. ok is false when no
// update entry shows head (the log is truncated or the head is unknown):
// callers then treat every approval as possibly stale.
//
// A pull request retargeted to another branch shows a new diff over the
// same head: the run also ends where the destination changed, so an
// approval of the diff against the old destination is older than the push.
func LastPush(acts []PRActivity, head string, twin bool) (at time.Time, ok bool) {
	dest := ""
	for _, a := range acts {
		if a.Kind != ActivityUpdate || a.SourceCommit == "" {
			continue
		}
		if !SameCommit(a.SourceCommit, head) || (ok && dest != "" && a.DestinationBranch != "" && a.DestinationBranch != dest) {
			if ok {
				return at, true
			}
			continue // a newer head than the one asked about: skip
		}
		if !ok {
			dest = a.DestinationBranch
		}
		at, ok = a.At, true
		if twin {
			return at, true
		}
	}
	return at, ok
}

// HasTwin reports whether known holds a full hash other than head that
// shares head's first 12 hex, the abbreviation Bitbucket's activity and
// pull request bodies use: such a pair cannot be told apart there. A head
// shorter than 40 hex has a twin when two distinct known hashes match it.
func HasTwin(head string, known []string) bool {
	if len(head) < 12 {
		return false
	}
	prefix := strings.ToLower(head[:12])
	var seen []string
	if IsFullCommit(head) {
		seen = append(seen, strings.ToLower(head))
	}
	for _, k := range known {
		k = strings.ToLower(k)
		if !IsFullCommit(k) || k[:12] != prefix || slices.Contains(seen, k) {
			continue
		}
		seen = append(seen, k)
		if len(seen) > 1 {
			return true
		}
	}
	return false
}

// SameCommit reports whether two hashes name the same commit: equal, or one
// a prefix (of at least 12 hex) of the other. Only for hashes Bitbucket
// itself shortened within one pull request, never for matching a claim.
func SameCommit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(a) < 12 {
		return a != "" && a == b
	}
	return len(b) >= len(a) && strings.EqualFold(b[:len(a)], a)
}
