package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

// schemaDSN creates a schema of its own for the test, dropped when the test
// ends, and returns a DSN whose search_path points at it. Without a server
// the test is skipped (failed with ROLEKEEPER_REQUIRE_POSTGRES=1).
func schemaDSN(tb testing.TB, params ...string) string {
	tb.Helper()
	return pgtest.SchemaDSN(tb, "rk_test_", params...)
}

func open(tb testing.TB, dsn string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, schemaDSN(t)) })
}

// TestReopen checks that migrations are recorded once and data survives.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	for i := range 3 {
		s := open(t, dsn)
		if _, err := s.PutIfAbsent(ctx, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatalf("PutIfAbsent: %v", err)
		}
		keys, err := s.Keys(ctx, "k")
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		if len(keys) != i+1 {
			t.Errorf("open #%d: %d keys, want %d", i, len(keys), i+1)
		}
		s.Close()
	}
}

// TestReplicasShareInbox runs three stores (three replicas, started
// together so their migrations race) over one inbox of 1000 deliveries:
// every delivery is claimed exactly once.
func TestReplicasShareInbox(t *testing.T) {
	const replicas, workersEach, n = 3, 3, 1000
	ctx := context.Background()
	dsn := schemaDSN(t)

	stores := make([]*postgres.Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(ctx, dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}

	base := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	var next atomic.Int64
	enqErrs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			s := stores[w%replicas]
			for i := next.Add(1); i <= n; i = next.Add(1) {
				d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: fmt.Sprint(i), EventKey: "repo:push",
					Body: []byte(`{}`), ReceivedAt: base}
				if ok, err := s.Enqueue(ctx, d); err != nil || !ok {
					enqErrs <- fmt.Errorf("enqueue %d: %v, %v", i, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(enqErrs)
	for err := range enqErrs {
		t.Fatal(err)
	}

	var mu sync.Mutex
	claimed := map[int64][]string{}
	workErrs := make(chan error, replicas*workersEach)
	for r, s := range stores {
		for w := range workersEach {
			worker := fmt.Sprintf("replica-%d/%d", r, w)
			wg.Go(func() {
				for {
					ds, err := s.Claim(ctx, store.ClaimRequest{Worker: worker, Now: base, Lease: time.Hour, Limit: 10})
					if err != nil {
						workErrs <- err
						return
					}
					if len(ds) == 0 {
						return
					}
					for _, d := range ds {
						mu.Lock()
						claimed[d.Seq] = append(claimed[d.Seq], worker)
						mu.Unlock()
						if err := s.Complete(ctx, store.ClaimOf(d), base); err != nil {
							workErrs <- err
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(workErrs)
	for err := range workErrs {
		t.Error(err)
	}
	if len(claimed) != n {
		t.Errorf("claimed %d deliveries, want %d", len(claimed), n)
	}
	for seq, by := range claimed {
		if len(by) != 1 {
			t.Errorf("delivery %d claimed by %v", seq, by)
		}
	}
	done, err := stores[0].ListDeliveries(ctx, store.DeliveryDone, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != n {
		t.Errorf("%d deliveries done, want %d", len(done), n)
	}
	for _, d := range done {
		if d.Attempts != 1 {
			t.Errorf("delivery %d: %d attempts, want 1", d.Seq, d.Attempts)
		}
	}
}

// BenchmarkEnqueue measures concurrent webhook intake: many goroutines
// enqueueing distinct deliveries through one pool.
func BenchmarkEnqueue(b *testing.B) {
	for _, conns := range []int{4, 16} {
		b.Run(fmt.Sprintf("pool_max_conns=%d", conns), func(b *testing.B) {
			s := open(b, schemaDSN(b, "pool_max_conns", fmt.Sprint(conns)))
			defer s.Close()
			body := []byte(`{"pullrequest":{"id":1,"title":"bench"},"repository":{"full_name":"acme/pay"}}`)
			var n atomic.Int64
			now := time.Now()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: fmt.Sprint(n.Add(1)),
						EventKey: "pullrequest:created", Body: body, ReceivedAt: now}
					if _, err := s.Enqueue(context.Background(), d); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enqueues/s")
		})
	}
}

// BenchmarkLists measures the report queries over 10,000 PRs and 50,000
// decisions.
func BenchmarkLists(b *testing.B) {
	s := open(b, schemaDSN(b))
	defer s.Close()
	storetest.BenchLists(b, s)
}
