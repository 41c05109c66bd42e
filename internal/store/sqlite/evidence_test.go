package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

// paths remembers each test store's file, for tampering behind its back.
var paths sync.Map // store.Store → path

func openFile(tb testing.TB) *sqlite.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "rk.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	paths.Store(store.Store(s), path)
	return s
}

// rawDB opens a second connection to the store's file: another writer.
func rawDB(tb testing.TB, s store.Store) *sql.DB {
	tb.Helper()
	path, ok := paths.Load(s)
	if !ok {
		tb.Fatalf("no path for the store")
	}
	db, err := sql.Open("sqlite", path.(string)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatalf("open raw: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestEvidence(t *testing.T) {
	storetest.RunEvidence(t, func(t *testing.T) store.Store { return openFile(t) }, func(t *testing.T, s store.Store, q string) {
		if _, err := rawDB(t, s).Exec(q); err != nil {
			t.Fatalf("tamper %q: %v", q, err)
		}
	})
}

// BenchmarkEvidenceAppend measures one append in its own transaction (a
// record of another fact; decisions append inside their own commit).
func BenchmarkEvidenceAppend(b *testing.B) {
	s := openFile(b)
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
// the store, as `rolekeeper evidence verify --config` does.
func BenchmarkEvidenceVerify(b *testing.B) {
	const n = 100_000
	s := openFile(b)
	defer s.Close()
	db := rawDB(b, s)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	head := evidence.Genesis()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	content := map[string]any{"summary": strings.Repeat("x", 300), "decision": map[string]any{"reasons": []string{"asked amara: technical lead, fewest open reviews"}}}
	for i := range n {
		r, err := evidence.Link(head, evidence.KindDecision, at.Add(time.Duration(i)*time.Second), content)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO evidence (seq, kind, at, at_ns, content, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Seq, r.Kind, r.Time, at.UnixNano(), string(r.Content), r.Prev, r.Hash); err != nil {
			b.Fatal(err)
		}
		head = r.Head()
	}
	if _, err := tx.Exec(`UPDATE evidence_head SET seq = ?, hash = ?, kind = ?`, head.Seq, head.Hash, head.Kind); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		res, err := evidence.VerifySource(b.Context(), s, nil)
		if err != nil || !res.OK() || res.Records != n {
			b.Fatal(fmt.Sprint(res.Records, err, res.Problem))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
