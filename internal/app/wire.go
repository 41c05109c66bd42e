package app

// wire.go is the one file that names the packages written beside this
// one: the store drivers, the vendor parsers and clients, and the
// workflows that handle events. Everything else in the package works on
// interfaces.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/audit"
	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/gate"
	"github.com/reloadly/rolekeeper/internal/inbox"
	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/jiraflow"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/prflow"
	"github.com/reloadly/rolekeeper/internal/report"
	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

// OpenStore opens the configured store; ROLEKEEPER_STORE_DSN (in secrets)
// overrides store.dsn.
func OpenStore(ctx context.Context, cfg config.Config, secrets config.Secrets) (store.Store, error) {
	return openStore(ctx, cfg, secrets)
}

func openStore(ctx context.Context, cfg config.Config, secrets config.Secrets) (store.Store, error) {
	dsn := cfg.Store.DSN
	if secrets.StoreDSN != "" {
		dsn = secrets.StoreDSN
	}
	switch cfg.Store.Driver {
	case config.DriverSQLite, "":
		s, err := sqlite.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	case config.DriverPostgres:
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("open store: unknown driver %q", cfg.Store.Driver)
}

// parsers turns stored bodies into events, by source.
func parsers() map[model.Source]webhook.ParseFunc {
	return map[model.Source]webhook.ParseFunc{
		model.SourceBitbucket: bitbucket.ParseWebhook,
		model.SourceJira:      func(_ string, body []byte) (*model.Event, error) { return jira.ParseWebhook(body) },
	}
}

// wire builds the upstream clients and registers the workflows.
func (a *App) wire() error {
	cfg, sec := a.cfg, a.secrets
	bb, err := bitbucket.New(bitbucket.Options{
		BaseURL:     cfg.Bitbucket.BaseURL,
		Username:    sec.BitbucketUsername,
		Token:       sec.BitbucketToken,
		AccessToken: sec.BitbucketAccessToken,
		Timeout:     cfg.Bitbucket.Timeout,
		Registerer:  a.reg,
		Logger:      a.log.Named("bitbucket"),
		Now:         a.now,
	})
	if err != nil {
		return err
	}

	var jc *jira.Client // nil when jira.base_url is not set
	if cfg.Jira.BaseURL != "" {
		jc, err = jira.New(jira.Options{
			BaseURL:    cfg.Jira.BaseURL,
			Email:      sec.JiraEmail,
			Token:      sec.JiraToken,
			Registerer: a.reg,
			Logger:     a.log.Named("jira"),
			Now:        a.now,
		})
		if err != nil {
			return err
		}
	}

	pr, err := prflow.New(prflow.Options{
		Host:         bb,
		Store:        a.store,
		Roles:        a.roles,
		PublicURL:    cfg.PublicURL,
		DryRun:       a.bitbucketDryRun,
		AssignDrafts: cfg.Bitbucket.AssignDrafts,
		Logger:       a.log.Named("prflow"),
		Registerer:   a.reg,
		Now:          a.now,
	})
	if err != nil {
		return err
	}
	a.RegisterHandler("prflow", pr)

	var followUps gate.FollowUps
	if jc != nil && !a.jiraDryRun {
		followUps = jiraFollowUps{jc}
	}
	g := gate.New(gate.Options{
		Host:       bb,
		Store:      a.store,
		Roles:      a.roles,
		FollowUps:  followUps,
		PublicURL:  cfg.PublicURL,
		DryRun:     a.bitbucketDryRun,
		TTL:        cfg.Gates.TTL,
		Now:        a.now,
		Logger:     a.log.Named("gate"),
		Registerer: a.reg,
	})
	a.RegisterHandler("gate", g)
	gate.Register(mountFunc(a.Mount), g)

	a.Mount("GET /api/v1/reports/weekly", report.Handler(a.store, a.roles.Get, a.Location(), cfg.PublicURL, a.now))
	// issue 15: the signed, expiring link to the HTML report (no token).
	a.Mount("GET "+report.LinkPath+"{file}", report.LinkHandler(a.reportLinks(), a.store, a.roles.Get, a.Location(), cfg.PublicURL, a.now))

	a.jiraClient = jc
	var jiraAudit audit.IssueAuditor
	if jc != nil {
		jiraAudit = a.wireJira(jc)
	}
	if err := a.wireEvidence(); err != nil { // evidence (h6)
		return err
	}
	a.wireJobs(bb, func(ctx context.Context, p model.PullRequest, trigger string) error {
		_, err := pr.Reconcile(ctx, p, trigger)
		return err
	}, jiraAudit, g.ExpireDue)
	a.reload.onReload = func() {
		a.syncJobs()
		a.recordRolesVersion() // evidence (h6)
	}
	return nil
}

// mountFunc lets packages that register on a mux (gate.Register) mount on
// the app's server, which wraps /api/ routes in bearer auth.
type mountFunc func(pattern string, h http.Handler)

func (f mountFunc) Handle(pattern string, h http.Handler) { f(pattern, h) }

// jiraFollowUps files a break-glass follow-up as a Jira Task (or the
// project's first standard issue type when it has no Task).
type jiraFollowUps struct{ c *jira.Client }

func (j jiraFollowUps) CreateFollowUp(ctx context.Context, project, summary, description, assignee string) (string, error) {
	meta, err := j.c.Discover(ctx, project)
	if err != nil {
		return "", err
	}
	typeID, ok := meta.TypeID("Task")
	if !ok {
		if len(meta.StandardTypeIDs) == 0 {
			return "", inbox.Permanent(fmt.Errorf("jira project %s has no issue type to file a follow-up in", project))
		}
		typeID = meta.StandardTypeIDs[0]
	}
	return j.c.CreateIssue(ctx, jira.CreateIssueRequest{
		Project:           project,
		IssueTypeID:       typeID,
		Summary:           summary,
		Description:       description,
		AssigneeAccountID: assignee,
		Labels:            []string{"rolekeeper", "break-glass"},
	})
}

// wireJira builds the Jira workflow and feeds its per-project state to
// /readyz.
func (a *App) wireJira(jc *jira.Client) *jiraflow.Handler {
	cfg := a.cfg
	jf := jiraflow.New(jiraflow.Options{
		Client:     jc,
		Store:      a.store,
		Roles:      a.roles,
		PublicURL:  cfg.PublicURL,
		DryRun:     a.jiraDryRun,
		Logger:     a.log.Named("jiraflow"),
		Registerer: a.reg,
		Now:        a.now,
	})
	a.RegisterHandler("jiraflow", jf)
	a.AddReadiness(func(context.Context) map[string]server.Check {
		out := map[string]server.Check{}
		for name, st := range jf.Status() {
			out[name] = server.Check{OK: st == "ok", Detail: st}
		}
		return out
	})

	// Discover the projects' issue types and fields in the background at
	// start: the workflow discovers lazily too, so a slow Jira delays
	// nothing; Stop cancels it.
	var wg sync.WaitGroup
	var cancel context.CancelFunc = func() {}
	a.OnStart(func(ctx context.Context) error {
		dctx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		cancel = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := jf.Discover(dctx); err != nil {
				a.log.Warn("jira discovery incomplete; retried when an event needs it", zap.Error(err))
			}
		}()
		return nil
	})
	a.OnStop(func(context.Context) error {
		cancel()
		wg.Wait()
		return nil
	})
	return jf
}
