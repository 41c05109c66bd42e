package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// synchronous reads the writer connection's synchronous setting
// (1 NORMAL, 2 FULL).
func synchronous(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	t.Helper()
	var n int
	if err := q.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRelaxedOnlyForTheInbox: the inbox's bookkeeping runs with
// synchronous=NORMAL, and the writer is FULL again afterwards, also when
// the bookkeeping failed or its context was cancelled, so the intake's
// insert is always fsynced.
func TestRelaxedOnlyForTheInbox(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := synchronous(t, s.w); got != 2 {
		t.Fatalf("writer opens with synchronous=%d, want 2 (FULL)", got)
	}
	var inside int
	if err := s.relaxed(ctx, func(w *sql.Conn) error { inside = synchronous(t, w); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != 1 {
		t.Errorf("inside relaxed: synchronous=%d, want 1 (NORMAL)", inside)
	}

	now := time.Now()
	d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: "a", EventKey: "repo:push", Body: []byte(`{}`), ReceivedAt: now}
	if _, err := s.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, store.ClaimRequest{Worker: "w", Now: now, Lease: time.Minute, Limit: 2})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %v", got, err)
	}
	if err := s.Complete(ctx, store.Claim{Seq: got[0].Seq, Token: "not-the-token"}, now); err == nil {
		t.Error("Complete with a wrong token succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Complete(cancelled, store.ClaimOf(got[0]), now); err == nil {
		t.Error("Complete with a cancelled context succeeded")
	}
	if err := s.Complete(ctx, store.ClaimOf(got[0]), now); err != nil {
		t.Fatal(err)
	}
	if got := synchronous(t, s.w); got != 2 {
		t.Errorf("after the inbox's writes the writer is at synchronous=%d, want 2 (FULL)", got)
	}
}
