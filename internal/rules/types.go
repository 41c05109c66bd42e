// Package rules is the pure engine: it takes a snapshot (pull request,
// changed files, approvals, load, time) and the compiled roles, and returns a
// decision with a reason a person can read for every item. It does no I/O.
package rules

import (
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// Status keys posted on commits (see CONTRACT.md).
const (
	StatusReview       = "rolekeeper-review"
	StatusTests        = "rolekeeper-tests"
	StatusDeployPrefix = "rolekeeper-deploy-" // + environment
)

// Commit status states, as Bitbucket names them.
const (
	StateSuccessful = "SUCCESSFUL"
	StateFailed     = "FAILED"
	StateInProgress = "INPROGRESS"
)

// PRSnapshot is everything the engine needs to decide about a pull request.
type PRSnapshot struct {
	Repository   string           // "ws/slug"
	Number       int              // pull request id
	Title        string           //
	Author       model.Actor      // AccountID is what matters
	Draft        bool             //
	State        model.PRState    // OPEN, MERGED, …
	SourceCommit string           //
	ChangedFiles []string         // every path touched (both sides of a rename)
	Reviewers    []string         // account ids currently requested as reviewers
	Approvals    []model.Approval // current approvals and change requests (At: when given, by Bitbucket's clock)
	// CommitAuthors are the accounts Bitbucket mapped the pull request's
	// commits to. None of them is asked to review, and their approvals do
	// not count for code-review and path-review (separation of duties).
	CommitAuthors []model.Actor
	// LastPush is when the source commit was pushed (the activity's update
	// entries; commit dates never count). Zero: unknown, and then rules
	// with invalidate_on_push count no approval.
	LastPush time.Time
	Load     map[string]int // open review requests per account id (from the store)
	Now      time.Time      //

	// AssignDrafts asks for reviewers on draft pull requests too.
	AssignDrafts bool
}

// Decision is what the engine decided for a pull request, with reasons.
type Decision struct {
	Repository string `json:"repository"`
	Number     int    `json:"pr"`
	Commit     string `json:"commit,omitempty"`
	Team       string `json:"team,omitempty"` // "" when no team owns the repository: no action

	// Skipped says why nothing is requested ("repository owned by no team",
	// "draft pull request"); empty otherwise.
	Skipped string `json:"skipped,omitempty"`

	Rules []RuleResult `json:"rules"` // every rule considered, triggered or not

	// Request is the union of reviewers to have on the pull request (account
	// ids): already-present eligible reviewers kept, new picks added. It never
	// holds the author. Adapters merge it with the current list and never
	// remove anyone.
	Request []Pick `json:"request,omitempty"`

	Statuses []Status `json:"statuses"`

	// ApprovalsMet is true when every triggered rule's required approvals
	// are in.
	ApprovalsMet bool `json:"approvals_met"`

	EvaluatedAt time.Time `json:"evaluated_at"`
}

// RuleResult is one rule's verdict on the pull request.
type RuleResult struct {
	RuleID         string `json:"rule_id"`
	Kind           string `json:"kind"`
	Role           string `json:"role"`
	Responsibility string `json:"responsibility"`

	Triggered bool   `json:"triggered"`
	Reason    string `json:"reason"` // why it did or did not trigger

	MatchedPaths []string `json:"matched_paths,omitempty"` // path-review, unit-tests

	Picks      []Pick   `json:"picks,omitempty"`       // reviewers for this rule
	Required   int      `json:"required"`              // approvals required
	ApprovedBy []string `json:"approved_by,omitempty"` // account ids whose approval counts for it
	// ApprovedNames are the display names of ApprovedBy, in the same order.
	ApprovedNames []string `json:"approved_names,omitempty"`
	Ignored       []string `json:"ignored,omitempty"` // approvals that do not count, with why
	// Excluded names the role holders never asked for this rule and why
	// (they wrote code of the pull request).
	Excluded  []string `json:"excluded,omitempty"`
	Met       bool     `json:"met"`
	Notes     []string `json:"notes,omitempty"` // e.g. "Kofi is away until 2 Jan"
	Shortfall string   `json:"shortfall,omitempty"`
}

// Pick is one person chosen (or kept) as reviewer, with the reason.
type Pick struct {
	AccountID string `json:"account_id"`
	Person    string `json:"person"` // handle in roles.yaml
	Name      string `json:"name"`
	Kept      bool   `json:"kept,omitempty"` // already a reviewer (sticky)
	Reason    string `json:"reason"`
}

// Status is a commit status to post.
type Status struct {
	Key         string `json:"key"`
	State       string `json:"state"`
	Description string `json:"description"` // short: Bitbucket shows it in the PR
}
