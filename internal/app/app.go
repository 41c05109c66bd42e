// Package app wires rolekeeper together and runs it: the store, the roles
// in force (reloaded on change), the webhook intakes, the inbox workers that
// hand each stored delivery to the registered event handlers, and the HTTP
// server. It is the only package that imports everything, so that a test
// can start the whole daemon on 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/audit"
	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/inbox"
	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/leader"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/schedule"
	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

// EventHandler acts on one webhook event. It must be idempotent: a delivery
// is processed at least once, and when one handler fails every handler
// sees the event again on the retry. Errors follow the inbox's conventions
// (Permanent() dead-letters, RetryAfter() delays the retry).
type EventHandler interface {
	Handle(ctx context.Context, ev *model.Event) error
}

// EventHandlerFunc adapts a function to EventHandler.
type EventHandlerFunc func(ctx context.Context, ev *model.Event) error

// Handle calls f.
func (f EventHandlerFunc) Handle(ctx context.Context, ev *model.Event) error { return f(ctx, ev) }

// Options are what the caller injects; every field is optional.
type Options struct {
	Logger   *zap.Logger          // default: built from cfg.Log on stderr
	Registry *prometheus.Registry // default: a new one with Go and process collectors
	Now      func() time.Time     // default time.Now
	// RolesYAML is the roles file used when cfg.Roles is "" (config.Default):
	// the repository's roles.yaml, built into the binary.
	RolesYAML []byte
	// ReloadInterval is how often roles.yaml is checked for changes
	// (default 2 s; negative disables the check, SIGHUP still reloads).
	ReloadInterval time.Duration
	// Version, Commit and Date describe the build (rolekeeper_build_info).
	Version, Commit, Date string
}

// App is the daemon.
type App struct {
	cfg     config.Config
	secrets config.Secrets
	log     *zap.Logger
	reg     *prometheus.Registry
	now     func() time.Time

	store  store.Store
	roles  *roles.Current
	reload *reloader
	server *server.Server
	inbox  *inbox.Runner

	// dry-run per upstream: asked for, or forced by missing credentials.
	bitbucketDryRun bool
	jiraDryRun      bool

	jiraClient  *jira.Client // nil when Jira is not configured
	auditor     *audit.Auditor
	scheduler   *schedule.Scheduler
	elector     *leader.Elector
	expireGates func(ctx context.Context) error
	evidence    *evidence.Keeper                // evidence (h6)
	prune       func(ctx context.Context) error // retention (jobs.go); nil when the store has none

	parsers  map[model.Source]webhook.ParseFunc
	handlers []namedHandler
	onStart  []func(ctx context.Context) error
	onStop   []func(ctx context.Context) error

	mu       sync.Mutex
	started  bool
	stopped  bool
	loopStop chan struct{}
	loopDone chan struct{}
}

type namedHandler struct {
	name string
	h    EventHandler
}

// New opens the store, loads the roles and builds every part. Nothing
// listens or runs until Start.
func New(cfg config.Config, secrets config.Secrets, opts Options) (_ *App, err error) {
	a := &App{
		cfg:             cfg,
		secrets:         secrets,
		log:             opts.Logger,
		reg:             opts.Registry,
		now:             opts.Now,
		bitbucketDryRun: cfg.DryRun || !secrets.HasBitbucketAPI(),
		jiraDryRun:      cfg.DryRun || !secrets.HasJiraAPI() || cfg.Jira.BaseURL == "",
	}
	if a.log == nil {
		if a.log, err = NewLogger(cfg.Log, nil); err != nil {
			return nil, err
		}
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
		a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rolekeeper_build_info",
		Help: "Build of the running rolekeeper (always 1).",
	}, []string{"version", "commit", "goversion"})
	if err := a.reg.Register(build); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	build.WithLabelValues(opts.Version, opts.Commit, runtime.Version()).Set(1)

	// Roles first: a bad file stops the start before anything is opened.
	a.reload, err = newReloader(cfg.Roles, opts.RolesYAML, a.reg, a.log, a.now)
	if err != nil {
		return nil, err
	}
	a.roles = a.reload.current
	interval := opts.ReloadInterval
	if interval == 0 {
		interval = 2 * time.Second
	}
	a.reload.interval = interval

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a.store, err = openStore(ctx, cfg, secrets)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.store.Close()
		}
	}()

	a.parsers = parsers()
	a.inbox, err = inbox.New(inbox.Options{
		Store:       a.store,
		Processor:   inbox.ProcessorFunc(a.process),
		Workers:     cfg.Inbox.Workers,
		MaxAttempts: cfg.Inbox.MaxAttempts,
		BaseBackoff: cfg.Inbox.BaseBackoff,
		MaxBackoff:  cfg.Inbox.MaxBackoff,
		Lease:       cfg.Inbox.Lease,
		Timeout:     cfg.Inbox.Timeout,
		Now:         a.now,
		Logger:      a.log.Named("inbox"),
		Registerer:  a.reg,
	})
	if err != nil {
		return nil, err
	}

	hooks := webhook.NewMetrics(a.reg)
	inflight := webhook.NewInflight(cfg.Webhooks.MaxInflightBytes) // shared by both sources
	intake := func(src webhook.Source, secrets []string) *webhook.Handler {
		return webhook.New(webhook.Options{
			Source:        src,
			Secrets:       secrets,
			AllowUnsigned: cfg.Webhooks.AllowUnsigned,
			MaxBodyBytes:  cfg.Webhooks.MaxBodyBytes,
			Inflight:      inflight,
			Store:         a.store,
			Notify:        a.inbox.Notify,
			Now:           a.now,
			Logger:        a.log.Named("webhook"),
			Metrics:       hooks,
		})
	}
	bbSource := webhook.Bitbucket(a.parsers[model.SourceBitbucket])
	bbSource.Check = bitbucket.CheckWebhook // the workers parse the whole body
	jiraParse := a.parsers[model.SourceJira]
	jiraSource := webhook.Jira(func(b []byte) (*model.Event, error) { return jiraParse("", b) })
	jiraSource.CheckEvent, jiraSource.NoEvent = jira.CheckWebhook, jira.ErrNoWebhookEvent // the workers parse the whole body
	a.server = server.New(server.Options{
		Listen:     cfg.Listen,
		PublicURL:  cfg.PublicURL,
		Logger:     a.log.Named("http"),
		Gatherer:   a.reg,
		APIToken:   secrets.APIToken,
		AdminToken: secrets.AdminToken,
		People:     a.peopleNames,
		BreakGlassRole: func(team, env string) string {
			return rules.BreakGlassOf(a.roles.Get(), team, env).Role
		},
		Bitbucket: intake(bbSource, secrets.BitbucketWebhookSecrets),
		Jira:      intake(jiraSource, secrets.JiraWebhookSecrets),
		Store:     a.store,
		Roles:     a.reload.status,
		Redrive:   a.inbox.Redrive,

		// The decision pages link to the pull request or Jira issue.
		BitbucketURL: cfg.Bitbucket.BaseURL,
		JiraURL:      cfg.Jira.BaseURL,
	})

	if err := a.wire(); err != nil {
		return nil, err
	}
	return a, nil
}

// RegisterHandler adds an event handler; every event goes to every handler,
// in registration order. Call it before Start.
func (a *App) RegisterHandler(name string, h EventHandler) {
	a.handlers = append(a.handlers, namedHandler{name: name, h: h})
}

// Mount adds an HTTP route (a Go 1.22 ServeMux pattern); routes under
// /api/ need the API token. Call it before Start.
func (a *App) Mount(pattern string, h http.Handler) {
	a.server.Mount(pattern, h)
}

// AddReadiness adds named checks to /readyz.
func (a *App) AddReadiness(f server.ReadinessDetail) { a.server.AddReadiness(f) }

// OnStart runs f at Start, after the server listens and the inbox runs;
// an error fails Start. OnStop runs f at Stop, in reverse order, after the
// server stopped accepting and before the inbox drains.
func (a *App) OnStart(f func(ctx context.Context) error) { a.onStart = append(a.onStart, f) }

// OnStop: see OnStart.
func (a *App) OnStop(f func(ctx context.Context) error) { a.onStop = append(a.onStop, f) }

// Roles is the organisation in force.
func (a *App) Roles() *roles.Current { return a.roles }

// Store is the open store.
func (a *App) Store() store.Store { return a.store }

// Logger is the app's logger.
func (a *App) Logger() *zap.Logger { return a.log }

// Registry is the metrics registry /metrics serves.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Inbox is the delivery worker pool (for Redrive and ListDead).
func (a *App) Inbox() *inbox.Runner { return a.inbox }

// DryRun reports, per upstream, whether writes are skipped: asked for by
// dry_run, or forced because its API credentials are missing.
func (a *App) DryRun() (bitbucket, jira bool) { return a.bitbucketDryRun, a.jiraDryRun }

// Start listens, starts the inbox workers and the roles watcher, then runs
// the OnStart hooks.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("app: already started")
	}
	// SQLite: own the file (refusing a second process) and release the
	// claims a killed run left, before anything listens. A refusal leaves
	// the app unstarted: Stop only closes the store.
	if err := a.inbox.Recover(ctx); err != nil {
		a.mu.Unlock()
		return err
	}
	a.started = true
	a.loopStop, a.loopDone = make(chan struct{}), make(chan struct{})
	a.mu.Unlock()

	if err := a.server.Start(); err != nil {
		close(a.loopDone)
		return err
	}
	a.inbox.Start(ctx)
	go a.reload.loop(a.loopStop, a.loopDone)
	for _, f := range a.onStart {
		if err := f(ctx); err != nil {
			return err
		}
	}
	org := a.roles.Get()
	a.log.Info("rolekeeper started",
		zap.String("addr", a.server.Addr()),
		zap.String("public_url", a.cfg.PublicURL),
		zap.String("store", a.cfg.Store.Driver),
		zap.String("roles", org.Path),
		zap.String("roles_hash", org.Hash),
		zap.Bool("bitbucket_dry_run", a.bitbucketDryRun),
		zap.Bool("jira_dry_run", a.jiraDryRun),
		zap.Object("secrets", a.secrets),
		zap.Int("handlers", len(a.handlers)),
	)
	if a.bitbucketDryRun && !a.cfg.DryRun {
		a.log.Warn("no Bitbucket API credentials: Bitbucket runs in dry-run (decisions are recorded, nothing is written)",
			zap.Strings("variables", []string{config.EnvBitbucketUsername, config.EnvBitbucketToken, config.EnvBitbucketAccessToken}))
	}
	switch {
	case a.cfg.Jira.BaseURL == "":
		a.log.Info("jira.base_url not set: the Jira rules are not applied")
	case a.jiraDryRun && !a.cfg.DryRun:
		a.log.Warn("no Jira API credentials: Jira runs in dry-run (decisions are recorded, nothing is written)",
			zap.Strings("variables", []string{config.EnvJiraEmail, config.EnvJiraToken}))
	}
	return nil
}

// Addr is the address the server listens on ("" before Start).
func (a *App) Addr() string { return a.server.Addr() }

// Reload re-reads roles.yaml now (what SIGHUP does). A bad file is refused
// and the rules in force stay. The outcome is logged and counted in the
// metrics; the error is returned for callers that act on it, already
// logged.
func (a *App) Reload() error { return a.reload.reload(true) }

// Stop stops accepting requests, runs the OnStop hooks, drains the inbox
// (bounded by ctx) and closes the store.
func (a *App) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	started := a.started
	a.mu.Unlock()

	var errs []error
	if started {
		if err := a.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		for i := len(a.onStop) - 1; i >= 0; i-- {
			if err := a.onStop[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		close(a.loopStop)
		<-a.loopDone
	}
	if err := a.inbox.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := a.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	a.log.Info("rolekeeper stopped")
	_ = a.log.Sync()
	return errors.Join(errs...)
}

// peopleNames maps the account ids of the roles in force to display names,
// for the public decision pages (which show names, never account ids).
func (a *App) peopleNames() map[string]string {
	org := a.roles.Get()
	if org == nil {
		return nil
	}
	out := make(map[string]string, len(org.People))
	for _, p := range org.People {
		if p.AccountID != "" {
			out[p.AccountID] = p.DisplayName()
		}
	}
	return out
}
