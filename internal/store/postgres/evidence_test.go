package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

// dsns remembers each test store's DSN, for tampering behind its back.
var dsns sync.Map // store.Store → dsn

func openTracked(tb testing.TB) store.Store {
	dsn := schemaDSN(tb)
	s := open(tb, dsn)
	dsns.Store(store.Store(s), dsn)
	return s
}

func rawExec(tb testing.TB, s store.Store, q string) {
	tb.Helper()
	dsn, ok := dsns.Load(s)
	if !ok {
		tb.Fatalf("no dsn for the store")
	}
	conn, err := pgx.Connect(context.Background(), dsn.(string))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), q); err != nil {
		tb.Fatalf("tamper %q: %v", q, err)
	}
}

func TestEvidence(t *testing.T) {
	storetest.RunEvidence(t, func(t *testing.T) store.Store { return openTracked(t) },
		func(t *testing.T, s store.Store, q string) { rawExec(t, s, q) })
}

// TestEvidenceReplicas: three replicas (separate pools on one schema)
// saving decisions at once make one chain, never a fork.
func TestEvidenceReplicas(t *testing.T) {
	dsn := schemaDSN(t)
	var stores []store.Store
	for range 3 {
		s := open(t, dsn)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	storetest.ConcurrentAppends(t, stores, 40)
}

func BenchmarkEvidenceAppend(b *testing.B) {
	s := open(b, schemaDSN(b))
	defer s.Close()
	content := map[string]any{"summary": strings.Repeat("x", 300), "reasons": []string{"a", "b"}}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.AppendEvidence(b.Context(), evidence.KindRoles, at.Add(time.Duration(i)), content); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkEvidenceVerify re-hashes a chain of 100,000 records read from
// Postgres, as `rolekeeper evidence verify --config` does.
func BenchmarkEvidenceVerify(b *testing.B) {
	const n = 100_000
	dsn := schemaDSN(b)
	s := open(b, dsn)
	defer s.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	head := evidence.Genesis()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	content := map[string]any{"summary": strings.Repeat("x", 300), "decision": map[string]any{"reasons": []string{"asked amara: technical lead, fewest open reviews"}}}
	rows := make([][]any, 0, n)
	for i := range n {
		r, err := evidence.Link(head, evidence.KindDecision, at.Add(time.Duration(i)*time.Second), content)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, []any{r.Seq, r.Kind, r.Time, at.UnixNano(), string(r.Content), r.Prev, r.Hash})
		head = r.Head()
	}
	if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{"evidence"}, []string{"seq", "kind", "at", "at_ns", "content", "prev", "hash"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `UPDATE evidence_head SET seq = $1, hash = $2, kind = $3`, head.Seq, head.Hash, head.Kind); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		res, err := evidence.VerifySource(b.Context(), s, nil)
		if err != nil || !res.OK() || res.Records != n {
			b.Fatal(res.Records, err, res.Problem)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
