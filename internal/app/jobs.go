package app

// jobs.go wires the scheduled work: the audit pass, the weekly report, and
// the leader election that keeps them to one replica at a time.

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/audit"
	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/leader"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/report"
	"github.com/reloadly/rolekeeper/internal/retention"
	"github.com/reloadly/rolekeeper/internal/schedule"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Job names, as they appear in metrics and logs.
const (
	JobAudit        = "audit"
	JobWeeklyReport = "weekly_report"
	JobExpireGates  = "expire_gates"
	JobPrune        = "prune"
)

// pruneEvery is how often retention runs on the leader.
const pruneEvery = "@every 10m"

// LeaderTTL is how long the cron leader's lease lasts without renewal: a
// dead leader is replaced within this plus one renewal (a third of it).
const LeaderTTL = 15 * time.Second

// bitbucketAudit adapts the Bitbucket client to what the audit reads.
type bitbucketAudit struct{ c *bitbucket.Client }

func (b bitbucketAudit) UpdatedPullRequests(ctx context.Context, repo string, since time.Time) ([]model.PullRequest, error) {
	return b.c.ListPullRequests(ctx, repo, bitbucket.ListOptions{
		States:       []model.PRState{model.PROpen, model.PRMerged, model.PRDeclined},
		UpdatedSince: since,
	})
}

func (b bitbucketAudit) PullRequest(ctx context.Context, repo string, id int) (*model.PullRequest, error) {
	return b.c.GetPullRequest(ctx, repo, id)
}

func (b bitbucketAudit) Deployments(ctx context.Context, repo string) ([]model.Deployment, error) {
	return b.c.ListDeployments(ctx, repo, 2)
}

func (b bitbucketAudit) Calls() int64 { return b.c.Calls() }

// reconciler adapts prflow's Reconcile (which also returns what it did).
type reconciler struct {
	f func(ctx context.Context, pr model.PullRequest, trigger string) error
}

func (r reconciler) Reconcile(ctx context.Context, pr model.PullRequest, trigger string) error {
	return r.f(ctx, pr, trigger)
}

// jiraReportFiler files the weekly report as a Jira issue.
type jiraReportFiler struct{ c *jira.Client }

func (f jiraReportFiler) CreateReportIssue(ctx context.Context, project, summary, body, assignee string) (string, error) {
	meta, err := f.c.Discover(ctx, project)
	if err != nil {
		return "", err
	}
	typeID, ok := meta.TypeID("Task")
	if !ok {
		if len(meta.StandardTypeIDs) == 0 {
			return "", fmt.Errorf("project %s has no issue type to file the report as", project)
		}
		typeID = meta.StandardTypeIDs[0]
	}
	return f.c.CreateIssue(ctx, jira.CreateIssueRequest{Project: project, IssueTypeID: typeID, Summary: summary,
		Description: body, AssigneeAccountID: assignee, Labels: []string{"rolekeeper", "compliance-report"}})
}

func (f jiraReportFiler) AddAttachment(ctx context.Context, key, filename string, data []byte) error {
	return f.c.AddAttachment(ctx, key, filename, data)
}

// Scheduler returns the scheduler (tests trigger jobs through it).
func (a *App) Scheduler() *schedule.Scheduler { return a.scheduler }

// IsLeader reports whether this replica runs the scheduled jobs now.
func (a *App) IsLeader() bool { return a.elector != nil && a.elector.IsLeader() }

// Audit runs one audit pass now (the scheduled job and `rolekeeper audit`).
func (a *App) Audit(ctx context.Context, progress func(audit.Progress)) (audit.Result, error) {
	if a.auditor == nil {
		return audit.Result{}, fmt.Errorf("audit is not configured")
	}
	return a.auditor.Run(ctx, progress)
}

// WeeklyReport builds the report of an ISO week from the store.
func (a *App) WeeklyReport(ctx context.Context, w report.Week) (*report.Report, error) {
	return report.Build(ctx, a.store, a.roles.Get(), w, report.Options{Now: a.now(), PublicURL: a.cfg.PublicURL})
}

// reportLinks signs the weekly report's links with the configured secret
// (none: every link is refused).
func (a *App) reportLinks() report.Links { return report.NewLinks(a.secrets.ReportLinkSecret, 0) }

// ReportLink is the signed link to a week's HTML report, valid for
// report.LinkTTL; an error when no secret or no public URL is configured.
func (a *App) ReportLink(week string) (report.Link, error) {
	if a.cfg.PublicURL == "" {
		return report.Link{}, fmt.Errorf("public_url is not set")
	}
	links := a.reportLinks()
	if !links.Enabled() {
		return report.Link{}, fmt.Errorf("neither %s nor ROLEKEEPER_ADMIN_TOKEN is set", config.EnvReportLinkSecret)
	}
	u, exp, err := links.URL(a.cfg.PublicURL, week, a.now())
	if err != nil {
		return report.Link{}, err
	}
	return report.Link{URL: u, Expires: exp}, nil
}

// Location is the time zone of schedules and report weeks.
func (a *App) Location() *time.Location {
	if a.cfg.Schedule.Location != nil {
		return a.cfg.Schedule.Location
	}
	return time.UTC
}

// deliverWeeklyReport builds the last complete week's report, writes it to
// reports.dir and files it in Jira when configured. Re-running it for the
// same week rewrites the files and files no second issue.
func (a *App) deliverWeeklyReport(ctx context.Context) error {
	w := report.LastComplete(a.now(), a.Location())
	r, err := a.WeeklyReport(ctx, w)
	if err != nil {
		return err
	}
	if err := a.checkpointWeek(ctx, r); err != nil { // evidence (h6)
		return fmt.Errorf("evidence checkpoint: %w", err)
	}
	if a.cfg.Reports.Dir != "" {
		paths, err := report.WriteFiles(a.cfg.Reports.Dir, r)
		if err != nil {
			return fmt.Errorf("write report files: %w", err)
		}
		a.log.Info("weekly report written", zap.String("week", r.Week), zap.Strings("files", paths))
	}
	link, err := a.ReportLink(r.Week)
	if err != nil {
		a.log.Warn("weekly report link not signed", zap.String("week", r.Week), zap.Error(err))
	} else {
		a.log.Info("weekly report link", zap.String("week", r.Week), zap.String("url", link.URL), zap.Time("expires", link.Expires))
	}
	if a.jiraClient != nil && !a.jiraDryRun {
		key, err := report.DeliverToJira(ctx, jiraReportFiler{a.jiraClient}, a.store, a.roles.Get(), r, a.cfg.Jira.ReportProject, a.now(), link)
		if err != nil {
			return fmt.Errorf("file weekly report in jira: %w", err)
		}
		if key != "" {
			a.log.Info("weekly report filed", zap.String("week", r.Week), zap.String("issue", key))
		}
	}
	return nil
}

// wireJobs builds the auditor, the scheduler and the leader election.
func (a *App) wireJobs(bb *bitbucket.Client, reconcile func(ctx context.Context, pr model.PullRequest, trigger string) error, jiraAudit audit.IssueAuditor, expireGates func(ctx context.Context) error) {
	a.expireGates = expireGates
	opts := audit.Options{
		Store:        a.store,
		Roles:        a.roles,
		HourlyBudget: a.cfg.Audit.BitbucketHourlyBudget,
		Now:          a.now,
		Logger:       a.log.Named("audit"),
		Registerer:   a.reg,
	}
	if bb != nil {
		opts.Upstream = bitbucketAudit{bb}
		opts.Reconciler = reconciler{reconcile}
	}
	if jiraAudit != nil {
		opts.Jira = jiraAudit
	}
	a.auditor = audit.New(opts)
	a.wireRetention()

	host, _ := os.Hostname()
	a.elector = leader.New(leader.Options{
		Leases: a.store,
		Name:   "cron",
		Holder: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), a.now().UnixNano()),
		TTL:    LeaderTTL,
		Now:    a.now,
		Logger: a.log.Named("leader"),
	})
	a.scheduler = schedule.New(schedule.Options{
		Location:   a.Location(),
		Leader:     a.elector,
		Logger:     a.log.Named("schedule"),
		Registerer: a.reg,
	})
	a.syncJobs()

	var cancel context.CancelFunc = func() {}
	done := make(chan struct{})
	a.OnStart(func(ctx context.Context) error {
		ectx, c := context.WithCancel(context.WithoutCancel(ctx))
		cancel = c
		go func() { defer close(done); a.elector.Run(ectx) }()
		a.scheduler.Start(ectx)
		return nil
	})
	a.OnStop(func(ctx context.Context) error {
		err := a.scheduler.Stop(ctx)
		cancel()
		<-done
		return err
	})
}

// syncJobs (re)installs the schedules from the config; called at start and
// on reload.
func (a *App) syncJobs() {
	if a.scheduler == nil {
		return
	}
	jobs := []schedule.Job{
		{Name: JobAudit, Spec: a.cfg.Schedule.Audit, Run: func(ctx context.Context) error {
			_, err := a.Audit(ctx, nil)
			return err
		}},
		{Name: JobWeeklyReport, Spec: a.cfg.Schedule.WeeklyReport, Run: a.deliverWeeklyReport},
		{Name: JobExpireGates, Spec: "@every 1m", Run: a.expireGates},
		{Name: JobEvidence, Spec: "@hourly", Run: a.evidenceJob}, // evidence (h6)
	}
	if a.prune != nil {
		jobs = append(jobs, schedule.Job{Name: JobPrune, Spec: pruneEvery, Run: a.prune})
	}
	err := a.scheduler.Sync(jobs)
	if err != nil {
		a.log.Error("schedule jobs", zap.Error(err))
	}
}

// wireRetention builds the pruner (retention.*) and the store size
// metrics; the prune job runs it on the leader.
func (a *App) wireRetention() {
	st, ok := a.store.(store.Retention)
	if !ok {
		return
	}
	r := a.cfg.Retention
	p, err := retention.New(retention.Options{
		Store:          st,
		DoneDeliveries: r.DoneDeliveries,
		DeadLetters:    r.DeadLetters,
		Decisions:      r.Decisions,
		Batch:          r.Batch,
		Now:            a.now,
		Logger:         a.log.Named("retention"),
		Registerer:     a.reg,
	})
	if err != nil {
		a.log.Error("retention is off", zap.Error(err))
		return
	}
	a.prune = func(ctx context.Context) error {
		_, err := p.Run(ctx)
		return err
	}
}
