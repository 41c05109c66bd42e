// Package jiraflow applies the Jira rules (test-plan, design-review,
// story-points) to Jira events and in the scheduled audit: it re-reads the
// issue from Jira (deliveries may be late, duplicated or out of order),
// evaluates it with rules.EvaluateIssue, creates the task or comment the
// rules ask for exactly once, and records findings and decisions.
package jiraflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

// Client is what the flow needs from Jira; *jira.Client satisfies it.
type Client interface {
	Discover(ctx context.Context, project string) (jira.ProjectMeta, error)
	GetIssue(ctx context.Context, key string) (*model.Issue, error)
	Search(ctx context.Context, jql string, fields []string, maxPages int) ([]model.Issue, error)
	CreateIssue(ctx context.Context, req jira.CreateIssueRequest) (string, error)
	LinkIssues(ctx context.Context, linkType, inwardKey, outwardKey string) error
	AddComment(ctx context.Context, key, body string) (string, error)
	ListComments(ctx context.Context, key string) ([]model.Comment, error)
	ProjectVersions(ctx context.Context, project string) ([]model.Version, error)
	BrowseURL(key string) string
}

// Store is the part of the store the flow uses.
type Store interface {
	store.KV
	store.Findings
	store.Decisions
}

// Options configure a Handler.
type Options struct {
	Client    Client
	Store     Store
	Roles     *roles.Current
	PublicURL string // named in the tasks rolekeeper creates
	// DryRun decides and records everything (decisions, findings) and
	// changes nothing in Jira.
	DryRun     bool
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// LinkType links an issue to its task where the project has no
	// sub-task type (default "Relates", present on every Cloud site).
	LinkType string
	// Budget, when set, is asked before each step of the audit with the
	// upstream calls it may spend; false stops the audit there.
	Budget func(calls int) bool
	// ReleaseWindow is how far back the audit looks for released
	// versions (default 14 days).
	ReleaseWindow time.Duration
}

// Handler runs the Jira rules. It is safe for concurrent use.
type Handler struct {
	client    Client
	store     Store
	roles     *roles.Current
	publicURL string
	dryRun    bool
	log       *zap.Logger
	now       func() time.Time
	linkType  string
	budget    func(int) bool
	window    time.Duration
	actions   *prometheus.CounterVec

	mu       sync.Mutex
	projects map[string]*projectState
}

// projectState is what discovery found for a project, and its problems.
type projectState struct {
	meta     jira.ProjectMeta
	ok       bool
	err      error
	tried    time.Time
	problems []string
	logged   string
}

// Idempotency marks kept in the store's KV.
const (
	markTestPlan     = "jira:testplan:"     // + KEY = created key
	markDesignReview = "jira:designreview:" // + KEY = created key
	markStoryPoints  = "jira:storypoints:"  // + KEY = comment id
	markTask         = "jira:task:"         // + kind:KEY = created key (kinds of the registry)
	markFinding      = "jira:comment:"      // + finding key (kind:KEY) = comment id (kinds of the registry)
	markReleased     = "jira:released:"     // + versionID:EPIC = comment id
	pendingPrefix    = "pending:"           // value while a worker creates
	// maybePrefix is the value after a create that may have happened (a
	// POST answered 5xx or cut off): the next attempt looks before it
	// creates again.
	maybePrefix = "maybe:"
)

const (
	// staleAfter is when a pending mark left by a worker that died is
	// taken over.
	staleAfter = 10 * time.Minute
	// rediscoverAfter spaces discovery attempts after a failure.
	rediscoverAfter = time.Minute
)

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LinkType == "" {
		opts.LinkType = "Relates"
	}
	if opts.ReleaseWindow <= 0 {
		opts.ReleaseWindow = 14 * 24 * time.Hour
	}
	h := &Handler{
		client: opts.Client, store: opts.Store, roles: opts.Roles, publicURL: strings.TrimRight(opts.PublicURL, "/"),
		dryRun: opts.DryRun, log: opts.Logger, now: opts.Now, linkType: opts.LinkType, budget: opts.Budget,
		window: opts.ReleaseWindow, projects: map[string]*projectState{},
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_jira_actions_total",
			Help: "Actions of the Jira rules, by rule kind, action (task, link, comment, finding) and outcome (done, dry_run, error).",
		}, []string{"rule", "action", "outcome"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(h.actions); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				h.actions = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return h
}

// trigger is why the flow runs.
type trigger struct {
	kind     string // event kind or "audit"
	delivery string
}

// Handle applies the Jira rules to an event. Events of other sources, of
// projects no team owns, or changing nothing the rules read cost no call.
// Errors from Jira keep Temporary/Permanent for the inbox.
func (h *Handler) Handle(ctx context.Context, ev *model.Event) error {
	if ev == nil || ev.Source != model.SourceJira {
		return nil
	}
	org := h.roles.Get()
	if org == nil {
		return nil
	}
	trig := trigger{kind: string(ev.Kind), delivery: ev.DeliveryID}
	switch ev.Kind {
	case model.EventIssueCreated, model.EventIssueUpdated:
		if ev.Issue == nil || ev.Issue.Key == "" {
			return nil
		}
		project := ev.Issue.Project
		if project == "" {
			project = jira.ProjectOfKey(ev.Issue.Key)
		}
		team := org.TeamForProject(project)
		if team == nil {
			h.log.Debug("jira event of a project no team owns", zap.String("issue", ev.Issue.Key), zap.String("event", ev.Key))
			return nil
		}
		if len(rules.JiraRules(org, team.ID)) == 0 || ev.Issue.Subtask {
			return nil
		}
		if ev.Kind == model.EventIssueUpdated && !h.relevant(project, ev.Changelog) {
			return nil
		}
		return h.processIssue(ctx, org, project, ev.Issue.Key, trig)
	case model.EventVersionReleased:
		if ev.Version == nil {
			return nil
		}
		return h.processRelease(ctx, org, *ev.Version, trig)
	case model.EventSprintChanged:
		if ev.Sprint == nil {
			return nil
		}
		return h.processSprint(ctx, org, *ev.Sprint, trig)
	}
	return nil
}

// relevant reads the changelog (issue_event_type_name names the same
// change differently): only a change of what the rules read warrants
// re-reading the issue. No changelog at all is treated as relevant.
func (h *Handler) relevant(project string, items []model.ChangeItem) bool {
	if len(items) == 0 {
		return true
	}
	h.mu.Lock()
	st := h.projects[strings.ToUpper(project)]
	h.mu.Unlock()
	for _, it := range items {
		id, name := strings.ToLower(it.FieldID), strings.ToLower(it.Field)
		switch {
		case id == "issuetype" || name == "issuetype",
			id == "fixversions" || name == "fix version",
			id == "description" || name == "description",
			id == "summary" || name == "summary",
			name == "sprint", name == "key", name == "project", id == "parent", name == "parent",
			id == "status" || name == "status", id == "priority" || name == "priority",
			id == "labels" || name == "labels",
			strings.Contains(name, "story point"):
			return true
		case st != nil && it.FieldID != "" && (it.FieldID == st.meta.StoryPointsField || it.FieldID == st.meta.SprintField):
			return true
		}
	}
	return false
}

// project returns the discovered state of a project, discovering it the
// first time and again after a failure (at most once a minute).
func (h *Handler) project(ctx context.Context, key string) (*projectState, error) {
	key = strings.ToUpper(key)
	h.mu.Lock()
	st := h.projects[key]
	if st != nil && (st.ok || h.now().Sub(st.tried) < rediscoverAfter) {
		defer h.mu.Unlock()
		if st.ok {
			cp := *st
			return &cp, nil
		}
		return nil, st.err
	}
	h.mu.Unlock()

	meta, err := h.client.Discover(ctx, key)
	h.mu.Lock()
	defer h.mu.Unlock()
	st = h.projects[key]
	if st == nil {
		st = &projectState{}
		h.projects[key] = st
	}
	st.tried = h.now()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		st.ok, st.err = false, fmt.Errorf("discover jira project %s: %w", key, err)
		st.problems = []string{"discovery failed: " + err.Error()}
		return nil, st.err
	}
	st.meta, st.ok, st.err = meta, true, nil
	st.problems = nil
	if !meta.HasSubtasks {
		st.problems = append(st.problems, "no sub-task issue type: test plans and design reviews are created as linked issues")
	}
	if meta.StoryPointsField == "" {
		st.problems = append(st.problems, "no story-points field: the story-points rule checks user stories only")
		if h.usesKind(key, rules.KindAnalysis) {
			st.problems = append(st.problems, "no story-points field: the analysis rule goes by labels only")
		}
	}
	if !meta.HasPriority && h.usesKind(key, rules.KindBacklog) {
		st.problems = append(st.problems, "no priority field: the backlog rule checks untriaged bugs only")
	}
	// Said once in the log (and always in Status), not at every event.
	if msg := strings.Join(st.problems, "; "); msg != st.logged {
		st.logged = msg
		if msg != "" {
			h.log.Warn("jira project limits the rules", zap.String("project", key), zap.String("problems", msg))
		}
	}
	cp := *st
	return &cp, nil
}

// usesKind reports whether a rule of the kind applies to the project's team.
func (h *Handler) usesKind(project string, k roles.Kind) bool {
	org := h.roles.Get()
	if org == nil {
		return false
	}
	team := org.TeamForProject(project)
	if team == nil {
		return false
	}
	for _, r := range rules.JiraRules(org, team.ID) {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// snapshot is what the engine reads about an issue of a project.
func (h *Handler) snapshot(st *projectState, is model.Issue) rules.IssueSnapshot {
	return rules.IssueSnapshot{Issue: is, StoryPointsField: st.meta.StoryPointsField != "", PriorityField: st.meta.HasPriority, Now: h.now()}
}

// invalidate forgets a project's discovery, so the next use discovers again
// (an issue type or field may have changed on the site).
func (h *Handler) invalidate(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.projects[strings.ToUpper(key)]; st != nil && st.ok {
		st.ok = false
		st.err = fmt.Errorf("jira project %s is being discovered again", key)
		st.tried = time.Time{}
	}
}

// Discover discovers every project owned by a team (at start). It returns
// the first error; the other projects are still discovered.
func (h *Handler) Discover(ctx context.Context) error {
	org := h.roles.Get()
	if org == nil {
		return nil
	}
	var first error
	for _, p := range org.Projects() {
		if _, err := h.project(ctx, p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Status reports, per owned project ("jira:PAY"), "ok" or what limits the
// rules there, for the /readyz details.
func (h *Handler) Status() map[string]string {
	out := map[string]string{}
	org := h.roles.Get()
	if org == nil {
		return out
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range org.Projects() {
		st := h.projects[p]
		switch {
		case st == nil:
			out["jira:"+p] = "not discovered yet"
		case len(st.problems) > 0:
			out["jira:"+p] = strings.Join(st.problems, "; ")
		default:
			out["jira:"+p] = "ok"
		}
	}
	return out
}

// processIssue re-reads an issue, evaluates it and acts.
func (h *Handler) processIssue(ctx context.Context, org *roles.Org, project, key string, trig trigger) error {
	st, err := h.project(ctx, project)
	if err != nil {
		return err
	}
	is, err := h.client.GetIssue(ctx, key)
	if isNotFound(err) {
		h.log.Debug("jira issue gone", zap.String("issue", key))
		return nil
	}
	if err != nil {
		return err
	}
	if !strings.EqualFold(is.Project, st.meta.Project) {
		// Moved to another project since the event: act there, if owned.
		if org.TeamForProject(is.Project) == nil {
			return nil
		}
		if st, err = h.project(ctx, is.Project); err != nil {
			return err
		}
		if is, err = h.client.GetIssue(ctx, is.Key); err != nil {
			return err
		}
	}
	return h.act(ctx, org, st, *is, trig)
}

// act evaluates a fresh issue and does what the rules ask.
func (h *Handler) act(ctx context.Context, org *roles.Org, st *projectState, is model.Issue, trig trigger) error {
	snap := h.snapshot(st, is)
	d := rules.EvaluateIssue(org, snap)
	if d.NeedsAssignment() {
		load, err := h.load(ctx, org, d, st)
		if err != nil {
			return err
		}
		snap.Load = load
		d = rules.EvaluateIssue(org, snap)
	}
	if !d.Acting() {
		return nil
	}
	var outcomes []string
	var firstErr error
	note := func(out string, err error) {
		if out != "" {
			outcomes = append(outcomes, out)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	var violations []rules.IssueRuleResult
	byKey := map[string][]rules.IssueRuleResult{} // the registry's kinds: one finding per key
	var keys []string
	for _, r := range d.Rules {
		switch {
		case r.NeedsTask:
			note(h.ensureTask(ctx, st, is, r))
		case r.Violation && r.FindingKey != "":
			if byKey[r.FindingKey] == nil {
				keys = append(keys, r.FindingKey)
			}
			byKey[r.FindingKey] = append(byKey[r.FindingKey], r)
		case r.Violation:
			violations = append(violations, r)
		}
	}
	if len(violations) > 0 {
		note(h.storyPoints(ctx, is, d.Team, violations))
	}
	for _, k := range keys {
		note(h.ruleFinding(ctx, is, d.Team, byKey[k]))
	}
	outcome := strings.Join(outcomes, "; ")
	if firstErr != nil {
		outcome = strings.TrimPrefix(outcome+"; error: "+firstErr.Error(), "; ")
	}
	h.saveDecision(ctx, d, snap, trig, outcome)
	return firstErr
}

func (h *Handler) saveDecision(ctx context.Context, d rules.IssueDecision, snap rules.IssueSnapshot, trig trigger, outcome string) {
	var reasons []string
	for _, r := range d.Rules {
		if r.NeedsTask || r.Violation {
			reasons = append(reasons, r.Reason)
		}
	}
	dj, _ := json.Marshal(d)
	sj, _ := json.Marshal(snap)
	if h.dryRun && outcome != "" {
		outcome = "dry-run: " + outcome
	}
	rec := &store.DecisionRecord{Kind: model.SubjectIssue, IssueKey: d.Issue, Team: d.Team, Trigger: trig.kind,
		DeliveryID: trig.delivery, Summary: strings.Join(reasons, "; "), Decision: dj, Snapshot: sj, Outcome: outcome, CreatedAt: h.now()}
	if _, err := h.store.SaveDecision(ctx, rec); err != nil {
		// The action is done; losing its record is worth a warning, not a redo.
		h.log.Warn("decision not recorded", zap.String("issue", d.Issue), zap.Error(err))
	}
}

// load counts open issues of the type rolekeeper creates (the sub-task
// type, or the Task type where there are none) assigned to each candidate,
// across projects: one search per decision that assigns.
func (h *Handler) load(ctx context.Context, org *roles.Org, d rules.IssueDecision, st *projectState) (map[string]int, error) {
	seen := map[string]bool{}
	var ids []string
	for _, r := range d.Rules {
		if !r.NeedsTask {
			continue
		}
		role := r.Role
		if r.AssignRole != "" {
			role = r.AssignRole
		}
		for _, p := range org.Holders(role, d.Team) {
			if p.AccountID != "" && !seen[p.AccountID] {
				seen[p.AccountID] = true
				ids = append(ids, jqlQuote(p.AccountID))
			}
		}
	}
	load := map[string]int{}
	typeID := h.taskTypeID(st.meta)
	if len(ids) == 0 || typeID == "" {
		return load, nil
	}
	jql := fmt.Sprintf("assignee in (%s) AND statusCategory != Done AND issuetype = %s", strings.Join(ids, ", "), typeID)
	issues, err := h.client.Search(ctx, jql, []string{"assignee"}, 5)
	if err != nil {
		return nil, err
	}
	for _, is := range issues {
		if is.Assignee != nil && is.Assignee.AccountID != "" {
			load[is.Assignee.AccountID]++
		}
	}
	return load, nil
}

// taskTypeID is the type of the tasks rolekeeper creates in a project.
func (h *Handler) taskTypeID(m jira.ProjectMeta) string {
	if m.HasSubtasks {
		return m.SubtaskTypeID
	}
	if id, ok := m.TypeID("Task"); ok {
		return id
	}
	if len(m.StandardTypeIDs) > 0 {
		return m.StandardTypeIDs[0]
	}
	return ""
}

func jqlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// busyError says another worker is acting on the same issue right now.
type busyError struct{ msg string }

func (e *busyError) Error() string             { return e.msg }
func (e *busyError) Temporary() bool           { return true }
func (e *busyError) RetryAfter() time.Duration { return time.Minute }

// claim takes an idempotency mark. It returns (true, "") when the caller
// may act, or (false, value) when the work is done (value is its result)
// or under way elsewhere (then a busyError). After a create that may have
// happened it returns (true, "maybe:…"): the caller looks for what it
// would create before creating it.
func (h *Handler) claim(ctx context.Context, key string) (bool, string, error) {
	pending := pendingPrefix + h.now().UTC().Format(time.RFC3339)
	ok, err := h.store.PutIfAbsent(ctx, key, pending)
	if err != nil || ok {
		return ok, "", err
	}
	v, found, err := h.store.Get(ctx, key)
	if err != nil {
		return false, "", err
	}
	if !found { // deleted in between: try once more
		ok, err := h.store.PutIfAbsent(ctx, key, pending)
		return ok, "", err
	}
	if strings.HasPrefix(v, maybePrefix) {
		return true, v, h.store.Set(ctx, key, pending)
	}
	if at, isPending := strings.CutPrefix(v, pendingPrefix); isPending {
		t, perr := time.Parse(time.RFC3339, at)
		if perr == nil && h.now().Sub(t) < staleAfter {
			return false, "", &busyError{msg: "jira: " + key + " is being handled by another worker"}
		}
		// A worker died between the mark and the action: take over.
		return true, "", h.store.Set(ctx, key, pending)
	}
	return false, v, nil
}

// failed leaves a mark after a failed create: released when nothing was
// created, "maybe" when the create may have happened (an answer 5xx, none,
// or cut off), so the retry looks before it creates again.
func (h *Handler) failed(ctx context.Context, key string, err error) {
	if !mayHaveHappened(err) {
		h.release(ctx, key)
		return
	}
	if serr := h.store.Set(ctx, key, maybePrefix+h.now().UTC().Format(time.RFC3339)); serr != nil {
		h.log.Warn("idempotency mark not kept after an uncertain create", zap.String("key", key), zap.Error(serr))
	}
}

// mayHaveHappened reports whether a failed create may have been carried
// out: anything but a refusal (4xx) or a rate limit (429: not processed).
func mayHaveHappened(err error) bool {
	if isPermanent(err) {
		return false
	}
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.StatusCode == http.StatusTooManyRequests {
		return false
	}
	return true
}

// release drops a mark after a failed action, so a retry may act.
func (h *Handler) release(ctx context.Context, key string) {
	if err := h.store.Delete(ctx, key); err != nil {
		h.log.Warn("idempotency mark not released; it expires", zap.String("key", key), zap.Error(err))
	}
}

func (h *Handler) count(rule, action, outcome string) {
	h.actions.WithLabelValues(rule, action, outcome).Inc()
}
