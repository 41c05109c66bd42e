// Package demo is `rolekeeper demo`: the daemon on embedded SQLite against
// a built-in sandbox that answers like Bitbucket Cloud and Jira Cloud (the
// fakes the tests use), filled with the people, teams and repositories of
// the shipped roles.yaml. It replays a sample week through the real webhook
// intake — pull requests in every team, path rules, an away lead, a
// self-approval, a merge without approval, a production deployment gate, an
// epic and a story in Jira — prints each decision and its reason as it
// happens, then leaves the daemon running, with the weekly report, until
// the context ends (Ctrl-C).
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/app"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// stopTimeout bounds the graceful stop.
const stopTimeout = 20 * time.Second

// options are the command's flags.
type options struct {
	data    string        // data directory ("" = a temporary one, removed at the end)
	listen  string        // the daemon's address
	pause   time.Duration // between steps
	noWait  bool          // exit after the replay
	verbose bool          // daemon logs on stderr instead of DATA/rolekeeper.log
	// processTimeout bounds the wait for one delivery to be processed.
	processTimeout time.Duration
}

// Command runs `rolekeeper demo`. getenv may supply ROLEKEEPER_API_TOKEN
// and ROLEKEEPER_ADMIN_TOKEN (used, never printed); no other variable is
// read: the sandbox never sees real credentials.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, code, ok := parse(args, stderr)
	if !ok {
		return code
	}
	return run(ctx, o, stdout, stderr, getenv, nil)
}

func parse(args []string, stderr io.Writer) (options, int, bool) {
	fs := flag.NewFlagSet("rolekeeper demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{processTimeout: 20 * time.Second}
	fs.StringVar(&o.data, "data", "", "keep the demo's SQLite database, log and reports in `DIR` (must be empty; default: a temporary directory removed at the end)")
	fs.StringVar(&o.listen, "listen", config.DefaultListen, "`address` of the daemon; when it is taken, a free port on 127.0.0.1 is used")
	fs.DurationVar(&o.pause, "pause", 700*time.Millisecond, "pause between steps, so a person can follow (0: none)")
	fs.BoolVar(&o.noWait, "no-wait", false, "exit after the replay instead of serving until Ctrl-C")
	fs.BoolVar(&o.verbose, "verbose", false, "write the daemon's log to stderr (default: DATA/rolekeeper.log)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: rolekeeper demo [flags]\n\n"+
			"Starts rolekeeper against a built-in sandbox Bitbucket and Jira, replays a sample week\n"+
			"and prints every decision with its reason; then serves until Ctrl-C.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rolekeeper demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return o, exitUsage, false
	}
	if o.pause < 0 {
		fmt.Fprintln(stderr, "rolekeeper demo: --pause must not be negative")
		return o, exitUsage, false
	}
	return o, exitOK, true
}

// session is a running demo, for tests that look at it after the replay.
type session struct {
	app    *app.App
	sb     *sandbox
	replay *replay
	daemon *daemon
}

// run starts everything, replays the week and, unless noWait, serves
// until ctx ends. inspect, when set, sees the session after the replay
// (tests).
func run(ctx context.Context, o options, stdout, stderr io.Writer, getenv func(string) string, inspect func(*session)) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "rolekeeper demo: "+format+"\n", args...)
		return exitFailed
	}
	p := printer{w: stdout}

	// The sample week's people come from the shipped roles.yaml.
	org, err := roles.ParseAt("roles.yaml (built in)", rolekeeper.RolesYAML, weekStart)
	if err != nil {
		return fail("the built-in roles.yaml: %v", err)
	}
	if err := checkCast(org, weekStart); err != nil {
		return fail("%v", err)
	}

	dir, cleanup, err := dataDir(o.data)
	if err != nil {
		fmt.Fprintf(stderr, "rolekeeper demo: %v\n", err)
		return exitUsage
	}
	keep := false // a failed run keeps its directory, for its log
	defer func() {
		if !keep {
			cleanup()
		}
	}()

	addr, err := pickAddr(o.listen)
	if err != nil {
		return fail("%v", err)
	}
	moved := addr != o.listen && !strings.HasSuffix(o.listen, ":0")
	clk := newClock(at(0, 8, 30))
	sb := newSandbox(org, clk.Now)
	defer sb.close()

	// A token from the environment is used but never printed.
	token := strings.TrimSpace(getenv(config.EnvAPIToken))
	tokenFromEnv := token != ""
	if !tokenFromEnv {
		token = "rk_demo_" + randomHex(16)
	}
	adminToken := strings.TrimSpace(getenv(config.EnvAdminToken))
	adminFromEnv := adminToken != ""
	if !adminFromEnv || adminToken == token {
		adminToken, adminFromEnv = "rk_demo_admin_"+randomHex(16), false
	}
	cfg, secrets := daemonConfig(addr, dir, token, adminToken, sb)
	logOut := stderr
	if !o.verbose {
		f, err := os.Create(filepath.Join(dir, "rolekeeper.log"))
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		logOut = f
		cfg.Log.Format = config.LogJSON
	}
	log, err := app.NewLogger(cfg.Log, logOut)
	if err != nil {
		return fail("%v", err)
	}
	a, err := app.New(cfg, secrets, app.Options{
		Logger:         log,
		RolesYAML:      rolekeeper.RolesYAML,
		Now:            clk.Now,
		ReloadInterval: -1,
		Version:        "demo",
	})
	if err != nil {
		return fail("start the daemon: %v", err)
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		return a.Stop(sctx)
	}
	if err := a.Start(ctx); err != nil {
		_ = stop()
		return fail("start the daemon: %v", err)
	}
	base := "http://" + a.Addr()
	d := &daemon{
		base: base, token: token, adminToken: adminToken,
		bbSecret: secrets.BitbucketWebhookSecrets[0], jiraSecret: secrets.JiraWebhookSecrets[0],
		client:         &http.Client{Timeout: 30 * time.Second},
		processTimeout: o.processTimeout,
	}
	rp := &replay{
		p: p, sb: sb, d: d, clk: clk, pause: o.pause,
		findings: func(ctx context.Context) ([]model.Finding, error) {
			return a.Store().ListFindings(ctx, store.FindingFilter{})
		},
	}

	shownToken, shownAdmin := token, adminToken
	if tokenFromEnv {
		shownToken = ""
	}
	if adminFromEnv {
		shownAdmin = ""
	}
	intro(p, o, moved, dir, base, shownToken, shownAdmin, sb, org)
	if err := rp.run(ctx); err != nil {
		if ctx.Err() != nil { // Ctrl-C during the replay: a normal stop
			p.blank()
			p.say("", "Interrupted; stopping.")
			return stopped(stop(), stderr)
		}
		keep = o.data == ""
		code := fail("the sample week stopped: %v", err)
		if !o.verbose {
			fmt.Fprintf(stderr, "rolekeeper demo: the daemon's log is %s\n", filepath.Join(dir, "rolekeeper.log"))
		}
		_ = stop()
		return code
	}
	reportFile := saveReport(ctx, d, filepath.Join(dir, "reports"))
	outro(p, o, base, rp, reportFile, sb)
	if inspect != nil {
		inspect(&session{app: a, sb: sb, replay: rp, daemon: d})
	}
	if !o.noWait {
		<-ctx.Done()
		p.blank()
		p.say("", "Stopping rolekeeper (graceful: stop accepting, drain the inbox, close the store).")
	}
	return stopped(stop(), stderr)
}

// daemonConfig is the daemon's configuration for the demo: SQLite in dir,
// the sandbox as upstream with its credentials (so not dry-run), generated
// webhook secrets, no schedule (the replay is the week), quick retries.
func daemonConfig(addr, dir, token, adminToken string, sb *sandbox) (config.Config, config.Secrets) {
	cfg := config.Default()
	cfg.Listen = addr
	cfg.PublicURL = "http://" + addr
	cfg.Store = config.Store{Driver: config.DriverSQLite, DSN: filepath.Join(dir, "rolekeeper.db")}
	cfg.Bitbucket.BaseURL = sb.bb.URL()
	cfg.Bitbucket.Workspace = "reloadly"
	cfg.Bitbucket.Timeout = 10 * time.Second
	cfg.Jira.BaseURL = sb.jira.URL()
	cfg.Schedule.Audit, cfg.Schedule.WeeklyReport = "", ""
	cfg.Reports.Dir = filepath.Join(dir, "reports")
	cfg.Inbox.BaseBackoff, cfg.Inbox.MaxBackoff = 100*time.Millisecond, 2*time.Second
	cfg.Log = config.Log{Level: "info", Format: config.LogConsole}
	return cfg, config.Secrets{
		BitbucketUsername:       sb.bbUser,
		BitbucketToken:          sb.bbToken,
		BitbucketWebhookSecrets: []string{randomHex(20)},
		JiraEmail:               sb.jiraEmail,
		JiraToken:               sb.jiraTok,
		JiraWebhookSecrets:      []string{randomHex(20)},
		APIToken:                token,
		AdminToken:              adminToken,
	}
}

func stopped(err error, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintf(stderr, "rolekeeper demo: graceful stop incomplete: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// dataDir returns the directory to work in: the one given, which must be
// empty (a replay into an old database would collide with it), or a new
// temporary one that cleanup removes.
func dataDir(given string) (dir string, cleanup func(), err error) {
	if given == "" {
		dir, err = os.MkdirTemp("", "rolekeeper-demo-")
		if err != nil {
			return "", nil, err
		}
		return dir, func() { _ = os.RemoveAll(dir) }, nil
	}
	dir, err = filepath.Abs(given)
	if err != nil {
		return "", nil, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
	case err != nil:
		return "", nil, err
	case len(entries) > 0:
		return "", nil, fmt.Errorf("--data %s is not empty: give an empty or new directory (the week is replayed into a fresh database)", given)
	}
	return dir, func() {}, nil
}

// pickAddr returns listen when it is free, else a free port on 127.0.0.1
// (the public URL, posted in links, needs the real port before the
// daemon starts).
func pickAddr(listen string) (string, error) {
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "0" {
		if ln, err := net.Listen("tcp", listen); err == nil {
			_ = ln.Close()
			return listen, nil
		}
	}
	host := "127.0.0.1"
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		host = h
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("no free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// saveReport writes the week's HTML report into dir, so that a browser can
// open it without the API token; "" when it could not.
func saveReport(ctx context.Context, d *daemon, dir string) string {
	b, err := d.weeklyReport(ctx, weekName, "html")
	if err != nil {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	path := filepath.Join(dir, "rolekeeper-report-"+weekName+".html")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return ""
	}
	return path
}

func intro(p printer, o options, moved bool, dir, base, token, adminToken string, sb *sandbox, org *roles.Org) {
	p.say("", "rolekeeper demo — a sample week at %s, replayed against a sandbox Bitbucket and Jira", org.Organization)
	p.blank()
	p.say("  rolekeeper   ", "%s — the built-in roles.yaml (%d people, %d teams)", base, len(org.People), len(org.Teams))
	if moved {
		p.say("               ", "(%s is taken, so a free port is used)", o.listen)
	}
	if o.verbose {
		p.say("  data         ", "%s — rolekeeper.db (SQLite), reports/", dir)
	} else {
		p.say("  data         ", "%s — rolekeeper.db (SQLite), rolekeeper.log (the daemon's log), reports/", dir)
	}
	if o.data == "" {
		p.say("               ", "temporary: removed at the end (keep it with --data DIR)")
	}
	p.say("  Bitbucket    ", "%s (sandbox; rolekeeper writes here with its credentials: not dry-run)", sb.bb.URL())
	p.say("  Jira         ", "%s (sandbox)", sb.jira.URL())
	if token == "" {
		p.say("  API token    ", "the one in %s (pipelines: gates only)", config.EnvAPIToken)
	} else {
		p.raw("  API token    ", "export %s=%s   # pipelines: gates only", config.EnvAPIToken, token)
	}
	if adminToken == "" {
		p.say("  admin token  ", "the one in %s (the rest of /api/v1)", config.EnvAdminToken)
	} else {
		p.raw("  admin token  ", "export %s=%s   # the rest of /api/v1", config.EnvAdminToken, adminToken)
	}
	kofi := org.Person("kofi")
	_, until := kofi.AwayAt(weekStart)
	p.say("  the week     ", "Mon 21 – Wed 23 Dec 2026 (%s); %s is away until %s", weekName, kofi.DisplayName(), until.Format("2 Jan 2006"))
	p.say("  ", "Every event below is a signed webhook to POST /webhooks/…; what rolekeeper decided is read back from GET /api/v1/decisions, what it did from the sandbox.")
}

func outro(p printer, o options, base string, rp *replay, reportFile string, sb *sandbox) {
	auth := `-H "Authorization: Bearer $ROLEKEEPER_ADMIN_TOKEN"`
	pipeline := `-H "Authorization: Bearer $ROLEKEEPER_API_TOKEN"`
	p.blank()
	p.raw("", "%s", strings.Repeat("═", width))
	p.say("", "The week is replayed: %d decisions, each with its reasons. Try:", len(rp.decisions))
	p.blank()
	p.say("  ", "the weekly report (the API needs the admin token; export it as printed above):")
	p.raw("    ", "%s/api/v1/reports/weekly?week=%s&format=html", base, weekName)
	p.raw("    ", "curl %s '%s/api/v1/reports/weekly?week=%s&format=md'", auth, base, weekName)
	if reportFile != "" {
		p.raw("    ", "file://%s", filepath.ToSlash(reportFile))
	}
	if len(rp.decisions) > 0 {
		p.say("  ", "every decision has a public page (add ?format=text for plain text):")
		p.raw("    ", "%s … %s", rp.decisions[0], rp.decisions[len(rp.decisions)-1])
	}
	p.say("  ", "the API:")
	p.raw("    ", "curl %s '%s/api/v1/decisions?repository=%s&pr=%d'", auth, base, repoPayments, rp.prs["refunds"])
	if rp.gateID != "" {
		p.raw("    ", "curl %s %s/api/v1/gates/%s", pipeline, base, rp.gateID)
	}
	p.raw("    ", "curl %s '%s/api/v1/deliveries?state=done'", auth, base)
	p.say("  ", "the sandbox, as rolekeeper left it:")
	p.raw("    ", "curl -u '%s:%s' %s/repositories/%s/pullrequests/%d/comments",
		sb.bbUser, sb.bbToken, sb.bb.URL(), repoPayments, rp.prs["refunds"])
	p.raw("    ", "curl -u '%s:%s' %s/rest/api/2/issue/%s", sb.jiraEmail, sb.jiraTok, sb.jira.URL(), rp.epic)
	p.say("  ", "health and metrics:")
	p.raw("    ", "curl %s/readyz", base)
	p.raw("    ", "curl -s %s/metrics | grep ^rolekeeper_", base)
	if o.noWait {
		return
	}
	p.blank()
	p.say("", "rolekeeper keeps running; press Ctrl-C to stop.")
}
