// Package audit is the safety net behind the webhooks: a scheduled pass
// re-reads what changed upstream since the last stored cursor, runs it
// through the same engine and adapters as a webhook would (repairing missed
// reviewers and statuses), and records what slipped through: merges without
// the required approvals, deployments to gated environments without an
// approved gate, and (through the Jira workflow) epics without test plans
// and sprint issues without points. It is incremental and budgeted: an
// unchanged pull request costs no API call, and a pass that reaches its
// hourly budget stops and resumes from its cursors next time.
package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Upstream is what the audit reads from Bitbucket.
type Upstream interface {
	// UpdatedPullRequests lists the repository's pull requests of every
	// state updated at or after since (one paginated list call).
	UpdatedPullRequests(ctx context.Context, repo string, since time.Time) ([]model.PullRequest, error)
	// PullRequest reads one pull request in full (participants included).
	PullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error)
	// Deployments lists the repository's recent deployments.
	Deployments(ctx context.Context, repo string) ([]model.Deployment, error)
	// Calls counts the upstream requests made so far (all callers).
	Calls() int64
}

// Reconciler carries a pull request's current state through the engine,
// exactly as the webhook path does.
type Reconciler interface {
	Reconcile(ctx context.Context, pr model.PullRequest, trigger string) error
}

// IssueAuditor audits Jira (epics without test plans, releases whose plans
// are not done, sprint issues without points or user story).
type IssueAuditor interface {
	AuditIssues(ctx context.Context) error
}

// Store is what the audit keeps and reads.
type Store interface {
	store.KV
	GetPR(ctx context.Context, repo string, id int) (*store.PRRecord, error)
	ListGates(ctx context.Context, f store.GateFilter) ([]store.Gate, error)
	AddFinding(ctx context.Context, f model.Finding) (bool, error)
}

// Options configure an Auditor.
type Options struct {
	Upstream     Upstream     // nil: Bitbucket not configured
	Reconciler   Reconciler   // nil: nothing repaired
	Jira         IssueAuditor // nil: Jira not configured
	Store        Store
	Roles        *roles.Current
	HourlyBudget int           // upstream calls per rolling clock hour (default 500)
	FirstLook    time.Duration // how far back a repository with no cursor is read (default 7 days)
	Overlap      time.Duration // re-read this much before the cursor (clock skew; default 2 min)
	Now          func() time.Time
	Logger       *zap.Logger
	Registerer   prometheus.Registerer
}

// Progress is reported as the pass advances.
type Progress struct {
	ReposDone, ReposTotal int
	Repo                  string
	PRsChecked, PRsSynced int
	Calls                 int64
	Jira                  string // "", "running", "done", "error: …"
}

// Result summarises a pass.
type Result struct {
	Repos        int
	PRsListed    int
	PRsUnchanged int
	PRsSynced    int
	Deployments  int
	Findings     int
	Calls        int64
	BudgetLeft   int
	Stopped      string // why the pass stopped early ("" when it finished)
}

// Auditor runs audit passes.
type Auditor struct {
	o     Options
	log   *zap.Logger
	calls *prometheus.CounterVec
	runs  *prometheus.CounterVec
	left  prometheus.Gauge
}

// ErrBudget says the hourly budget ran out; the pass resumes next time.
var ErrBudget = errors.New("hourly API budget spent")

// New returns an Auditor.
func New(o Options) *Auditor {
	if o.HourlyBudget <= 0 {
		o.HourlyBudget = 500
	}
	if o.FirstLook <= 0 {
		o.FirstLook = 7 * 24 * time.Hour
	}
	if o.Overlap <= 0 {
		o.Overlap = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	a := &Auditor{o: o, log: o.Logger,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rolekeeper_audit_upstream_calls_total",
			Help: "Upstream API calls spent by audit passes."}, []string{"service"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rolekeeper_audit_passes_total",
			Help: "Audit passes by result (complete, budget, error)."}, []string{"result"}),
		left: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rolekeeper_audit_budget_remaining",
			Help: "Bitbucket calls left in this hour's audit budget."}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(a.calls, a.runs, a.left)
	}
	return a
}

// Run performs one pass. Findings are data, not failure: the error is only
// for a pass that could not audit.
func (a *Auditor) Run(ctx context.Context, progress func(Progress)) (Result, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	org := a.o.Roles.Get()
	var res Result
	var p Progress
	if a.o.Upstream != nil {
		err := a.bitbucket(ctx, org, &res, &p, progress)
		switch {
		case errors.Is(err, ErrBudget):
			res.Stopped = "hourly budget of " + strconv.Itoa(a.o.HourlyBudget) + " calls spent; resuming next pass"
			a.runs.WithLabelValues("budget").Inc()
		case err != nil:
			a.runs.WithLabelValues("error").Inc()
			return res, err
		}
	}
	if a.o.Jira != nil {
		p.Jira = "running"
		progress(p)
		if err := a.o.Jira.AuditIssues(ctx); err != nil {
			p.Jira = "error: " + err.Error()
			progress(p)
			a.runs.WithLabelValues("error").Inc()
			return res, fmt.Errorf("jira audit: %w", err)
		}
		p.Jira = "done"
		progress(p)
	}
	if res.Stopped == "" {
		a.runs.WithLabelValues("complete").Inc()
	}
	a.log.Info("audit pass", zap.Int("repos", res.Repos), zap.Int("prs_listed", res.PRsListed),
		zap.Int("prs_unchanged", res.PRsUnchanged), zap.Int("prs_synced", res.PRsSynced),
		zap.Int("deployments", res.Deployments), zap.Int("findings", res.Findings),
		zap.Int64("calls", res.Calls), zap.Int("budget_left", res.BudgetLeft), zap.String("stopped", res.Stopped))
	return res, nil
}

// budget tracks calls against the hourly allowance, persisted per clock
// hour so restarts and several passes in one hour share it.
type budget struct {
	a     *Auditor
	key   string
	used  int
	start int64 // Upstream.Calls() when the pass began
}

func (a *Auditor) openBudget(ctx context.Context) (*budget, error) {
	key := "audit:budget:bitbucket:" + a.o.Now().UTC().Format("2006010215")
	b := &budget{a: a, key: key, start: a.o.Upstream.Calls()}
	v, ok, err := a.o.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if ok {
		b.used, _ = strconv.Atoi(v)
	}
	return b, nil
}

func (b *budget) spent() int64 { return b.a.o.Upstream.Calls() - b.start }

func (b *budget) left() int { return b.a.o.HourlyBudget - b.used - int(b.spent()) }

// need reports ErrBudget unless n more calls fit.
func (b *budget) need(n int) error {
	if b.left() < n {
		return ErrBudget
	}
	return nil
}

func (b *budget) save(ctx context.Context) error {
	return b.a.o.Store.Set(ctx, b.key, strconv.Itoa(b.used+int(b.spent())))
}

func (a *Auditor) bitbucket(ctx context.Context, org *roles.Org, res *Result, p *Progress, progress func(Progress)) (err error) {
	b, err := a.openBudget(ctx)
	if err != nil {
		return err
	}
	defer func() {
		res.Calls = b.spent()
		res.BudgetLeft = b.left()
		a.calls.WithLabelValues("bitbucket").Add(float64(b.spent()))
		a.left.Set(float64(b.left()))
		if serr := b.save(ctx); serr != nil && err == nil {
			err = serr
		}
	}()
	repos, err := a.repoOrder(ctx, org)
	if err != nil {
		return err
	}
	p.ReposTotal = len(repos)
	progress(*p)
	for _, repo := range repos {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.Repo = repo
		if err := a.pullRequests(ctx, repo, b, res, p, progress); err != nil {
			return err
		}
		if err := a.deployments(ctx, org, repo, b, res); err != nil {
			return err
		}
		res.Repos++
		p.ReposDone++
		p.Calls = b.spent()
		progress(*p)
	}
	return nil
}

// repoOrder puts the repositories audited longest ago first, so a pass cut
// short by the budget does not starve the same repositories every hour.
func (a *Auditor) repoOrder(ctx context.Context, org *roles.Org) ([]string, error) {
	repos := org.Repositories()
	last := make(map[string]string, len(repos))
	for _, r := range repos {
		v, _, err := a.o.Store.Get(ctx, "audit:visited:"+r)
		if err != nil {
			return nil, err
		}
		last[r] = v
	}
	sort.SliceStable(repos, func(i, j int) bool { return last[repos[i]] < last[repos[j]] })
	return repos, nil
}

func (a *Auditor) cursor(ctx context.Context, key string) (time.Time, error) {
	v, ok, err := a.o.Store.Get(ctx, key)
	if err != nil || !ok {
		return a.o.Now().Add(-a.o.FirstLook), err
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return a.o.Now().Add(-a.o.FirstLook), nil
	}
	return t, nil
}

func (a *Auditor) pullRequests(ctx context.Context, repo string, b *budget, res *Result, p *Progress, progress func(Progress)) error {
	key := "audit:cursor:pr:" + repo
	since, err := a.cursor(ctx, key)
	if err != nil {
		return err
	}
	if err := b.need(1); err != nil {
		return err
	}
	prs, err := a.o.Upstream.UpdatedPullRequests(ctx, repo, since.Add(-a.o.Overlap))
	if err != nil {
		return fmt.Errorf("list pull requests of %s: %w", repo, err)
	}
	sort.SliceStable(prs, func(i, j int) bool { return prs[i].UpdatedAt.Before(prs[j].UpdatedAt) })
	res.PRsListed += len(prs)
	cursor := since
	for _, pr := range prs {
		p.PRsChecked++
		if a.unchanged(ctx, repo, pr) {
			res.PRsUnchanged++
			cursor = later(cursor, pr.UpdatedAt)
			continue
		}
		// Reading the PR in full and repairing it costs a few calls; stop
		// before the budget would be overrun, keeping the cursor here.
		if err := b.need(4); err != nil {
			a.saveCursor(ctx, key, cursor)
			return err
		}
		full, err := a.o.Upstream.PullRequest(ctx, repo, pr.ID)
		if err != nil {
			a.saveCursor(ctx, key, cursor)
			return fmt.Errorf("read %s#%d: %w", repo, pr.ID, err)
		}
		if a.o.Reconciler != nil {
			if err := a.o.Reconciler.Reconcile(ctx, *full, "audit"); err != nil {
				a.saveCursor(ctx, key, cursor)
				return fmt.Errorf("reconcile %s#%d: %w", repo, pr.ID, err)
			}
		}
		res.PRsSynced++
		p.PRsSynced++
		cursor = later(cursor, pr.UpdatedAt)
		progress(*p)
	}
	if len(prs) == 0 {
		cursor = later(cursor, a.o.Now().Add(-a.o.Overlap))
	}
	a.saveCursor(ctx, key, cursor)
	return a.o.Store.Set(ctx, "audit:visited:"+repo, a.o.Now().UTC().Format(time.RFC3339Nano))
}

// unchanged reports whether rolekeeper already saw this exact state of the
// pull request (same update time, state and head): then it costs nothing.
func (a *Auditor) unchanged(ctx context.Context, repo string, pr model.PullRequest) bool {
	rec, err := a.o.Store.GetPR(ctx, repo, pr.ID)
	if err != nil || rec == nil {
		return false
	}
	// The store keeps milliseconds; Bitbucket sends microseconds. prflow
	// moves the record's time only once a state was fully carried out, so
	// a pull request whose status it got wrong or could not post is synced.
	return rec.UpdatedAt.Truncate(time.Millisecond).Equal(pr.UpdatedAt.Truncate(time.Millisecond)) &&
		rec.State == pr.State && model.SameCommit(rec.SourceCommit, pr.SourceCommit) // the same pull request's head
}

func (a *Auditor) saveCursor(ctx context.Context, key string, t time.Time) {
	if err := a.o.Store.Set(ctx, key, t.UTC().Format(time.RFC3339Nano)); err != nil {
		a.log.Warn("save audit cursor", zap.String("key", key), zap.Error(err))
	}
}

func (a *Auditor) deployments(ctx context.Context, org *roles.Org, repo string, b *budget, res *Result) error {
	team := org.TeamForRepo(repo)
	if team == nil {
		return nil
	}
	if !rules.Gated(org, team.ID) {
		return nil
	}
	key := "audit:cursor:deploy:" + repo
	since, err := a.cursor(ctx, key)
	if err != nil {
		return err
	}
	if err := b.need(2); err != nil {
		return err
	}
	deps, err := a.o.Upstream.Deployments(ctx, repo)
	if err != nil {
		return fmt.Errorf("list deployments of %s: %w", repo, err)
	}
	var gates []store.Gate
	cursor := since
	for _, d := range deps {
		if d.At.IsZero() || !d.At.After(since) {
			continue
		}
		rule := rules.DeployRule(org, team.ID, d.Environment)
		if rule == nil || !rules.Deployed(d) {
			continue
		}
		if gates == nil {
			if gates, err = a.o.Store.ListGates(ctx, store.GateFilter{Repository: repo}); err != nil {
				return err
			}
		}
		res.Deployments++
		var opened *rules.OpenedBy
		if g := openedGate(gates, d); g != nil {
			opened = &rules.OpenedBy{Gate: g.ID, By: g.DecidedBy, BreakGlass: g.BreakGlass}
		}
		f := rules.DeployFinding(org, team.ID, rule, repo, d, opened)
		added, err := a.o.Store.AddFinding(ctx, f)
		if err != nil {
			return err
		}
		if added {
			res.Findings++
		}
		cursor = later(cursor, d.At)
	}
	a.saveCursor(ctx, key, cursor)
	return nil
}

// openedGate finds an approved (or break-glass) gate for the deployment's
// commit and environment. Gates hold full hashes; a deployment's commit
// must be the same full hash (a 12-hex twin is another commit).
func openedGate(gates []store.Gate, d model.Deployment) *store.Gate {
	for i := range gates {
		g := &gates[i]
		if g.State == store.GateApproved && strings.EqualFold(g.Environment, d.Environment) && model.SameFullCommit(g.Commit, d.Commit) {
			return g
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
