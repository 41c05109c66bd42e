package replicatest

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// inFlight sends n pull requests to p with Bitbucket holding every
// request (a slow upstream), and waits until n requests of theirs are
// held, so that deliveries are in flight when a process is killed.
func inFlight(ctx context.Context, t *testing.T, bb *bitbuckettest.Server, p *Process, n int) {
	t.Helper()
	bb.Hold()
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range n {
		d := Event(bb, secret, "pullrequest:created", OpenPR(bb, 1000+i))
		code, err := Post(ctx, client, p.URL()+"/webhooks/bitbucket", d)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("delivery %d: %d, %v", i, code, err)
		}
	}
	for bb.Held() < n {
		if ctx.Err() != nil {
			t.Fatalf("only %d requests in flight, want %d", bb.Held(), n)
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
	opts := Options{Binary: bin, Dir: filepath.Join(dir, "rk"), Name: "first", BitbucketURL: bb.URL(), WebhookSecret: secret, Extra: recoveryExtra}
	first, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Kill() })
	const n = 4
	inFlight(ctx, t, bb, first, n)
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	bb.Release()

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
	start := func(name string) *Process {
		p, err := Start(ctx, Options{Binary: bin, Dir: filepath.Join(dir, name), Name: name, Store: "postgres", DSN: schema.DSN,
			BitbucketURL: bb.URL(), WebhookSecret: secret, Extra: recoveryExtra})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	victim := start("victim")
	t.Cleanup(func() { _ = victim.Kill() })
	const n = 4
	inFlight(ctx, t, bb, victim, n) // before the survivor exists: the victim holds them all
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
	bb.Release()

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
