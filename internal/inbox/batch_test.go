package inbox

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// countingClaims counts the Claim calls that returned deliveries.
type countingClaims struct {
	store.Inbox
	claims atomic.Int64
	empty  atomic.Int64 // calls that found nothing due
	limits sync.Map     // limit → true
}

func (c *countingClaims) Claim(ctx context.Context, req store.ClaimRequest) ([]store.Delivery, error) {
	ds, err := c.Inbox.Claim(ctx, req)
	if len(ds) > 0 {
		c.claims.Add(1)
		c.limits.Store(req.Limit, true)
	} else {
		c.empty.Add(1)
	}
	return ds, err
}

// TestIdleWorkersShareOneClaim: four idle workers and four due deliveries
// take one claim (one store transaction), and each worker processes one of
// them at the same time as the others.
func TestIdleWorkersShareOneClaim(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		counted := &countingClaims{}
		f := setup(t, func(t *testing.T) store.Inbox { counted.Inbox = newStore(t); return counted }, Options{
			Workers: 4,
			After:   func(time.Duration) <-chan time.Time { return nil }, // no polling: only Notify wakes a worker
		})
		var started sync.WaitGroup
		started.Add(4)
		all := make(chan struct{})
		f.proc.fn = func(ctx context.Context, _ store.Delivery, _ int) error {
			started.Done()
			select { // every delivery is held until all four run at once
			case <-all:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		f.run.Start(context.Background())
		deadline := time.Now().Add(10 * time.Second)
		// Each worker looks at start and finds nothing; then they wait.
		for !f.run.settled() || counted.empty.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the workers never went idle")
			}
			time.Sleep(time.Millisecond)
		}
		for i := range 4 {
			f.enqueue(t, fmt.Sprintf("d%d", i))
		}
		f.run.Notify()
		go func() { started.Wait(); close(all) }()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Fatal("the four deliveries were not processed at the same time")
		}
		if err := f.run.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := counted.claims.Load(); n != 1 {
			t.Errorf("%d claims took the four deliveries, want 1", n)
		}
		asked := 0
		counted.limits.Range(func(k, _ any) bool { asked = max(asked, k.(int)); return true })
		if asked < 4 {
			t.Errorf("the claim asked for %d deliveries, want at least four (one per idle worker)", asked)
		}
		for i := range 4 {
			if d := f.get(t, fmt.Sprintf("d%d", i)); d.State != store.DeliveryDone {
				t.Errorf("d%d: %s, want done", i, d.State)
			}
		}
	})
}

// TestWaitedClaimIsRenewedOrDropped: a delivery claimed for an idle worker
// that waited until its claim could lapse is renewed before it is
// processed, and not processed at all when another worker took it.
func TestWaitedClaimIsRenewedOrDropped(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		const lease = 30 * time.Second
		f := setup(t, newStore, Options{Workers: 2, Lease: lease})
		f.enqueue(t, "kept", "taken")
		ds, err := f.st.Claim(context.Background(), store.ClaimRequest{Worker: f.run.WorkerID(), Now: f.clk.Now(), Lease: lease, Limit: 2})
		if err != nil || len(ds) != 2 {
			t.Fatalf("claim: %v, %v", ds, err)
		}
		f.run.batch, f.run.held = ds, 2 // as if claimed for two idle workers that got busy

		f.clk.Add(lease * 2 / 3) // "kept": close to lapsing, still held
		if n, err := f.run.claimOne(context.Background()); err != nil || n != 1 {
			t.Fatalf("claimOne = %d, %v", n, err)
		}
		if d := f.get(t, "kept"); d.State != store.DeliveryDone || f.proc.count(d.Seq) != 1 {
			t.Errorf("kept: %s after %d calls, want done after 1", d.State, f.proc.count(d.Seq))
		}

		f.clk.Add(lease) // "taken": lapsed, and another worker claims it
		other, err := f.st.Claim(context.Background(), store.ClaimRequest{Worker: "other", Now: f.clk.Now(), Lease: lease, Limit: 1})
		if err != nil || len(other) != 1 {
			t.Fatalf("take over: %v, %v", other, err)
		}
		if n, err := f.run.claimOne(context.Background()); err != nil || n != 1 {
			t.Fatalf("claimOne = %d, %v", n, err)
		}
		d := f.get(t, "taken")
		if f.proc.count(d.Seq) != 0 || d.ClaimedBy != "other" || d.State != store.DeliveryProcessing {
			t.Errorf("taken: processed %d times here, %s by %q; want 0, processing by other", f.proc.count(d.Seq), d.State, d.ClaimedBy)
		}
	})
}

// settled reports whether every worker is idle and no claim is held.
func (r *Runner) settled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idle.Load() == int64(r.opt.Workers) && r.held == 0
}

// TestClaimTakesAheadUnderABacklog: with deliveries waiting, a claim takes
// up to Workers more than there are idle workers, so one claim statement
// serves several deliveries; none is lost or processed twice, and a
// replica never holds more than 2×Workers claims.
func TestClaimTakesAheadUnderABacklog(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		counted := &countingClaims{}
		f := setup(t, func(t *testing.T) store.Inbox { counted.Inbox = newStore(t); return counted }, Options{Workers: 2})
		const n = 12
		for i := range n {
			f.enqueue(t, fmt.Sprintf("d%02d", i))
		}
		got, err := f.run.RunOnce(context.Background())
		if err != nil || got != n {
			t.Fatalf("RunOnce = %d, %v; want %d", got, err, n)
		}
		// RunOnce has no idle worker: each claim asks for 1 + Workers.
		if c := counted.claims.Load(); c > n/3 {
			t.Errorf("%d claims for %d deliveries, want at most %d (three a claim)", c, n, n/3)
		}
		counted.limits.Range(func(k, _ any) bool {
			if k.(int) > 2*f.run.opt.Workers {
				t.Errorf("a claim asked for %d deliveries, more than 2×Workers", k.(int))
			}
			return true
		})
		for i := range n {
			if d := f.get(t, fmt.Sprintf("d%02d", i)); d.State != store.DeliveryDone || d.Attempts != 1 {
				t.Errorf("d%02d: %s after %d attempts, want done after 1", i, d.State, d.Attempts)
			}
		}
	})
}
