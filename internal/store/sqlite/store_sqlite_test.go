package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

func open(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "data", "rolekeeper.db"))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestReopen checks that migrations are recorded once and data survives.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "rk.db")
	for i := range 3 {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
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
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// BenchmarkEnqueue measures concurrent webhook intake: many goroutines
// enqueueing distinct deliveries (group commit, fsync per batch).
func BenchmarkEnqueue(b *testing.B) {
	s := open(b)
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
}

// BenchmarkLists measures the report queries over 10,000 PRs and 50,000
// decisions.
func BenchmarkLists(b *testing.B) {
	s := open(b)
	defer s.Close()
	storetest.BenchLists(b, s)
}
