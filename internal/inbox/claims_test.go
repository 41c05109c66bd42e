package inbox

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

// TestInboxModelInMemory runs the store-level model test (random crashes,
// lease expiries, renewals, stale heartbeats) on the in-memory store; the
// store conformance suite runs it on SQLite and PostgreSQL.
func TestInboxModelInMemory(t *testing.T) {
	storetest.InboxModel(t, &memStore{})
}

// TestRenewalKeepsTheClaim: a delivery processed for several leases is
// renewed meanwhile, so another replica polling all along never gets it.
func TestRenewalKeepsTheClaim(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		st := newStore(t)
		// Renewed every third of the lease: a renewal would have to be late
		// by more than 300 ms for the thief to succeed (150 ms had been
		// overtaken on a loaded machine).
		const lease = 450 * time.Millisecond
		proc := &fakeProc{fn: func(ctx context.Context, _ store.Delivery, _ int) error {
			select {
			case <-time.After(4 * lease):
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}}
		run, err := New(Options{Store: st, Processor: proc, Registerer: prometheus.NewRegistry(), Lease: lease, WorkerID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: "slow", EventKey: "repo:push", ReceivedAt: time.Now()}
		if _, err := st.Enqueue(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		var stolen atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(lease / 5):
				}
				got, err := st.Claim(context.Background(), store.ClaimRequest{Worker: "b", Now: time.Now(), Lease: lease, Limit: 1})
				if err != nil {
					t.Error(err)
					return
				}
				stolen.Add(int64(len(got)))
			}
		})
		n, err := run.RunOnce(context.Background())
		close(stop)
		wg.Wait()
		if err != nil || n != 1 {
			t.Fatalf("RunOnce = %d, %v", n, err)
		}
		if stolen.Load() != 0 {
			t.Errorf("another worker claimed the delivery %d times while it was renewed", stolen.Load())
		}
		got, err := st.GetDelivery(context.Background(), d.Seq)
		if err != nil || got.State != store.DeliveryDone || got.Attempts != 1 {
			t.Errorf("after processing: %+v, %v", got, err)
		}
	})
}

// TestLostClaimStopsTheWorker: when another worker takes the delivery (the
// holder's lease passed during a long wait), the holder's processing is
// cancelled at its next renewal, it writes nothing for the delivery, and it
// says so in the log.
func TestLostClaimStopsTheWorker(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		st := newStore(t)
		const lease = 150 * time.Millisecond
		started := make(chan store.Delivery, 1)
		var cause atomic.Value
		proc := &fakeProc{fn: func(ctx context.Context, d store.Delivery, _ int) error {
			started <- d
			<-ctx.Done()
			cause.Store(context.Cause(ctx))
			return ctx.Err()
		}}
		core, logs := observer.New(zap.WarnLevel)
		reg := prometheus.NewRegistry()
		run, err := New(Options{Store: st, Processor: proc, Registerer: reg, Lease: lease, WorkerID: "a", Logger: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: "taken", EventKey: "repo:push", ReceivedAt: time.Now()}
		if _, err := st.Enqueue(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := run.RunOnce(context.Background()); done <- err }()
		<-started
		// Another worker takes it over, as after a lease that passed.
		got, err := st.Claim(context.Background(), store.ClaimRequest{Worker: "b", Now: time.Now().Add(time.Hour), Lease: time.Hour, Limit: 1})
		if err != nil || len(got) != 1 {
			t.Fatalf("take over: %v, %v", got, err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the worker went on after losing its claim")
		}
		if c, _ := cause.Load().(error); !errors.Is(c, store.ErrLostClaim) {
			t.Errorf("processing cancelled with %v, want ErrLostClaim", c)
		}
		after, err := st.GetDelivery(context.Background(), d.Seq)
		if err != nil || after.State != store.DeliveryProcessing || after.ClaimedBy != "b" || after.ClaimToken != got[0].ClaimToken {
			t.Errorf("the new holder's claim was touched: %+v, %v", after, err)
		}
		if logs.FilterMessageSnippet("lost the claim").Len() != 1 {
			t.Errorf("log: %v, want one 'lost the claim'", logs.All())
		}
		if n := testutil.ToFloat64(run.metrics.lost); n != 1 {
			t.Errorf("rolekeeper_inbox_lost_claims_total = %v, want 1", n)
		}
		// The new holder settles it normally.
		if err := st.Complete(context.Background(), store.ClaimOf(got[0]), time.Now()); err != nil {
			t.Errorf("Complete by the new holder: %v", err)
		}
	})
}

// TestHeartbeatTakeover: the claims of a replica that stopped beating are
// taken StaleAfter after its last heartbeat, long before their leases end.
func TestHeartbeatTakeover(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{Lease: 2 * time.Minute, StaleAfter: 15 * time.Second})
		f.enqueue(t, "a")
		ctx := context.Background()
		if err := f.st.Heartbeat(ctx, "dead", f.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if got, err := f.st.Claim(ctx, store.ClaimRequest{Worker: "dead", Now: f.clk.Now(), Lease: 2 * time.Minute, Limit: 1}); err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %v", got, err)
		}
		f.clk.Add(14 * time.Second)
		if n := f.runOnce(t); n != 0 {
			t.Fatal("took a delivery of a replica still beating")
		}
		f.clk.Add(time.Second)
		if n := f.runOnce(t); n != 1 {
			t.Fatal("did not take over 15 s after the last heartbeat")
		}
		if d := f.get(t, "a"); d.State != store.DeliveryDone || d.Attempts != 2 {
			t.Errorf("state %s attempts %d", d.State, d.Attempts)
		}
	})
}

// TestRecoverReleasesClaimsAtOnce: a process killed while processing left
// a claim with a long lease; the next owner of the SQLite file releases it
// at start and processes it without waiting. A second owner is refused.
func TestRecoverReleasesClaimsAtOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rk.db")
	first, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Own(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: "in-flight", EventKey: "repo:push", ReceivedAt: time.Now()}
	if _, err := first.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got, err := first.Claim(ctx, store.ClaimRequest{Worker: "killed", Now: time.Now(), Lease: time.Hour, Limit: 1}); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}

	second, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	proc := &fakeProc{}
	run, err := New(Options{Store: second, Processor: proc, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Recover(ctx); !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("Recover while another process owns the file: %v, want ErrInUse", err)
	}
	first.Close() // the kernel releases the lock of a killed process the same way

	start := time.Now()
	if err := run.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := run.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce after Recover = %d, %v; want the released delivery", n, err)
	}
	t.Logf("in-flight delivery processed again %s after the restart", time.Since(start).Round(time.Millisecond))
	if got, _ := second.GetDelivery(ctx, d.Seq); got.State != store.DeliveryDone || proc.count(d.Seq) != 1 {
		t.Errorf("after recovery: %+v", got)
	}
}
