package inbox

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
)

// upstream is the truth a processor consults, as rolekeeper reads
// Bitbucket's current state before acting: it creates an effect only when
// absent. Two runs of one delivery at once would both find it absent and
// create it twice.
type upstream struct {
	mu       sync.Mutex
	created  map[string]int
	inflight map[string]int
	overlaps atomic.Int64
	runs     atomic.Int64
}

func (u *upstream) process(ctx context.Context, d store.Delivery) error {
	u.runs.Add(1)
	u.mu.Lock()
	u.inflight[d.DeliveryID]++
	if u.inflight[d.DeliveryID] > 1 {
		u.overlaps.Add(1)
	}
	has := u.created[d.DeliveryID] > 0
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.inflight[d.DeliveryID]--
		u.mu.Unlock()
	}()
	if has {
		return nil
	}
	select { // the create's round trip: a window for a second run to slip in
	case <-time.After(2 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	u.mu.Lock()
	u.created[d.DeliveryID]++
	u.mu.Unlock()
	return nil
}

// TestPostgresConnectionsKilled sends 1,000 deliveries to two replicas on
// PostgreSQL while every connection of this test is killed
// (pg_terminate_backend, what a server restart does to clients, without
// stopping the shared server) five times: every delivery is acted on
// exactly once as the upstream counts it, none twice at once, none dead.
func TestPostgresConnectionsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	const (
		n       = 1000
		senders = 8
		kills   = 5
	)
	app := fmt.Sprintf("rk_fault_%d", time.Now().UnixNano())
	dsn := pgtest.SchemaDSN(t, "rk_fault_", "application_name", app)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	up := &upstream{created: map[string]int{}, inflight: map[string]int{}}
	stores := make([]*postgres.Store, 2)
	runners := make([]*Runner, 2)
	for i := range stores {
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
		r, err := New(Options{Store: s, Processor: ProcessorFunc(up.process), Registerer: prometheus.NewRegistry(),
			Workers: 4, Lease: 2 * time.Second, Heartbeat: time.Second, BaseBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			MaxAttempts: 50, PollInterval: 50 * time.Millisecond, WorkerID: fmt.Sprint("replica-", i)})
		if err != nil {
			t.Fatal(err)
		}
		runners[i] = r
		r.Start(ctx)
	}
	t.Cleanup(func() {
		for _, r := range runners {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = r.Stop(sctx)
			scancel()
		}
	})

	killer, err := pgx.Connect(ctx, pgtest.BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(context.Background())
	var killed atomic.Int64
	killsDone := make(chan struct{})
	go func() {
		defer close(killsDone)
		for range kills {
			select {
			case <-ctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
			var k int64
			if err := killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&k); err != nil {
				t.Errorf("terminate: %v", err)
				return
			}
			killed.Add(k)
		}
	}()

	// Senders retry a failed store, as Bitbucket retries a 5xx, with the
	// same delivery id.
	var next, retries atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range senders {
		wg.Go(func() {
			s := stores[w%2]
			for i := next.Add(1); i <= n; i = next.Add(1) {
				for {
					d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: fmt.Sprint("pr-", i), EventKey: "pullrequest:created",
						Body: []byte(`{}`), ReceivedAt: time.Now()}
					if _, err := s.Enqueue(ctx, d); err == nil {
						runners[w%2].Notify()
						break
					}
					if ctx.Err() != nil {
						return
					}
					retries.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	<-killsDone

	for {
		st, err := stores[0].InboxStats(ctx)
		if err == nil && st.Pending == 0 && st.Processing == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("gave up waiting for the inbox to drain: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	done, err := stores[0].ListDeliveries(ctx, store.DeliveryDone, 0)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := stores[0].ListDeliveries(ctx, store.DeliveryDead, 0)
	if err != nil {
		t.Fatal(err)
	}
	if killed.Load() == 0 {
		t.Fatal("no connection was killed: the fault never happened")
	}
	if len(done) != n || len(dead) != 0 {
		t.Errorf("%d done, %d dead; want %d done", len(done), len(dead), n)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for i := 1; i <= n; i++ {
		if c := up.created[fmt.Sprint("pr-", i)]; c != 1 {
			t.Errorf("pr-%d: created %d times upstream, want once", i, c)
		}
	}
	if o := up.overlaps.Load(); o != 0 {
		t.Errorf("%d runs overlapped another run of the same delivery", o)
	}
	t.Logf("%d deliveries in %s with %d connections killed in %d rounds: %d enqueue retries, %d processing runs (re-runs after a lost answer find the effect in place)",
		n, took.Round(time.Millisecond), killed.Load(), kills, retries.Load(), up.runs.Load())
}
