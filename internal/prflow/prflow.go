// Package prflow is the pull-request workflow: it turns Bitbucket
// pull-request events into snapshots, evaluates them with the pure engine
// (internal/rules) and carries the decision out upstream: reviewers, two
// commit statuses and one explaining comment. Every step compares with what
// the PR record says was already done, so a redelivered or retried event
// costs no upstream call, and every evaluation is stored as a decision.
package prflow

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Host is the part of Bitbucket the workflow needs. internal/bitbucket's
// client implements it (tests run it against bitbuckettest).
type Host interface {
	GetPullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error)
	PullRequestDiffStat(ctx context.Context, repo string, id int) ([]model.ChangedFile, error)
	PullRequestCommits(ctx context.Context, repo string, id int) ([]model.Commit, error)
	PullRequestActivity(ctx context.Context, repo string, id int) ([]model.PRActivity, error)
	ResolveCommit(ctx context.Context, repo, commit string) (string, error)
	SetReviewers(ctx context.Context, repo string, id int, title, description string, reviewers []model.Actor) (*model.PullRequest, error)
	SetCommitStatus(ctx context.Context, repo, commit string, st model.CommitStatus) error
	CreateComment(ctx context.Context, repo string, id int, body string) (model.Comment, error)
	UpdateComment(ctx context.Context, repo string, id int, commentID, body string) error
}

// Store is the part of the store the workflow needs.
type Store interface {
	store.PullRequests
	store.Decisions
	store.Findings
}

// Options configure a Handler. Host, Store, Roles and PublicURL are
// required.
type Options struct {
	Host  Host
	Store Store
	Roles *roles.Current
	// PublicURL is rolekeeper's own address; statuses and the comment link
	// to PublicURL + "/decisions/{id}". Bitbucket requires a status URL.
	PublicURL string
	// DryRun decides and records everything and calls no write method
	// upstream (reads still happen).
	DryRun bool
	// AssignDrafts requests reviewers on draft pull requests too.
	AssignDrafts bool
	Logger       *zap.Logger
	Registerer   prometheus.Registerer // nil: metrics are kept but not exported
	Now          func() time.Time
}

// Handler runs the workflow. It is safe for concurrent use: events of the
// same pull request are serialised inside one process (a second replica
// relies on the inbox handing one delivery to one worker).
type Handler struct {
	host         Host
	st           Store
	roles        *roles.Current
	publicURL    string
	dryRun       bool
	assignDrafts bool
	log          *zap.Logger
	now          func() time.Time
	m            metrics
	me           self       // rolekeeper's own account, once read
	pushersMu    sync.Mutex // serialises this process's updates of branch pushers

	engine atomic.Pointer[compiled]
	locks  [64]sync.Mutex // striped per pull request
	// unsaved holds comments created upstream whose id could not be
	// stored yet ("repo#id" → unsavedComment), so a retry edits instead of
	// posting a second one.
	unsaved sync.Map
}

// compiled caches the engine of the Org in force.
type compiled struct {
	org *roles.Org
	e   *rules.Engine
}

// Result says what one evaluation did.
type Result struct {
	DecisionID int64  // 0 when nothing was evaluated
	Team       string // owning team
	Skipped    string // why nothing was evaluated ("" when evaluated)
	// Decision is the engine's decision (zero when Skipped).
	Decision rules.Decision
	Outcome  string // what was done upstream, as stored with the decision
	// Changed is true when something was (or, in dry-run, would have been)
	// written upstream.
	Changed bool
	// Calls counts upstream requests made, reads included.
	Calls int
	// Findings are what a merge was judged on (merged pull requests only):
	// merge-unapproved or merge-approved, merge-untested or merge-tested.
	Findings []model.Finding
}

// New checks the options and registers the metrics.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Host == nil:
		return nil, errors.New("prflow: host is required")
	case opts.Store == nil:
		return nil, errors.New("prflow: store is required")
	case opts.Roles == nil:
		return nil, errors.New("prflow: roles are required")
	case strings.TrimSpace(opts.PublicURL) == "":
		return nil, errors.New("prflow: public url is required (commit statuses must link somewhere)")
	}
	h := &Handler{
		host:         opts.Host,
		st:           opts.Store,
		roles:        opts.Roles,
		publicURL:    strings.TrimRight(strings.TrimSpace(opts.PublicURL), "/"),
		dryRun:       opts.DryRun,
		assignDrafts: opts.AssignDrafts,
		log:          opts.Logger,
		now:          opts.Now,
		m:            newMetrics(),
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if opts.Registerer != nil {
		if err := h.m.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("prflow: register metrics: %w", err)
		}
	}
	return h, nil
}

// input is what an evaluation was triggered by.
type input struct {
	trigger  string    // event kind or "audit"
	delivery string    // webhook delivery id
	at       time.Time // when it happened upstream (zero: now)
	actor    model.Actor

	claim      *model.Approval   // what a review event says happened (a claim, never decided from)
	truth      bool              // the pull request given was read from Bitbucket (the audit)
	review     bool              // an approval or change request event: always verified
	fromRecord bool              // built from the record for a branch push: no state of its own
	pushed     *model.PushChange // the branch push that triggered the pass (its signed commit list)
	repost     string            // a status key someone else rewrote: posted again whatever the record says
}

// Handle processes one event. Events it does not handle are ignored.
// Errors from Bitbucket are returned as they are (wrapped), so that the
// inbox can retry temporary ones; every step is idempotent.
func (h *Handler) Handle(ctx context.Context, ev *model.Event) error {
	if ev == nil || (ev.Source != "" && ev.Source != model.SourceBitbucket) {
		return nil
	}
	in := input{trigger: string(ev.Kind), delivery: ev.DeliveryID, at: ev.At, actor: ev.Actor}
	switch ev.Kind {
	case model.EventPRCreated, model.EventPRUpdated, model.EventPRPushed,
		model.EventPRApproved, model.EventPRUnapproved,
		model.EventPRChangesRequested, model.EventPRChangesRequestRemoved,
		model.EventPRMerged, model.EventPRDeclined:
		if ev.PullRequest == nil {
			return permanentf("prflow: %s event without a pull request", ev.Kind)
		}
		pr := clonePR(ev.PullRequest)
		if pr.Repository == "" {
			pr.Repository = ev.Repository
		}
		switch ev.Kind {
		case model.EventPRMerged:
			pr.State = model.PRMerged
		case model.EventPRDeclined:
			pr.State = model.PRDeclined
		case model.EventPRApproved, model.EventPRUnapproved, model.EventPRChangesRequested, model.EventPRChangesRequestRemoved:
			// What the body says about the review is a claim: the pass
			// reads the pull request before deciding.
			in.review = true
			if ev.Approval != nil {
				c := *ev.Approval
				in.claim = &c
			}
		}
		_, err := h.reconcile(ctx, pr, in)
		return err
	case model.EventRepoPush:
		return h.push(ctx, ev, in)
	case model.EventCommitStatus:
		return h.statusWritten(ctx, ev, in)
	}
	return nil
}

// Reconcile evaluates a pull request from its current upstream state (as
// GetPullRequest returns it: reviewers and participants included) and
// carries the decision out: the scheduled audit's path. trigger is stored
// with the decision ("audit").
func (h *Handler) Reconcile(ctx context.Context, pr model.PullRequest, trigger string) (Result, error) {
	return h.reconcile(ctx, clonePR(&pr), input{trigger: trigger, truth: true})
}

func (h *Handler) reconcile(ctx context.Context, pr model.PullRequest, in input) (Result, error) {
	pr.Repository = strings.ToLower(pr.Repository)
	if pr.Repository == "" || pr.ID <= 0 {
		return Result{}, permanentf("prflow: pull request without repository or id")
	}
	org := h.roles.Get()
	if org == nil {
		return Result{}, errors.New("prflow: no roles loaded")
	}
	team := org.TeamForRepo(pr.Repository)
	if team == nil {
		h.log.Debug("repository owned by no team: nothing to do",
			zap.String("repo", pr.Repository), zap.Int("pr", pr.ID), zap.String("event", in.trigger))
		return Result{Skipped: "repository owned by no team"}, nil
	}
	mu := h.lock(pr.Repository, pr.ID)
	mu.Lock()
	defer mu.Unlock()

	p := &pass{h: h, org: org, team: team, pr: pr, in: in, now: h.now()}
	if err := p.load(ctx); err != nil {
		return p.result(), err
	}
	if p.stale() {
		h.log.Debug("pull request already closed: stale event ignored",
			zap.String("repo", pr.Repository), zap.Int("pr", pr.ID), zap.String("event", in.trigger))
		r := p.result()
		r.Skipped = "pull request already " + strings.ToLower(string(p.rec.State))
		return r, nil
	}
	if why := p.superseded(); why != "" {
		h.log.Info("event changes nothing", zap.String("repo", pr.Repository), zap.Int("pr", pr.ID),
			zap.String("event", in.trigger), zap.String("delivery_id", in.delivery), zap.String("why", why))
		r := p.result()
		r.Skipped = why
		return r, nil
	}
	var err error
	if pr.State == model.PROpen || pr.State == "" {
		err = p.open(ctx)
	} else {
		err = p.closed(ctx)
	}
	return p.result(), err
}

// push re-evaluates the open pull requests whose head a branch push moved.
// The push payload carries full hashes; the pull request is read only when
// the record holds approvals (Bitbucket may have reset them).
func (h *Handler) push(ctx context.Context, ev *model.Event, in input) error {
	repo := strings.ToLower(ev.Repository)
	if ev.Push == nil || repo == "" {
		return nil
	}
	org := h.roles.Get()
	if org == nil {
		return errors.New("prflow: no roles loaded")
	}
	if org.TeamForRepo(repo) == nil {
		h.log.Debug("repository owned by no team: nothing to do", zap.String("repo", repo), zap.String("event", in.trigger))
		return nil
	}
	done := map[int]bool{}
	for _, c := range ev.Push.Changes {
		if err := h.rememberPusher(ctx, repo, c, ev.Actor); err != nil {
			return err
		}
		if (c.RefType != "" && c.RefType != "branch") || c.OldCommit == "" || c.NewCommit == "" || c.Closed {
			continue
		}
		recs, err := h.st.PRsByCommit(ctx, repo, c.OldCommit)
		if err != nil {
			return fmt.Errorf("prflow: pull requests at %s: %w", short(c.OldCommit), err)
		}
		for _, rec := range recs {
			if done[rec.ID] || rec.State != model.PROpen || !model.SameCommit(rec.SourceCommit, c.OldCommit) {
				continue
			}
			done[rec.ID] = true
			// The record stands in for the pull request; the pass reads it
			// when the record holds approvals the push may have reset.
			pr := prFromRecord(repo, rec, c.NewCommit)
			pin := in
			pin.fromRecord = true
			pin.pushed = &c
			if _, err := h.reconcile(ctx, pr, pin); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Handler) lock(repo string, id int) *sync.Mutex {
	f := fnv.New32a()
	fmt.Fprintf(f, "%s#%d", repo, id)
	return &h.locks[f.Sum32()%uint32(len(h.locks))]
}

// engineFor returns the compiled engine of org, compiling it once per Org.
func (h *Handler) engineFor(org *roles.Org) *rules.Engine {
	if c := h.engine.Load(); c != nil && c.org == org {
		return c.e
	}
	c := &compiled{org: org, e: rules.Compile(org)}
	h.engine.Store(c)
	return c.e
}

func clonePR(p *model.PullRequest) model.PullRequest {
	c := *p
	c.Reviewers = append([]model.Actor(nil), p.Reviewers...)
	c.Participants = append([]model.Participant(nil), p.Participants...)
	if p.ClosedBy != nil {
		a := *p.ClosedBy
		c.ClosedBy = &a
	}
	return c
}

// permanentError is an event that can never be processed (dead-lettered at
// once by the inbox).
type permanentError struct{ msg string }

func (e *permanentError) Error() string   { return e.msg }
func (e *permanentError) Permanent() bool { return true }

func permanentf(format string, args ...any) error {
	return &permanentError{msg: fmt.Sprintf(format, args...)}
}
