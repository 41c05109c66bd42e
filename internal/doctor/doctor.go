// Package doctor checks an installation the way an operator would, and says
// in words what is wrong and how to fix it: roles.yaml, the store, the
// Bitbucket and Jira credentials and what they can read, the webhook
// secrets, the public URL, the API token and dry-run. It prints one line per
// check, "ok", "warn" or "FAIL", and a summary.
package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Options tune Run. Zero values take the defaults noted.
type Options struct {
	// HTTPClient's Transport carries the Bitbucket and Jira requests
	// (http.DefaultTransport).
	HTTPClient *http.Client
	// Timeout bounds each check that talks to something: the store, one
	// Bitbucket or Jira call (20s).
	Timeout time.Duration
	// Now is the time absences in roles.yaml are judged at (time.Now).
	Now func() time.Time
}

// DefaultTimeout bounds each networked check when Options.Timeout is 0.
const DefaultTimeout = 20 * time.Second

// Level is a check's verdict.
type Level int

const (
	OK   Level = iota // nothing to do
	Warn              // works, but maybe not as intended
	Fail              // rolekeeper cannot do part of its job
)

func (l Level) String() string {
	switch l {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	}
	return "FAIL"
}

// Check names, the second column of the output.
const (
	checkConfig        = "config"
	checkRoles         = "roles"
	checkStore         = "store"
	checkBitbucket     = "bitbucket"
	checkRepository    = "repository"
	checkJira          = "jira"
	checkJiraProject   = "jira project"
	checkBitbucketHook = "bitbucket webhook"
	checkJiraHook      = "jira webhook"
	checkPublicURL     = "public url"
	checkWebhookURLs   = "webhook urls"
	checkAPIToken      = "api token"
	checkAdminToken    = "admin token"
	checkDryRun        = "dry run"
)

// report writes the verdicts as they come and counts them.
type report struct {
	out    io.Writer
	counts [3]int
}

func (r *report) add(l Level, check, format string, args ...any) {
	r.counts[l]++
	fmt.Fprintf(r.out, "%-4s  %-17s  %s\n", l, check, fmt.Sprintf(format, args...))
}

// doctor is one run's state.
type doctor struct {
	cfg     config.Config
	secrets config.Secrets
	opts    Options
	r       *report
	org     *roles.Org // nil when roles.yaml did not load
}

// Run checks the installation described by cfg and secrets, writing one
// line per check to out and a summary at the end. ok is false when a check
// failed; warnings leave it true.
func Run(ctx context.Context, cfg config.Config, secrets config.Secrets, out io.Writer, opts Options) (ok bool) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: http.DefaultTransport}
	}
	d := &doctor{cfg: cfg, secrets: secrets, opts: opts, r: &report{out: out}}

	if cfg.File != "" {
		d.r.add(OK, checkConfig, "%s loaded", cfg.File)
	} else {
		d.r.add(Warn, checkConfig, "no --config: checking the defaults `rolekeeper serve` runs on without one")
	}
	d.checkRoles()
	d.checkStore(ctx)
	d.checkBitbucket(ctx)
	d.checkJira(ctx)
	d.checkWebhookSecrets()
	d.checkPublicURL()
	d.checkAPIToken()
	d.checkDryRun()

	c := d.r.counts
	fmt.Fprintf(out, "\n%d ok, %d %s, %d failed\n", c[OK], c[Warn], plural(c[Warn], "warning", "warnings"), c[Fail])
	return c[Fail] == 0
}

// bounded returns a context for one networked check.
func (d *doctor) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.Timeout)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
