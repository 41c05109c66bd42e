package sqlite

import (
	"context"
	"database/sql/driver"
	"path/filepath"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// The statements prepared once on the writer (prepared.go) keep working
// when the writer's only connection is replaced, as it is when it cannot
// be put back to synchronous=FULL: database/sql prepares them again on the
// new connection. Commits use fdatasync.
func TestPreparedStatementsOnANewWriterConnection(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !sqlite3.FdatasyncEnabled() {
		t.Error("commits use fsync, not fdatasync")
	}
	now := time.Now()
	cycle := func(id string) {
		t.Helper()
		d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: id, EventKey: "repo:push", Body: []byte(`{"id":"` + id + `"}`), ReceivedAt: now}
		if isNew, err := s.Enqueue(ctx, d); err != nil || !isNew {
			t.Fatalf("Enqueue(%s) = %v, %v", id, isNew, err)
		}
		got, err := s.Claim(ctx, store.ClaimRequest{Worker: "w", Now: now, Lease: time.Minute, Limit: 1})
		if err != nil || len(got) != 1 || got[0].DeliveryID != id || string(got[0].Body) != string(d.Body) {
			t.Fatalf("Claim after Enqueue(%s) = %+v, %v", id, got, err)
		}
		if err := s.Complete(ctx, store.ClaimOf(got[0]), now); err != nil {
			t.Fatalf("Complete(%s): %v", id, err)
		}
	}
	cycle("before")
	// Discard the writer's connection, as relaxed does when it cannot
	// restore synchronous=FULL. A temporary table (one connection's own)
	// tells the new connection from the old.
	if _, err := s.w.ExecContext(ctx, `CREATE TEMP TABLE old_conn (x)`); err != nil {
		t.Fatal(err)
	}
	w, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Raw(func(any) error { return driver.ErrBadConn })
	w.Close()
	cycle("after")
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_temp_master WHERE name = 'old_conn'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the writer's connection was not replaced (%d, %v): the test proves nothing", n, err)
	}
	if got := synchronous(t, s.w); got != 2 {
		t.Errorf("the new writer connection is at synchronous=%d, want 2 (FULL)", got)
	}
}
