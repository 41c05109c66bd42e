package replicatest

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// gate sits between the daemons and the fake Bitbucket: while held, every
// request waits (a slow upstream), so deliveries are in flight when a
// process is killed.
type gate struct {
	mu      sync.Mutex
	open    chan struct{}
	waiting atomic.Int64
	srv     *httptest.Server

	from, to []byte // the fake's address, the gate's
}

func newGate(t *testing.T, upstream string) *gate {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "" // the daemon's requests carry /2.0 already
	g := &gate{open: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(u)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) {
		direct(r)
		r.Header.Del("Accept-Encoding") // plain bodies, to rewrite their links
	}
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a killed daemon's requests end in errors: expected
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		g.waiting.Add(1)
		select {
		case <-open:
		case <-r.Context().Done(): // the daemon died
			g.waiting.Add(-1)
			return
		}
		g.waiting.Add(-1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	// The fake writes its own address into links (pagination, diffstat),
	// which the client follows only on the API host: point them at the gate.
	from, to := []byte("http://"+u.Host), []byte(g.srv.URL)
	g.from, g.to = from, to
	proxy.ModifyResponse = func(resp *http.Response) error {
		if loc := resp.Header.Get("Location"); loc != "" {
			resp.Header.Set("Location", string(bytes.ReplaceAll([]byte(loc), from, to)))
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, from, to)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	return g
}

func (g *gate) hold() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gate) URL() string { return g.srv.URL + "/2.0" }

// inFlight sends n pull requests to p with upstream held and waits until
// n requests of theirs are waiting on the gate.
func inFlight(ctx context.Context, t *testing.T, bb *bitbuckettest.Server, g *gate, p *Process, n int) {
	t.Helper()
	g.hold()
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range n {
		d := Event(bb, secret, "pullrequest:created", OpenPR(bb, 1000+i))
		d.Body = bytes.ReplaceAll(d.Body, g.from, g.to) // its links lead through the gate
		d.Signature = bitbuckettest.Sign(secret, d.Body)
		code, err := Post(ctx, client, p.URL()+"/webhooks/bitbucket", d)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("delivery %d: %d, %v", i, code, err)
		}
	}
	for g.waiting.Load() < int64(n) {
		if ctx.Err() != nil {
			t.Fatalf("only %d requests in flight, want %d", g.waiting.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDone polls st until want deliveries are done, and returns when.
func waitDone(ctx context.Context, t *testing.T, st store.Inbox, want int) time.Time {
	t.Helper()
	for {
		done, err := st.ListDeliveries(ctx, store.DeliveryDone, 0)
		if err == nil && len(done) >= want {
			return time.Now()
		}
		if ctx.Err() != nil {
			all, _ := st.ListDeliveries(context.Background(), "", 0)
			t.Fatalf("%d deliveries done, want %d (%v); all: %+v", len(done), want, err, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const recoveryExtra = `inbox:
  workers: 4
  lease: 2m
schedule:
  audit: ""
  weekly_report: ""
`

// TestRecoveryAfterKillSQLite kills `rolekeeper serve` (SIGKILL) while four
// deliveries are in flight and restarts it on the same SQLite file: the
// new process owns the file, releases the dead one's claims at start and
// processes them within 5 s, although their leases run 2 minutes. A
// second process on the same file is refused, saying why.
func TestRecoveryAfterKillSQLite(t *testing.T) {
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer bcancel()
	dir := t.TempDir()
	bin, err := Build(bctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	if err := AddPeople(bb); err != nil {
		t.Fatal(err)
	}
	g := newGate(t, bb.URL())
	opts := Options{Binary: bin, Dir: filepath.Join(dir, "rk"), Name: "first", BitbucketURL: g.URL(), WebhookSecret: secret, Extra: recoveryExtra}
	first, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Kill() })
	const n = 4
	inFlight(ctx, t, bb, g, first, n)
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	g.release()

	opts.Name = "second"
	second, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	startedAt := time.Now()
	t.Cleanup(func() {
		_ = second.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("first's log:\n%s\nsecond's log:\n%s", first.tail(30), second.tail(40))

		}
	})

	// The file is owned: a third process is refused at start.
	opts.Name = "third"
	refused := time.Now()
	if third, err := Start(ctx, opts); err == nil {
		_ = third.Kill()
		t.Error("a second process started on the SQLite file another one owns")
	} else if !strings.Contains(err.Error(), "in use by another rolekeeper process") {
		t.Errorf("second owner refused without saying why: %v", err)
	} else {
		t.Logf("a third process on the file was refused in %s: %s", time.Since(refused).Round(time.Millisecond),
			strings.SplitN(err.Error(), "\n", 2)[0])
	}

	st, err := sqlite.Open(ctx, filepath.Join(opts.Dir, "data", "rolekeeper.db")) // a reader: takes no ownership
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	doneAt := waitDone(ctx, t, st, n)
	after := doneAt.Sub(startedAt)
	t.Logf("SQLite: %d in-flight deliveries done %s after the restart listened (%s after SIGKILL, restart included)",
		n, after.Round(time.Millisecond), doneAt.Sub(killedAt).Round(time.Millisecond))
	if after > 5*time.Second {
		t.Errorf("recovery took %s after the restart, want within 5 s", after)
	}
	if got := second.Logs("released deliveries left in flight"); len(got) != 1 {
		t.Errorf("the restart did not say it released the dead run's claims: %v", got)
	}
}

// TestRecoveryAfterKillPostgres runs two replicas on PostgreSQL, kills one
// (SIGKILL) while it holds deliveries in flight with 2-minute leases, and
// checks that the survivor takes them over once the dead one's heartbeat is
// 15 s old: all done within 20 s of the kill.
func TestRecoveryAfterKillPostgres(t *testing.T) {
	pgtest.Require(t)
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer bcancel()
	dir := t.TempDir()
	bin, err := Build(bctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	schema, err := NewSchema(ctx, pgtest.BaseDSN(), "rk_recovery_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := schema.Drop(c); err != nil {
			t.Error(err)
		}
	})
	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	if err := AddPeople(bb); err != nil {
		t.Fatal(err)
	}
	g := newGate(t, bb.URL())
	start := func(name string) *Process {
		p, err := Start(ctx, Options{Binary: bin, Dir: filepath.Join(dir, name), Name: name, Store: "postgres", DSN: schema.DSN,
			BitbucketURL: g.URL(), WebhookSecret: secret, Extra: recoveryExtra})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	victim := start("victim")
	t.Cleanup(func() { _ = victim.Kill() })
	const n = 4
	inFlight(ctx, t, bb, g, victim, n) // before the survivor exists: the victim holds them all
	survivor := start("survivor")
	t.Cleanup(func() {
		_ = survivor.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("victim's log:\n%s\nsurvivor's log:\n%s", victim.tail(30), survivor.tail(40))
		}
	})
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	g.release()

	st, err := postgres.Open(ctx, schema.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	doneAt := waitDone(ctx, t, st, n)
	took := doneAt.Sub(killedAt)
	t.Logf("PostgreSQL: %d deliveries held by the killed replica done %s after SIGKILL", n, took.Round(time.Millisecond))
	if took > 20*time.Second {
		t.Errorf("takeover took %s, want within 20 s", took)
	}
	done, err := st.ListDeliveries(ctx, store.DeliveryDone, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range done {
		if d.Attempts != 2 {
			t.Errorf("delivery %d: %d attempts, want 2 (the victim's and the survivor's)", d.Seq, d.Attempts)
		}
	}
}
