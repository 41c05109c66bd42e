package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/inbox"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// bitbucketSource is the daemon's Bitbucket intake: the routing check
// before the 202, the whole parse in the workers.
func bitbucketSource() Source {
	src := Bitbucket(bitbucket.ParseWebhook)
	src.Check = bitbucket.CheckWebhook
	return src
}

// BenchmarkIntake measures the whole intake of a signed Bitbucket delivery
// (verify, parse, durable store in SQLite) under parallel load; each
// iteration is a new delivery id, so each one is a committed insert.
func BenchmarkIntake(b *testing.B) {
	body := fixtures.Read(b, signedFixture)
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h := New(Options{
		Source:  bitbucketSource(),
		Secrets: []string{fixtureSecret},
		Store:   st,
		Logger:  zap.NewNop(),
		Metrics: NewMetrics(prometheus.NewRegistry()),
	})
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", bytes.NewReader(body))
			req.Header.Set("X-Event-Key", "repo:push")
			req.Header.Set("X-Request-UUID", "bench-"+strconv.FormatInt(n.Add(1), 10))
			req.Header.Set(SignatureHeader, fixtureSig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkIntakeBesideWorkers is BenchmarkIntake while four inbox workers
// claim, process (a no-op) and complete what the intake stores, as in the
// daemon: the intake's durable insert shares the store with the workers'
// bookkeeping. On PostgreSQL it needs a server (pgtest).
func BenchmarkIntakeBesideWorkers(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchIntakeBesideWorkers(b, st)
	})
	b.Run("postgres", func(b *testing.B) {
		st, err := postgres.Open(context.Background(), pgtest.SchemaDSN(b, "rk_bench_intake_"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchIntakeBesideWorkers(b, st)
	})
}

func benchIntakeBesideWorkers(b *testing.B, st interface {
	Enqueuer
	store.Inbox
}) {
	body := fixtures.Read(b, signedFixture)
	var processed atomic.Int64
	r, err := inbox.New(inbox.Options{
		Store: st,
		Processor: inbox.ProcessorFunc(func(_ context.Context, d store.Delivery) error {
			// As the daemon's workers do first (app.process).
			if _, err := bitbucket.ParseWebhook(d.EventKey, d.Body); err != nil {
				return err
			}
			processed.Add(1)
			return nil
		}),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	h := New(Options{
		Source:  bitbucketSource(),
		Secrets: []string{fixtureSecret},
		Store:   st,
		Notify:  r.Notify,
		Logger:  zap.NewNop(),
		Metrics: NewMetrics(prometheus.NewRegistry()),
	})
	r.Start(context.Background())
	defer func() {
		if err := r.Stop(context.Background()); err != nil {
			b.Error(err)
		}
	}()
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(8) // 8×GOMAXPROCS senders: 16 on two cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", bytes.NewReader(body))
			req.Header.Set("X-Event-Key", "repo:push")
			req.Header.Set("X-Request-UUID", "bench-"+strconv.FormatInt(n.Add(1), 10))
			req.Header.Set(SignatureHeader, fixtureSig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(processed.Load())/float64(b.N), "processed/op")
}
