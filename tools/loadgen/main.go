// Command loadgen measures rolekeeper's webhook intake: it pre-builds N
// distinct signed Bitbucket deliveries (bodies rendered by the in-process
// fake Bitbucket, a unique X-Request-UUID each) and fires them over C
// keep-alive connections, then reports req/s, latency percentiles and
// status codes.
//
//	go run ./tools/loadgen --spawn --bare                  # SQLite daemon vs a bare HMAC handler
//	go run ./tools/loadgen --spawn --bare --store postgres # the same on Postgres
//	go run ./tools/loadgen --spawn --upstream --wrk 10s    # + upstream calls per event, + wrk
//	go run ./tools/loadgen --url http://127.0.0.1:8080/webhooks/bitbucket --secret S
//
// --spawn builds and starts `rolekeeper serve` in a temporary directory,
// pointed at the fake Bitbucket, so that its workers really process what
// the intake stored; at the end it checks every delivery was stored, waits
// for the inbox to drain and reads the daemon's peak RSS. Loopback only;
// every run is bounded by -n and --duration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/replicatest"
)

type options struct {
	url, secret   string
	n, conns, prs int
	warmup        int
	maxDur        time.Duration
	bare, spawn   bool
	floor         string
	store, dsn    string
	binary        string
	workers       int
	logLevel      string
	upstream      bool
	wrkDur        time.Duration
	wrkThreads    int
	drain         time.Duration
	keep          bool
	unowned       bool
	rounds        int
	env           envList
	flood         int
	floodBytes    int64
	rate          float64
}

// envList collects --env KEY=VALUE flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "webhook `URL` of a running daemon (loopback only), e.g. http://127.0.0.1:8080/webhooks/bitbucket")
	fs.StringVar(&o.secret, "secret", "", "webhook secret (default $ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET; with --spawn a random one)")
	fs.IntVar(&o.n, "n", 20000, "deliveries to send per run")
	fs.IntVar(&o.conns, "c", 16, "concurrent keep-alive connections")
	fs.IntVar(&o.prs, "prs", 200, "distinct pull requests the deliveries are about (first delivery of each: created, then updated)")
	fs.IntVar(&o.warmup, "warmup", 500, "deliveries sent before each measured run, not counted")
	fs.DurationVar(&o.maxDur, "duration", 60*time.Second, "upper bound of each run")
	fs.BoolVar(&o.bare, "bare", false, "also measure a bare handler (HMAC check, 202) started in this process")
	fs.StringVar(&o.floor, "floor", "", "also measure a durable floor started in this process: the bare handler that stores each delivery before its 202, in groups, in a `file`, in one `sqlite` table, in a file `journal` a mover copies into that table, or in one `postgres` table (the tables keyed by the delivery id)")
	fs.IntVar(&o.rounds, "rounds", 4, "with --bare or --floor: alternate them and the daemon in this many rounds of n/rounds deliveries")
	fs.BoolVar(&o.spawn, "spawn", false, "build and start `rolekeeper serve` against an in-process fake Bitbucket")
	fs.StringVar(&o.store, "store", "sqlite", "with --spawn: sqlite or postgres")
	fs.StringVar(&o.dsn, "dsn", replicatest.PostgresDSN(), "with --store postgres: the database (a schema of its own is created and dropped)")
	fs.StringVar(&o.binary, "binary", "", "with --spawn: a built rolekeeper (default: go build ./cmd/rolekeeper)")
	fs.IntVar(&o.workers, "workers", 4, "with --spawn: inbox.workers")
	fs.StringVar(&o.logLevel, "log-level", "info", "with --spawn: log.level of the daemon")
	fs.BoolVar(&o.upstream, "upstream", false, "with --spawn: count upstream calls for a new PR, the same event again, a redelivery, an approval")
	fs.DurationVar(&o.wrkDur, "wrk", 0, "also run wrk for this long (0: no)")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 2, "wrk threads")
	fs.DurationVar(&o.drain, "drain", 2*time.Minute, "with --spawn: how long to wait for the inbox to drain")
	fs.BoolVar(&o.unowned, "unowned", false, "deliveries about a repository no team owns: the workers parse and skip them, so the intake is measured without the pull-request workflow competing for CPU and the store")
	fs.IntVar(&o.flood, "flood", 0, "with --spawn: instead of the load, send this many unsigned bodies of --flood-bytes over -c connections and report the daemon's peak RSS")
	fs.Int64Var(&o.floodBytes, "flood-bytes", 5<<20, "with --flood: body size")
	fs.Var(&o.env, "env", "with --spawn: `KEY=VALUE` added to the daemon's environment (repeatable)")
	fs.Float64Var(&o.rate, "rate", 0, "send at this many requests per second (an open loop; latency counts from each request's due time) instead of as fast as -c connections allow")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, logs, SQLite file)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}
	if err := o.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	return 0
}

func (o *options) check() error {
	switch {
	case o.spawn == (o.url != ""):
		return errors.New("give exactly one of --url and --spawn")
	case o.n <= 0 || o.conns <= 0 || o.prs <= 0 || o.warmup < 0 || o.rate < 0:
		return errors.New("-n, -c and --prs must be positive")
	case o.maxDur <= 0 || o.maxDur > 10*time.Minute:
		return errors.New("--duration must be in (0, 10m]")
	case o.store != "sqlite" && o.store != "postgres":
		return fmt.Errorf("--store %q: sqlite or postgres", o.store)
	case o.floor != "" && floors[o.floor].open == nil:
		return fmt.Errorf("--floor %q: file, sqlite, journal or postgres", o.floor)
	case o.upstream && !o.spawn:
		return errors.New("--upstream needs --spawn (it counts calls on the in-process fake)")
	case o.wrkDur < 0 || o.wrkDur > 5*time.Minute:
		return errors.New("--wrk must be in [0, 5m]")
	}
	if o.url != "" {
		if err := loopback(o.url); err != nil {
			return err
		}
	}
	if o.secret == "" {
		o.secret = os.Getenv("ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET")
	}
	if o.secret == "" {
		if !o.spawn {
			return errors.New("--secret (or ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET) is required with --url")
		}
		o.secret = "loadgen-" + strings.Trim(replicatest.NewUUID(), "{}")
	}
	return nil
}

// loopback refuses any URL that is not on this machine.
func loopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("--url %q is not an http URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--url %q: loopback addresses only (127.0.0.1, ::1, localhost)", raw)
}

// deliveries builds n deliveries about prs pull requests of the fake: the
// first about each is pullrequest:created, the next ones
// pullrequest:updated, as a busy repository sends them. Bodies and
// signatures are shared; every delivery id is new.
type corpus struct {
	bb      *bitbuckettest.Server
	secret  string
	ids     []int
	created []replicatest.Delivery
	updated []replicatest.Delivery
	next    int // deliveries handed out so far
}

func newCorpus(bb *bitbuckettest.Server, secret, repo string, prs int) *corpus {
	c := &corpus{bb: bb, secret: secret}
	for i := range prs {
		id := replicatest.OpenPRIn(bb, repo, i+1)
		c.ids = append(c.ids, id)
		c.created = append(c.created, replicatest.EventIn(bb, secret, "pullrequest:created", repo, id))
		c.updated = append(c.updated, replicatest.EventIn(bb, secret, "pullrequest:updated", repo, id))
	}
	return c
}

// unownedRepo is in no team of roles.yaml.
const unownedRepo = "reloadly/loadgen-unowned"

// take returns the next n deliveries of the sequence.
func (c *corpus) take(n int) []replicatest.Delivery {
	out := make([]replicatest.Delivery, n)
	for i := range out {
		k := c.next + i
		d := c.updated[k%len(c.ids)]
		if k < len(c.ids) {
			d = c.created[k]
		}
		d.UUID = replicatest.NewUUID()
		out[i] = d
	}
	c.next += n
	return out
}

func (o *options) run(ctx context.Context, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "rolekeeper-loadgen-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(stderr, "loadgen: keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	load0 := loadAvg()

	bb := bitbuckettest.New()
	defer bb.Close()
	if err := replicatest.AddPeople(bb); err != nil {
		return err
	}
	repo := replicatest.Repo
	if o.unowned {
		repo = unownedRepo
	}
	c := newCorpus(bb, o.secret, repo, o.prs)
	// Bodies for the measured run and the bare run are the same sequence;
	// the bare handler stores nothing, so ids may repeat there.
	warm, measured := c.take(o.warmup), c.take(o.n)
	fmt.Fprintf(stderr, "loadgen: %d deliveries built (%d pull requests, body %d bytes)\n", len(warm)+len(measured), o.prs, len(measured[0].Body))

	var d *daemon
	target := o.url
	name := "daemon at " + o.url
	if o.spawn {
		d, err = o.startDaemon(ctx, dir, bb, stderr)
		if err != nil {
			return err
		}
		defer d.close(stderr)
		target = d.proc.URL() + "/webhooks/bitbucket"
		name = "rolekeeper (" + o.store + ")"
	}

	if o.flood > 0 {
		if d == nil {
			return errors.New("--flood needs --spawn (it reads the daemon's RSS)")
		}
		return o.runFlood(ctx, d, target, load0, stdout)
	}
	rep := report{opts: o, load0: load0, bodyBytes: len(measured[0].Body)}
	if d != nil && o.upstream {
		// On the fresh daemon, before the load: each event must be the
		// only one in flight for its calls to be counted.
		u, err := measureUpstream(ctx, bb, d, o.secret)
		if err != nil {
			return err
		}
		rep.upstream = &u
	}
	// With --bare or --floor the targets are measured in alternating
	// rounds, so that a change in the machine's background load hits them
	// alike.
	rounds := 1
	if o.bare {
		if rep.bare, err = o.startReference(ctx, bareName, nil, warm); err != nil {
			return err
		}
		defer rep.bare.srv.Close()
		rounds = max(1, min(o.rounds, o.n))
	}
	if o.floor != "" {
		log, err := floors[o.floor].open(ctx, o, dir)
		if err != nil {
			return err
		}
		if rep.floor, err = o.startReference(ctx, floorName, log, warm); err != nil {
			log.Close()
			return err
		}
		defer rep.floor.srv.Close()
		rounds = max(1, min(o.rounds, o.n))
	}
	refs := slices.DeleteFunc([]*reference{rep.bare, rep.floor}, func(r *reference) bool { return r == nil })
	loadStart := time.Now()
	if d != nil {
		rep.cpu0 = cpuTime(d.proc.PID())
	}
	if w := runLoad(ctx, "warm-up", target, warm, o.conns, o.maxDur, 0); o.spawn {
		rep.warm202 = w.Codes[202]
	}
	rep.target = result{Name: name}
	// measure adds a round of chunk sent to url to res, within --duration.
	measure := func(res *result, url string, chunk []replicatest.Delivery) {
		if res.Elapsed < o.maxDur {
			*res = merge(*res, runLoad(ctx, res.Name, url, chunk, o.conns, o.maxDur-res.Elapsed, o.rate))
		}
	}
	for k := range rounds {
		chunk := measured[k*len(measured)/rounds : (k+1)*len(measured)/rounds]
		for _, ref := range refs {
			measure(&ref.res, ref.srv.URL(), chunk)
		}
		measure(&rep.target, target, chunk)
	}
	for _, ref := range refs {
		fmt.Fprintf(stderr, "loadgen: %s: %.0f req/s\n", ref.res.Name, ref.res.RPS())
	}
	fmt.Fprintf(stderr, "loadgen: %s: %.0f req/s\n", name, rep.target.RPS())
	if ctx.Err() != nil {
		return ctx.Err()
	}

	if o.wrkDur > 0 {
		wd := replicatest.EventIn(bb, o.secret, "pullrequest:created", repo, replicatest.OpenPRIn(bb, repo, o.prs+1))
		for _, ref := range refs {
			w, err := runWrk(ctx, dir, ref.srv.URL(), wd, o.wrkThreads, o.conns, o.wrkDur)
			if err != nil {
				return err
			}
			ref.wrk = &w
		}
		w, err := runWrk(ctx, dir, target, wd, o.wrkThreads, o.conns, o.wrkDur)
		if err != nil {
			return err
		}
		rep.wrk = &w
	}

	if d != nil {
		if err := d.settle(ctx, o, &rep, loadStart, stderr); err != nil {
			return err
		}
		if rep.peakRSS, err = d.proc.PeakRSS(); err != nil {
			return err
		}
	}
	rep.load1 = loadAvg()
	rep.print(stdout)
	if d != nil && rep.stored < rep.answered() {
		return fmt.Errorf("%d deliveries answered 202, only %d stored", rep.answered(), rep.stored)
	}
	return nil
}

// reference is a server the daemon is measured against (the bare handler
// or the durable floor) and what it measured.
type reference struct {
	srv *bareServer
	res result
	wrk *wrkResult
}

// startReference starts the bare handler (with a log, the durable floor)
// and warms it up.
func (o *options) startReference(ctx context.Context, name string, log floorStore, warm []replicatest.Delivery) (*reference, error) {
	srv, err := startBare(o.secret, log)
	if err != nil {
		return nil, err
	}
	runLoad(ctx, "warm-up", srv.URL(), warm, o.conns, o.maxDur, 0)
	return &reference{srv: srv, res: result{Name: name}}, nil
}

// daemon is the spawned rolekeeper and what it needs.
type daemon struct {
	proc   *replicatest.Process
	schema *replicatest.Schema
	client *http.Client
}

func (o *options) startDaemon(ctx context.Context, dir string, bb *bitbuckettest.Server, stderr io.Writer) (*daemon, error) {
	bin := o.binary
	if bin == "" {
		fmt.Fprintln(stderr, "loadgen: go build ./cmd/rolekeeper")
		var err error
		if bin, err = replicatest.Build(ctx, dir); err != nil {
			return nil, err
		}
	}
	d := &daemon{client: newClient(4)}
	opts := replicatest.Options{
		Binary: bin, Dir: filepath.Join(dir, "daemon"), Name: "rolekeeper", Store: o.store,
		BitbucketURL: bb.URL(), WebhookSecret: o.secret, LogLevel: o.logLevel,
		// No scheduled jobs: they would add their own load and upstream calls.
		Env:   o.env,
		Extra: fmt.Sprintf("inbox:\n  workers: %d\nschedule:\n  audit: \"\"\n  weekly_report: \"\"\n", o.workers),
	}
	if o.store == "postgres" {
		s, err := replicatest.NewSchema(ctx, o.dsn, "rk_loadgen_")
		if err != nil {
			return nil, err
		}
		d.schema, opts.DSN = s, s.DSN
	}
	p, err := replicatest.Start(ctx, opts)
	if err != nil {
		d.close(stderr)
		return nil, err
	}
	p.KeepLogs(false) // one line per delivery: the log file has them
	d.proc = p
	fmt.Fprintf(stderr, "loadgen: rolekeeper pid %d at %s (log %s)\n", p.PID(), p.Addr(), p.LogPath())
	return d, nil
}

func (d *daemon) close(stderr io.Writer) {
	if d.proc != nil {
		if err := d.proc.Stop(30 * time.Second); err != nil {
			fmt.Fprintf(stderr, "loadgen: stop rolekeeper: %v\n", err)
		}
	}
	if d.schema != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.schema.Drop(ctx); err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
		}
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s/%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
