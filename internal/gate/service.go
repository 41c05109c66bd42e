package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// Store is what the gate keeps: its gates, the decisions and findings it
// records, and rolekeeper's own record of merge commits.
type Store interface {
	store.Gates
	PRsByCommit(ctx context.Context, repo, commit string) ([]store.PRRecord, error)
	GetPR(ctx context.Context, repo string, id int) (*store.PRRecord, error)
	AddFinding(ctx context.Context, f model.Finding) (bool, error)
	SaveDecision(ctx context.Context, d *store.DecisionRecord) (int64, error)
}

// FollowUps opens the Jira follow-up of a break-glass (optional).
type FollowUps interface {
	CreateFollowUp(ctx context.Context, project, summary, description, assigneeAccountID string) (string, error)
}

// Options configure a Service.
type Options struct {
	Host      Host
	Store     Store
	Roles     *roles.Current
	FollowUps FollowUps // nil: no Jira follow-ups
	PublicURL string
	DryRun    bool          // decide and record, write nothing upstream
	TTL       time.Duration // a pending gate expires after this (default 24h)
	// MinRefresh is how often polling (GET) re-reads Bitbucket for one gate
	// at most (default 30s): webhooks move a gate at once, polling is the
	// net for missed ones, and every re-read costs two calls per pull
	// request from an hourly budget.
	MinRefresh      time.Duration
	MaxCommentPages int // pages of 100 comments read per pull request (default 10)
	Now             func() time.Time
	Logger          *zap.Logger
	Registerer      prometheus.Registerer
}

// Service runs deployment gates.
type Service struct {
	o   Options
	log *zap.Logger

	mu          sync.Mutex
	lastRefresh map[string]time.Time // gate id → last re-read, for pending gates
	resolved    map[string]string    // "repo@short hash" → full hash

	created prometheus.Counter
	decided *prometheus.CounterVec
}

// Errors the API maps to 4xx answers.
var (
	ErrBadRequest         = errors.New("bad request")
	ErrUnknownRepository  = errors.New("unknown repository")
	ErrUnknownEnvironment = errors.New("unknown environment")
	ErrForbidden          = errors.New("forbidden")
	ErrDecided            = errors.New("already decided")
)

// UpstreamError is a Bitbucket failure while reading a gate's facts.
type UpstreamError struct{ Err error }

func (e *UpstreamError) Error() string { return "bitbucket: " + e.Err.Error() }
func (e *UpstreamError) Unwrap() error { return e.Err }

// Temporary reports whether trying again may help (it usually does).
func (e *UpstreamError) Temporary() bool { return !upstream.IsPermanent(e.Err) }

var (
	envRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	repoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`)
)

// New returns a Service.
func New(o Options) *Service {
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = 30 * time.Second
	}
	if o.MaxCommentPages <= 0 {
		o.MaxCommentPages = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Service{o: o, log: o.Logger, lastRefresh: map[string]time.Time{}, resolved: map[string]string{},
		created: prometheus.NewCounter(prometheus.CounterOpts{Name: "rolekeeper_gates_created_total",
			Help: "Deployment gates created."}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rolekeeper_gates_decided_total",
			Help: "Deployment gates decided, by environment, state (approved, rejected, expired) and whether the glass was broken."},
			[]string{"environment", "state", "break_glass"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.created, s.decided)
	}
	return s
}

// AskRequest is a pipeline's request for a gate.
type AskRequest struct {
	Repository   string `json:"repository"`
	Commit       string `json:"commit"`
	Environment  string `json:"environment"`
	PipelineUUID string `json:"pipeline_uuid,omitempty"`
	BuildNumber  int    `json:"build_number,omitempty"`
}

// Normalize checks the request's form and returns it in canonical form:
// repository, commit and environment in lower case.
func (r AskRequest) Normalize() (AskRequest, error) {
	r.Repository = strings.ToLower(strings.TrimSpace(r.Repository))
	r.Commit = strings.ToLower(strings.TrimSpace(r.Commit))
	r.Environment = strings.TrimSpace(r.Environment)
	r.PipelineUUID = strings.TrimSpace(r.PipelineUUID)
	var bad []string
	if !repoRE.MatchString(r.Repository) {
		bad = append(bad, fmt.Sprintf("repository %q is not workspace/slug", r.Repository))
	}
	if !model.IsFullCommit(r.Commit) {
		// A short hash names whichever commit shares its prefix: a gate is
		// for one commit, so only the full hash (BITBUCKET_COMMIT) will do.
		bad = append(bad, fmt.Sprintf("commit %q is not a full commit hash of 40 hexadecimal characters (BITBUCKET_COMMIT is one)", truncate(r.Commit, 50)))
	}
	if !envRE.MatchString(r.Environment) {
		bad = append(bad, fmt.Sprintf("environment %q is not 1 to 64 letters, digits, '.', '_' or '-'", r.Environment))
	}
	if len(r.PipelineUUID) > 128 || strings.ContainsFunc(r.PipelineUUID, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		bad = append(bad, "pipeline_uuid is longer than 128 characters or has control characters")
	}
	if r.BuildNumber < 0 {
		bad = append(bad, "build_number is negative")
	}
	if len(bad) > 0 {
		return r, fmt.Errorf("%s: %w", strings.Join(bad, "; "), ErrBadRequest)
	}
	r.Environment = strings.ToLower(r.Environment)
	return r, nil
}

// details is what a gate keeps in store.Gate.Data.
type details struct {
	Dropped       []int              `json:"dropped,omitempty"`
	Replied       []string           `json:"replied,omitempty"`
	Seen          []string           `json:"seen,omitempty"`
	Authors       []string           `json:"authors,omitempty"`         // authors of the pull requests that carry the commit, and of their commits
	Authorship    []rules.Authorship `json:"authorship,omitempty"`      // what each author authored
	Via           string             `json:"via,omitempty"`             // break-glass: ViaComment or ViaAdminToken
	Named         string             `json:"named,omitempty"`           // break-glass via the admin token: the account named
	StatusPosted  string             `json:"status_posted,omitempty"`   // the phase whose status Bitbucket shows
	DecisionID    int64              `json:"decision_id,omitempty"`     // the latest decision record
	FollowUpError string             `json:"follow_up_error,omitempty"` // why no follow-up was opened
	History       []Entry            `json:"history"`
	// Commits: per pull request (by id), its commits as last read; read
	// again when its head moves.
	Commits map[string]prCommits `json:"commits,omitempty"`

	// DecisionPublicID is the public id of DecisionID: its page's link.
	DecisionPublicID string `json:"decision_public_id,omitempty"`
}

func readDetails(g *store.Gate) details {
	var d details
	if len(g.Data) > 0 {
		_ = json.Unmarshal(g.Data, &d) // written only by writeDetails
	}
	return d
}

func writeDetails(g *store.Gate, d details) {
	if d.History == nil {
		d.History = []Entry{}
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	g.Data = b
}

// stateOf is the machine's view of a stored gate.
func stateOf(g *store.Gate) State {
	d := readDetails(g)
	return State{Phase: g.State, Environment: g.Environment, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt,
		DecidedBy: g.DecidedBy, DecidedAt: g.DecidedAt, Reason: g.Reason, BreakGlass: g.BreakGlass, Via: d.Via, Named: d.Named,
		PRs: slices.Clone(g.PRs), Dropped: d.Dropped, Notified: g.Notified, Replied: d.Replied, Seen: d.Seen, History: d.History}
}

// authorshipOf is what a gate knows of who authored its change (gates
// stored before authorship was kept have the account ids only).
func authorshipOf(d details) []rules.Authorship {
	if len(d.Authorship) > 0 || len(d.Authors) == 0 {
		return slices.Clone(d.Authorship)
	}
	var out []rules.Authorship
	for _, a := range d.Authors {
		out = append(out, rules.Authorship{AccountID: a, What: "authored a pull request that brought this commit"})
	}
	return out
}

// withState returns a copy of g holding st, the policy's approvers and the
// authors.
func withState(g *store.Gate, st State, p Policy) *store.Gate {
	ng := *g
	ng.State, ng.DecidedBy, ng.DecidedAt, ng.Reason, ng.BreakGlass = st.Phase, st.DecidedBy, st.DecidedAt, st.Reason, st.BreakGlass
	ng.PRs, ng.Notified = st.PRs, st.Notified
	ng.Team, ng.RuleID = p.Deploy.Team, p.Deploy.RuleID
	ng.Approvers, ng.Excluded = nil, nil
	for _, e := range p.Deploy.Eligible {
		ng.Approvers = append(ng.Approvers, e.AccountID)
	}
	for _, e := range p.Deploy.Refused {
		if e.AccountID != "" {
			ng.Excluded = append(ng.Excluded, e.AccountID)
		}
	}
	d := readDetails(g)
	d.Dropped, d.Replied, d.Seen, d.History, d.Via, d.Named = st.Dropped, st.Replied, st.Seen, st.History, st.Via, st.Named
	d.Authors, d.Authorship = p.Deploy.Authors, p.Deploy.Authorship
	writeDetails(&ng, d)
	return &ng
}

func sameGate(a, b *store.Gate) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (s *Service) now() time.Time { return s.o.Now().UTC().Truncate(time.Millisecond) }

func dedupeBase(r AskRequest) string { return r.Repository + "|" + r.Commit + "|" + r.Environment }

// latest finds the newest gate for a dedupe base and the generation number
// a new one would take: a rejected or expired gate is followed by a new one
// with the next number.
func (s *Service) latest(ctx context.Context, base string) (*store.Gate, int, error) {
	var last *store.Gate
	for n := 1; ; n++ {
		g, err := s.o.Store.GetGateByKey(ctx, base+"#"+strconv.Itoa(n))
		if errors.Is(err, store.ErrNotFound) {
			return last, n, nil
		}
		if err != nil {
			return nil, 0, err
		}
		last = g
	}
}

// Ask returns the gate for the request: the existing one while it is
// pending or approved (asking twice gives the same gate), or a new one when
// there is none or the last was rejected or expired. created says which.
// Nothing is stored, and Bitbucket is not called, for a request that is
// malformed, names a repository no team owns, or an environment no
// deploy-approval rule of that team lists (a misspelt environment must not
// pass as an ungated one).
func (s *Service) Ask(ctx context.Context, req AskRequest) (*store.Gate, bool, error) {
	req, err := req.Normalize()
	if err != nil {
		return nil, false, err
	}
	org := s.o.Roles.Get()
	pol, err := rules.DeployPolicy(org, req.Repository, req.Environment, nil, s.now())
	if err != nil {
		if errors.Is(err, rules.ErrUnknownRepository) {
			return nil, false, fmt.Errorf("repository %s is owned by no team in roles.yaml: %w", req.Repository, ErrUnknownRepository)
		}
		return nil, false, err
	}
	if !pol.Gated {
		gated := rules.Environments(org, pol.Team)
		list := "none"
		if len(gated) > 0 {
			list = strings.Join(gated, ", ")
		}
		return nil, false, fmt.Errorf("environment %s is listed by no deploy-approval rule of team %s (gated environments: %s): %w",
			req.Environment, pol.Team, list, ErrUnknownEnvironment)
	}
	base := dedupeBase(req)
	for attempt := 0; attempt < 5; attempt++ {
		last, next, err := s.latest(ctx, base)
		if err != nil {
			return nil, false, err
		}
		if last != nil && last.State == store.GatePending {
			if g, err := s.refresh(ctx, last, nil, nil); err == nil {
				last = g
			} else {
				s.log.Warn("re-read gate on ask", zap.String("gate", last.ID), zap.String("repo", last.Repository), zap.Error(err))
			}
		}
		if last != nil && (last.State == store.GatePending || last.State == store.GateApproved) {
			return last, false, nil
		}
		g, err := s.create(ctx, req, base+"#"+strconv.Itoa(next))
		if errors.Is(err, store.ErrConflict) {
			continue // another request created it at the same moment: use theirs
		}
		if err != nil {
			return nil, false, err
		}
		return g, true, nil
	}
	return nil, false, errors.New("gate: ask lost too many races")
}

func (s *Service) create(ctx context.Context, req AskRequest, key string) (*store.Gate, error) {
	now := s.now()
	g := &store.Gate{ID: newID(), DedupeKey: key, Repository: req.Repository, Commit: req.Commit, Environment: req.Environment,
		State: store.GatePending, PipelineUUID: req.PipelineUUID, BuildNumber: req.BuildNumber, CreatedAt: now, ExpiresAt: now.Add(s.o.TTL)}
	pol := s.policy(s.o.Roles.Get(), g, nil, now)
	what := fmt.Sprintf("%s of %s@%s", req.Environment, req.Repository, short(req.Commit))
	if req.BuildNumber > 0 {
		what += fmt.Sprintf(" by build #%d", req.BuildNumber)
	}
	st, effs := Apply(stateOf(g), Input{Kind: InAsked, At: now, Text: what + ": " + pol.Deploy.Reason}, pol)
	g = withState(g, st, pol)
	if err := s.o.Store.CreateGate(ctx, g); err != nil {
		return nil, err
	}
	s.created.Inc()
	s.log.Info("gate asked", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.String("environment", g.Environment),
		zap.String("commit", g.Commit), zap.Bool("gated", pol.Deploy.Gated))
	ng, err := s.refresh(ctx, g, effs, nil)
	if err != nil {
		// The gate is stored and pending; polling or a webhook retries.
		s.log.Warn("first read of a new gate", zap.String("gate", g.ID), zap.String("repo", g.Repository), zap.Error(err))
		if cur, gerr := s.o.Store.GetGate(ctx, g.ID); gerr == nil {
			return cur, nil
		}
		return g, nil
	}
	return ng, nil
}

// Get returns a gate. A pending gate is first re-read from Bitbucket, at
// most once per MinRefresh, so that polling advances it even when a webhook
// was missed; a failed re-read is logged and the stored gate returned.
func (s *Service) Get(ctx context.Context, id string) (*store.Gate, error) {
	g, err := s.o.Store.GetGate(ctx, id)
	if err != nil {
		return nil, err
	}
	if g.State != store.GatePending {
		s.repairStatus(ctx, g)
		return g, nil
	}
	now := s.o.Now()
	s.mu.Lock()
	due := now.Sub(s.lastRefresh[id]) >= s.o.MinRefresh || !now.Before(g.ExpiresAt)
	s.mu.Unlock()
	if !due {
		return g, nil
	}
	ng, err := s.refresh(ctx, g, nil, nil)
	if err != nil {
		s.log.Warn("re-read gate", zap.String("gate", id), zap.String("repo", g.Repository), zap.Error(err))
		return g, nil
	}
	return ng, nil
}

// Refresh re-reads a gate's facts from Bitbucket and applies them now.
func (s *Service) Refresh(ctx context.Context, id string) (*store.Gate, error) {
	g, err := s.o.Store.GetGate(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.refresh(ctx, g, nil, nil)
}

// BreakGlass opens a pending gate through the API, with a reason, naming a
// holder of the break-glass rule's role. Only the admin token may call it (the API
// checks); nothing authenticated the named person, so the gate records that
// the admin token acted and whom it named, and every text says so. The
// normal path is the CTO's /break-glass comment, which Bitbucket
// authenticates. It is recorded, reported every week and followed up in
// Jira when Jira is configured.
func (s *Service) BreakGlass(ctx context.Context, id, by, reason string) (*store.Gate, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 2000 {
		return nil, fmt.Errorf("a break-glass needs a reason of at most 2000 characters: %w", ErrBadRequest)
	}
	org := s.o.Roles.Get()
	for attempt := 0; attempt < 5; attempt++ {
		g, err := s.o.Store.GetGate(ctx, id)
		if err != nil {
			return nil, err
		}
		// The role comes from the break-glass rule covering the gate.
		glass := rules.BreakGlassOf(org, g.Team, g.Environment)
		if glass.Role == "" {
			return nil, fmt.Errorf("no break-glass rule in roles.yaml covers %s deployments of team %s; nobody may break this glass: %w", g.Environment, g.Team, ErrForbidden)
		}
		if p := org.PersonByAccount(by); by == "" || p == nil || !slices.Contains(glass.Holders, p.AccountID) {
			return nil, fmt.Errorf("%q does not hold the %s role in roles.yaml (rule %s); only a %s may break the glass: %w", by, glass.Role, glass.RuleID, glass.Role, ErrForbidden)
		}
		if g.State != store.GatePending {
			return g, fmt.Errorf("gate %s is %s: %w", id, g.State, ErrDecided)
		}
		now := s.now()
		d := readDetails(g)
		pol := s.policy(org, g, authorshipOf(d), now)
		// Whoever holds the admin token acted; the reason says whom it
		// names, so the status, report and follow-up claim no more.
		text := "via admin token, naming " + s.name(by) + ": " + reason
		st, effs := Apply(stateOf(g), Input{Kind: InBreakGlass, At: now, Account: by, Text: text}, pol)
		ng := withState(g, st, pol)
		if err := s.o.Store.UpdateGate(ctx, ng); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		ng = s.carryOut(ctx, ng, effs, pol, []Input{{Kind: InBreakGlass, At: now, Account: by, Text: text}})
		if ng.State != store.GateApproved {
			return ng, fmt.Errorf("gate %s is %s: %w", id, ng.State, ErrDecided)
		}
		return ng, nil
	}
	return nil, errors.New("gate: break-glass lost too many races")
}

// Handle re-reads the pending gates an event may move: approvals, comments,
// pushes, merges and declines of their pull requests. The event itself is
// only a hint; what counts is read again from Bitbucket.
func (s *Service) Handle(ctx context.Context, ev *model.Event) error {
	switch ev.Kind {
	case model.EventPRApproved, model.EventPRUnapproved, model.EventPRComment, model.EventPRMerged,
		model.EventPRDeclined, model.EventPRPushed, model.EventPRUpdated:
	default:
		return nil
	}
	if ev.PullRequest == nil || ev.Repository == "" {
		return nil
	}
	gates, err := s.o.Store.ListGates(ctx, store.GateFilter{State: store.GatePending, Repository: strings.ToLower(ev.Repository)})
	if err != nil {
		return err
	}
	pr := ev.PullRequest
	// Payloads carry 12-hex hashes, which another commit may share: the
	// event names a gate's commit only once resolved to the full hash
	// (once per event, and only when a gate waits to learn its PRs).
	var brought []string
	var errs []error
	resolved := false
	for i := range gates {
		g := &gates[i]
		var hints []int
		if !slices.Contains(g.PRs, pr.ID) {
			if len(g.PRs) > 0 {
				continue
			}
			if !resolved {
				resolved = true
				for i, h := range []string{pr.MergeCommit, pr.SourceCommit} {
					stamp := ""
					if i == 1 {
						stamp = headStamp(pr)
					}
					full, err := s.full(ctx, strings.ToLower(ev.Repository), h, stamp)
					if err != nil {
						errs = append(errs, err)
					} else if full != "" {
						brought = append(brought, full)
					}
				}
			}
			if !slices.ContainsFunc(brought, func(c string) bool { return model.SameFullCommit(c, g.Commit) }) {
				continue
			}
			hints = []int{pr.ID}
		}
		if _, err := s.refresh(ctx, g, nil, hints); err != nil {
			errs = append(errs, fmt.Errorf("gate %s: %w", g.ID, err))
		}
	}
	return errors.Join(errs...)
}

// ExpireDue expires the pending gates whose time has passed (the scheduler
// calls it; polling and asking expire them too).
func (s *Service) ExpireDue(ctx context.Context) error {
	gates, err := s.o.Store.ListGates(ctx, store.GateFilter{State: store.GatePending})
	if err != nil {
		return err
	}
	now := s.o.Now()
	var errs []error
	for i := range gates {
		if now.Before(gates[i].ExpiresAt) {
			continue
		}
		if _, err := s.refresh(ctx, &gates[i], nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("gate %s: %w", gates[i].ID, err))
		}
	}
	return errors.Join(errs...)
}

// policy is the deploy-approval policy for a gate now. A repository no
// team owns any more (roles.yaml changed) leaves nobody eligible.
func (s *Service) policy(org *roles.Org, g *store.Gate, authorship []rules.Authorship, now time.Time) Policy {
	dr, err := rules.DeployPolicyOf(org, g.Repository, g.Environment, authorship, now)
	if err != nil {
		dr = rules.DeployResult{Gated: true, Environment: g.Environment, Team: g.Team, RuleID: g.RuleID, Authorship: authorship,
			InvalidateOnPush: true, Reason: err.Error() + ": nobody can approve; only a break-glass opens it"}
		for _, a := range authorship {
			dr.Authors = append(dr.Authors, a.AccountID)
		}
	}
	var p Policy
	p.Deploy = dr
	team := dr.Team
	if team == "" {
		team = g.Team
	}
	p.Glass = rules.BreakGlassOf(org, team, g.Environment)
	p.BreakGlass = p.Glass.Holders
	return p
}

// refresh re-reads a pending gate's facts, applies them, stores the result
// and carries out the effects (carry: effects of the caller to carry out
// with these). hints are pull requests to check when the gate knows none.
func (s *Service) refresh(ctx context.Context, g *store.Gate, carry []Effect, hints []int) (*store.Gate, error) {
	if g.State != store.GatePending {
		if len(carry) > 0 { // decided as it was created (an environment no rule gates)
			return s.carryOut(ctx, g, carry, s.policy(s.o.Roles.Get(), g, authorshipOf(readDetails(g)), s.now()), nil), nil
		}
		s.repairStatus(ctx, g)
		return g, nil
	}
	f, ferr := s.read(ctx, g, hints)
	if ferr != nil {
		if len(carry) > 0 { // the gate was just created: record it and show it waits
			s.carryOut(ctx, g, carry, f.policy, nil)
		}
		return g, ferr
	}
	for attempt := 0; attempt < 5; attempt++ {
		st := stateOf(g)
		effs := slices.Clone(carry)
		inputs := f.inputs(st)
		for _, in := range inputs {
			var e []Effect
			st, e = Apply(st, in, f.policy)
			effs = append(effs, e...)
		}
		ng := withState(g, st, f.policy)
		if len(f.commits) > 0 {
			d := readDetails(ng)
			if d.Commits == nil {
				d.Commits = map[string]prCommits{}
			}
			for id, c := range f.commits {
				d.Commits[strconv.Itoa(id)] = c
			}
			writeDetails(ng, d)
		}
		s.touch(g.ID, st.Phase)
		if len(effs) == 0 && sameGate(g, ng) {
			s.repairStatus(ctx, g)
			return g, nil
		}
		err := s.o.Store.UpdateGate(ctx, ng)
		if errors.Is(err, store.ErrConflict) {
			if g, err = s.o.Store.GetGate(ctx, g.ID); err != nil {
				return nil, err
			}
			if g.State != store.GatePending {
				return s.carryOut(ctx, g, carry, f.policy, nil), nil
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return s.carryOut(ctx, ng, effs, f.policy, inputs), nil
	}
	return nil, errors.New("gate: refresh lost too many races")
}

// touch notes a re-read for the polling rate limit.
func (s *Service) touch(id, phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if phase == store.GatePending {
		s.lastRefresh[id] = s.o.Now()
	} else {
		delete(s.lastRefresh, id)
	}
}

// inputs turns the facts into the machine's inputs for state st: pull
// requests found or dropped, then comments in the order they were made,
// then approvals present and withdrawn, then the clock.
func (f facts) inputs(st State) []Input {
	var out []Input
	if len(f.found) > 0 {
		out = append(out, Input{Kind: InPullRequests, At: f.now, PRs: f.found})
	}
	ids := make([]int, 0, len(f.moved)+len(f.prs))
	for id := range f.moved {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		out = append(out, Input{Kind: InCommitMoved, At: f.now, PR: id, Text: f.moved[id]})
	}
	ids = ids[:0]
	for id := range f.prs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var comments []Input
	for _, id := range ids {
		for _, c := range f.comments[id] {
			if len(ParseCommands(c.Body)) > 0 {
				comments = append(comments, Input{Kind: InComment, At: c.CreatedAt, Account: c.Author.AccountID, PR: id, CommentID: c.ID, Text: c.Body})
			}
		}
	}
	sort.SliceStable(comments, func(i, j int) bool { return comments[i].At.Before(comments[j].At) })
	out = append(out, comments...)
	present := map[string]bool{}
	for _, id := range ids {
		var approvers []string
		for _, a := range f.prs[id].Approvals() {
			if a.State == model.ReviewApproved && a.AccountID != "" {
				approvers = append(approvers, a.AccountID)
			}
		}
		sort.Strings(approvers)
		for _, a := range approvers {
			present[strconv.Itoa(id)+":"+a] = true
			out = append(out, Input{Kind: InApproval, At: f.now, Account: a, PR: id,
				ApprovedAt: f.approvedAt[id][a], PushedAt: f.pushedAt[id], PushUnknown: f.pushUnknown[id]})
		}
	}
	for _, key := range st.Seen {
		pr, acc, _ := strings.Cut(key, ":")
		n, _ := strconv.Atoi(pr)
		if _, read := f.prs[n]; read && !present[key] {
			out = append(out, Input{Kind: InUnapproval, At: f.now, Account: acc, PR: n})
		}
	}
	return append(out, Input{Kind: InTick, At: f.now})
}

func newID() string {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "g_" + hex.EncodeToString(b[:])
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
