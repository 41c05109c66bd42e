// Package store defines persistence behind small interfaces grouped by use.
// Implementations live in store/sqlite (embedded default) and store/postgres;
// store/storetest is the conformance suite both pass. Nothing here may leak
// behaviour of one database: times are passed in by the caller, ordering is
// explicit, conflicts are reported as ErrConflict.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique key already exists or an optimistic
// update lost the race (the record's Version changed).
var ErrConflict = errors.New("conflict")

// ErrLostClaim is returned by Renew, Complete, Retry and Bury when the
// caller no longer holds the claim: its lease passed, or its replica was
// declared dead, and another worker took the delivery (or finished it).
// The caller must stop acting on the delivery. It wraps ErrConflict.
var ErrLostClaim = fmt.Errorf("lost the claim: %w", ErrConflict)

// Store is every interface together; a consumer should depend on the
// narrow one it uses.
type Store interface {
	Inbox
	Decisions
	PullRequests
	Findings
	Gates
	KV
	Leases
	Evidence // evidence (h6): the tamper-evident log, store/evidence.go
	// Ping checks that the store answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// DeliveryState is where a webhook delivery is in its life.
type DeliveryState string

const (
	DeliveryPending    DeliveryState = "pending"    // waiting (first try or retry)
	DeliveryProcessing DeliveryState = "processing" // claimed by a worker under a lease
	DeliveryDone       DeliveryState = "done"
	DeliveryDead       DeliveryState = "dead" // dead-lettered after too many attempts
)

// Delivery is one stored webhook delivery.
type Delivery struct {
	Seq           int64 // assigned by Enqueue
	Source        model.Source
	DeliveryID    string // X-Request-UUID or X-Atlassian-Webhook-Identifier
	EventKey      string // X-Event-Key (Bitbucket) or webhookEvent (Jira)
	Body          []byte // raw body as received (nil from ListDeliveries)
	BodyBytes     int    // the body's length, also from ListDeliveries
	ReceivedAt    time.Time
	State         DeliveryState
	Attempts      int // claims so far
	NextAttemptAt time.Time
	ClaimedBy     string // the replica (process) holding the claim
	ClaimedUntil  time.Time
	ClaimToken    string // fences the claim: set anew by every Claim
	LastError     string
	DoneAt        time.Time
}

// ClaimRequest asks for up to Limit deliveries that are due at Now: pending
// with NextAttemptAt <= Now, or processing whose lease (ClaimedUntil) has
// passed, or processing claimed by a replica whose last heartbeat is at or
// before StaleBefore (it died). Claiming sets State=processing, ClaimedBy,
// ClaimedUntil=Now+Lease, a new ClaimToken, and increments Attempts. Oldest
// Seq first. Two concurrent claims never return the same delivery.
type ClaimRequest struct {
	Worker      string // the replica claiming; the name it heartbeats under
	Now         time.Time
	Lease       time.Duration
	Limit       int
	StaleBefore time.Time // zero: only expired leases are taken over
}

// Claim names one claim of a delivery: only its holder may renew or
// settle it.
type Claim struct {
	Seq   int64
	Token string
}

// ClaimOf returns the claim a claimed delivery carries.
func ClaimOf(d Delivery) Claim { return Claim{Seq: d.Seq, Token: d.ClaimToken} }

// InboxStats describes the queue for metrics.
type InboxStats struct {
	Pending       int
	Processing    int
	Dead          int
	OldestPending time.Time // zero when none pending
}

// Inbox is the durable queue of webhook deliveries.
type Inbox interface {
	// Enqueue stores a delivery. It returns false (and no error) when a
	// delivery with the same Source and DeliveryID exists: processed once.
	// d.Seq is set when inserted. State starts pending, due at ReceivedAt.
	Enqueue(ctx context.Context, d *Delivery) (bool, error)
	Claim(ctx context.Context, req ClaimRequest) ([]Delivery, error)
	// Renew extends a claim the caller holds to `until`. Renew, Complete,
	// Retry and Bury return ErrLostClaim unless c is the delivery's current
	// claim (processing, same token).
	Renew(ctx context.Context, c Claim, until time.Time) error
	// Complete marks a claimed delivery done.
	Complete(ctx context.Context, c Claim, now time.Time) error
	// Retry puts a claimed delivery back to pending, due at `at`.
	Retry(ctx context.Context, c Claim, at time.Time, errMsg string) error
	// Bury dead-letters a claimed delivery; DoneAt records when.
	Bury(ctx context.Context, c Claim, now time.Time, errMsg string) error
	// Heartbeat records that replica is alive at now; ClaimRequest's
	// StaleBefore compares against it.
	Heartbeat(ctx context.Context, replica string, now time.Time) error
	// Leave forgets replica's heartbeat (a graceful stop).
	Leave(ctx context.Context, replica string) error
	// ListDeliveries lists deliveries in a state (every state when
	// empty), oldest first, without their bodies: Body is always nil.
	ListDeliveries(ctx context.Context, state DeliveryState, limit int) ([]Delivery, error)
	// GetDelivery returns one delivery by Seq, with its body.
	GetDelivery(ctx context.Context, seq int64) (*Delivery, error)
	// Redrive moves a dead delivery back to pending with Attempts reset,
	// due at now. ErrNotFound if it is not dead.
	Redrive(ctx context.Context, seq int64, now time.Time) error
	InboxStats(ctx context.Context) (InboxStats, error)
}

// DecisionRecord is a stored decision: what was decided, from what, why.
type DecisionRecord struct {
	ID int64
	// PublicID names the decision's public page (/decisions/{PublicID}):
	// NewPublicID's 128 random bits, set by SaveDecision, unique. The
	// numeric ID is internal and never served on a public page.
	PublicID   string
	Kind       model.SubjectKind // pull_request, gate, issue, …
	Repository string            // "ws/slug" lower case, for PRs and gates
	PR         int
	Commit     string
	IssueKey   string
	Team       string
	Trigger    string // event kind, "audit", …
	DeliveryID string
	Summary    string          // one line a person can read
	Decision   json.RawMessage // the engine's decision (rules.Decision, …)
	Snapshot   json.RawMessage // the snapshot it was made from (for simulate)
	Outcome    string          // what the adapters did ("requested 2 reviewers", "dry-run", …)
	CreatedAt  time.Time
}

// DecisionFilter selects decisions; zero fields do not filter. Results are
// ordered by CreatedAt then ID, ascending.
type DecisionFilter struct {
	Kind       model.SubjectKind
	Repository string
	PR         int
	IssueKey   string
	Since      time.Time // CreatedAt >= Since
	Until      time.Time // CreatedAt < Until
	Limit      int       // 0: no limit
}

// Decisions is the audit trail the reports read.
type Decisions interface {
	// SaveDecision stores d and sets d.ID and d.PublicID (a fresh
	// NewPublicID; any value the caller put there is replaced).
	SaveDecision(ctx context.Context, d *DecisionRecord) (int64, error)
	SetOutcome(ctx context.Context, id int64, outcome string) error
	GetDecision(ctx context.Context, id int64) (*DecisionRecord, error)
	// GetDecisionByPublicID returns the decision of a public page;
	// ErrNotFound when none has that public id.
	GetDecisionByPublicID(ctx context.Context, publicID string) (*DecisionRecord, error)
	ListDecisions(ctx context.Context, f DecisionFilter) ([]DecisionRecord, error)
}

// PRRecord is rolekeeper's memory of a pull request: what it last saw and
// what it did, so that redeliveries cost no upstream calls and actions stay
// idempotent.
type PRRecord struct {
	Repository        string // "ws/slug" lower case
	ID                int
	Team              string
	Title             string
	AuthorAccountID   string
	State             model.PRState
	Draft             bool
	SourceCommit      string
	DestinationBranch string
	MergeCommit       string
	ClosedBy          string // account id of who merged or declined

	DiffCommit   string   // source commit ChangedFiles belong to
	ChangedFiles []string // paths

	Reviewers []string         // reviewers last seen on the PR (account ids)
	Requested []string         // reviewers rolekeeper asked for (account ids)
	Approvals []model.Approval // last seen approvals / change requests

	CommentID string            // rolekeeper's explaining comment, edited in place
	Statuses  map[string]string // status key → "STATE|description" last posted

	ReviewMet     bool      // required approvals were in at the last evaluation
	CreatedAt     time.Time // upstream created_on
	UpdatedAt     time.Time // upstream updated_on
	FirstReviewAt time.Time // first approval or change request by anyone but the author
	ApprovedAt    time.Time // when the required approvals were first all in
	ClosedAt      time.Time // merged or declined
	SeenAt        time.Time // last time rolekeeper refreshed this record
}

// HeadsKey is the PRRecord.Statuses entry that lists, newest first, the full
// hashes rolekeeper saw as the pull request's head (from its commits and
// from signed pushes). Bitbucket's activity names heads by 12 hex only: two
// known heads sharing those 12 hex mean an activity entry cannot tell a push
// of one from an edit made while the other was the head.
const HeadsKey = "heads"

// PushersKey is the PRRecord.Statuses entry that lists, newest first, the
// accounts that pushed to the pull request's branch while rolekeeper knew
// it (the actor of a signed repo:push, whom Bitbucket authenticated). A
// commit's author is what its committer typed; whoever pushed it did not
// type their identity: separation of duties counts both.
const PushersKey = "pushers"

// maxListed bounds the lists kept under HeadsKey and PushersKey; older
// entries fall off.
const maxListed = 32

// Heads returns the full hashes recorded under HeadsKey, newest first.
func (r *PRRecord) Heads() []string { return r.list(HeadsKey) }

// AddHeads records full hashes as heads the pull request had (newest last
// in the arguments); anything but a 40-hex hash is ignored.
func (r *PRRecord) AddHeads(hashes ...string) {
	for _, h := range hashes {
		if model.IsFullCommit(h) {
			r.push(HeadsKey, strings.ToLower(h))
		}
	}
}

// Pushers returns the account ids recorded under PushersKey, newest first.
func (r *PRRecord) Pushers() []string { return r.list(PushersKey) }

// AddPusher records an account that pushed to the pull request's branch.
func (r *PRRecord) AddPusher(accountID string) {
	if accountID != "" && !strings.ContainsAny(accountID, ", ") {
		r.push(PushersKey, accountID)
	}
}

func (r *PRRecord) list(key string) []string {
	if r == nil || r.Statuses[key] == "" {
		return nil
	}
	return strings.Split(r.Statuses[key], ",")
}

// push puts v first in the list under key, once.
func (r *PRRecord) push(key, v string) {
	l := r.list(key)
	if i := slices.Index(l, v); i == 0 {
		return
	} else if i > 0 {
		l = slices.Delete(l, i, i+1)
	}
	l = slices.Insert(l, 0, v)
	if len(l) > maxListed {
		l = l[:maxListed]
	}
	if r.Statuses == nil {
		r.Statuses = map[string]string{}
	}
	r.Statuses[key] = strings.Join(l, ",")
}

// PRFilter selects pull-request records; zero fields do not filter. Ordered
// by Repository, then ID.
type PRFilter struct {
	Repository   string
	State        model.PRState
	UpdatedSince time.Time // UpdatedAt >= UpdatedSince
	UpdatedUntil time.Time // UpdatedAt < UpdatedUntil
	ClosedSince  time.Time // ClosedAt >= ClosedSince
	ClosedUntil  time.Time // ClosedAt < ClosedUntil
	Limit        int
}

// PullRequests keeps PR records.
type PullRequests interface {
	UpsertPR(ctx context.Context, pr *PRRecord) error
	GetPR(ctx context.Context, repo string, id int) (*PRRecord, error)
	ListPRs(ctx context.Context, f PRFilter) ([]PRRecord, error)
	// PRsByCommit returns PRs of the repository whose MergeCommit or
	// SourceCommit is the commit, a full 40-hex hash (either case); a
	// shorter one finds nothing, and a record holding a short hash is never
	// found: two commits can share a 12-hex prefix (model.SameFullCommit).
	// Ordered by ID.
	PRsByCommit(ctx context.Context, repo, commit string) ([]PRRecord, error)
}

// ReviewLoad counts open review requests per account: for every open PR,
// each reviewer who has not approved or requested changes yet.
func ReviewLoad(prs []PRRecord) map[string]int {
	load := make(map[string]int)
	for _, pr := range prs {
		if pr.State != model.PROpen {
			continue
		}
		reviewed := make(map[string]bool, len(pr.Approvals))
		for _, a := range pr.Approvals {
			reviewed[a.AccountID] = true
		}
		for _, r := range pr.Reviewers {
			if !reviewed[r] {
				load[r]++
			}
		}
	}
	return load
}

// FindingFilter selects findings by when they occurred; zero fields do not
// filter. Ordered by OccurredAt then Key.
type FindingFilter struct {
	Since time.Time
	Until time.Time
	Team  string
	Kind  string
	Limit int
}

// Findings keeps what the rules found, for the weekly report.
type Findings interface {
	// AddFinding stores a finding once per Key; it returns false when the
	// key exists (nothing changes).
	AddFinding(ctx context.Context, f model.Finding) (bool, error)
	ListFindings(ctx context.Context, f FindingFilter) ([]model.Finding, error)
}

// Gate states.
const (
	GatePending  = "pending"
	GateApproved = "approved"
	GateRejected = "rejected"
	GateExpired  = "expired"
)

// Gate is a deployment approval gate.
type Gate struct {
	ID           string // opaque, URL-safe
	DedupeKey    string // unique; the gate package decides its form
	Repository   string // "ws/slug" lower case
	Commit       string // full hash
	Environment  string
	Team         string
	RuleID       string
	State        string
	Approvers    []string // account ids eligible to approve
	Excluded     []string // account ids excluded (authors of the change)
	PRs          []int    // pull requests that brought the commit
	PipelineUUID string
	BuildNumber  int
	CreatedAt    time.Time
	ExpiresAt    time.Time
	DecidedBy    string // account id, or "rolekeeper" for automatic decisions
	DecidedAt    time.Time
	Reason       string
	BreakGlass   bool
	Notified     bool            // approvers were mentioned in a PR comment
	FollowUp     string          // Jira issue key of the break-glass follow-up
	Data         json.RawMessage // the gate package's own details (history, …)
	Version      int             // optimistic concurrency: UpdateGate needs the stored value and bumps it
}

// GateFilter selects gates; zero fields do not filter. Ordered by CreatedAt.
type GateFilter struct {
	State      string
	Repository string
	Since      time.Time // CreatedAt >= Since
	Until      time.Time
	Limit      int
}

// Gates keeps deployment gates.
type Gates interface {
	// CreateGate inserts g (Version becomes 1). ErrConflict when the ID or
	// DedupeKey exists.
	CreateGate(ctx context.Context, g *Gate) error
	GetGate(ctx context.Context, id string) (*Gate, error)
	GetGateByKey(ctx context.Context, dedupeKey string) (*Gate, error)
	// UpdateGate writes g when the stored Version equals g.Version, and
	// increments g.Version; ErrConflict otherwise.
	UpdateGate(ctx context.Context, g *Gate) error
	ListGates(ctx context.Context, f GateFilter) ([]Gate, error)
}

// KV holds small facts: idempotency marks ("commented on PAY-12"), cursors,
// budgets.
type KV interface {
	// PutIfAbsent stores key=value unless the key exists; it returns
	// whether it stored.
	PutIfAbsent(ctx context.Context, key, value string) (bool, error)
	Set(ctx context.Context, key, value string) error
	// Get returns the value and whether the key exists.
	Get(ctx context.Context, key string) (string, bool, error)
	Delete(ctx context.Context, key string) error
	// Keys lists keys with the prefix, sorted.
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// TableRows is a table's name and its row count.
type TableRows struct {
	Table string
	Rows  int64
}

// StoreSize describes how much the store holds, for metrics.
type StoreSize struct {
	Tables []TableRows // the store's own tables, by name
	Bytes  int64       // the database's size on disk (SQLite: the file; PostgreSQL: the schema's relations)
}

// Retention deletes what the store no longer needs to keep, a bounded batch
// per call so that no statement holds the database long.
type Retention interface {
	// PruneDeliveries deletes up to limit deliveries in state (done or
	// dead) that ended (DoneAt) before
	// `before`, and returns how many. Open deliveries are never pruned.
	PruneDeliveries(ctx context.Context, state DeliveryState, before time.Time, limit int) (int, error)
	// PruneDecisions deletes up to limit decisions created before `before`.
	PruneDecisions(ctx context.Context, before time.Time, limit int) (int, error)
	// Size counts rows per table and measures the database.
	Size(ctx context.Context) (StoreSize, error)
}

// Owned is implemented by a store that one process at a time may work
// (SQLite). Own takes an OS lock on the database, refusing with a clear
// error while another process holds it, and puts every delivery claimed
// by an earlier owner (which died, since it no longer holds the lock) back
// to pending, due at now. It returns how many it released.
type Owned interface {
	Own(ctx context.Context, now time.Time) (released int, err error)
}

// Leases let one replica at a time hold a named role (the cron leader).
type Leases interface {
	// AcquireLease takes or renews the lease for holder until now+ttl. It
	// succeeds when the lease is free, expired, or already held by holder.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}
