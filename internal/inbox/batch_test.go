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
		// Each worker looks once at start and finds nothing; then they wait.
		for counted.empty.Load() < 4 {
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
		if _, ok := counted.limits.Load(4); !ok {
			t.Error("no claim asked for four deliveries (one per idle worker)")
		}
		for i := range 4 {
			if d := f.get(t, fmt.Sprintf("d%d", i)); d.State != store.DeliveryDone {
				t.Errorf("d%d: %s, want done", i, d.State)
			}
		}
	})
}
