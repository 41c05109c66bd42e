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

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

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
		Source:  Bitbucket(parseJSON),
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
