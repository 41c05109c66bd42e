package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
)

// yielded runs yieldToIntake in the background and reports when it returns.
func yielded(ctx context.Context, s *Store, wait time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		s.yieldToIntake(ctx, wait)
		close(done)
	}()
	return done
}

func mustReturn(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: yieldToIntake still waiting after 10 s", what)
	}
}

func mustWait(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s: yieldToIntake returned while a group insert was under way", what)
	case <-time.After(50 * time.Millisecond):
	}
}

// A claim waits for the group inserts under way, and only for them: not
// when none is, not past its bound, not past its context.
func TestClaimYieldsToTheIntake(t *testing.T) {
	s := &Store{}
	ctx := context.Background()
	mustReturn(t, yielded(ctx, s, time.Hour), "no insert ever")

	lead := func() { s.intake.mu.Lock(); s.intake.addLeader(); s.intake.mu.Unlock() }
	drop := func() { s.intake.mu.Lock(); s.intake.dropLeader(); s.intake.mu.Unlock() }

	lead()
	lead() // two inserts in flight (maxInserts)
	done := yielded(ctx, s, time.Hour)
	mustWait(t, done, "two inserts")
	drop()
	mustWait(t, done, "one insert left")
	drop()
	mustReturn(t, done, "both inserts done")
	mustReturn(t, yielded(ctx, s, time.Hour), "idle again")

	lead() // the next burst re-arms the wait
	done = yielded(ctx, s, time.Hour)
	mustWait(t, done, "a new insert")
	mustReturn(t, yielded(ctx, s, time.Millisecond), "bounded wait")
	cctx, cancel := context.WithCancel(ctx)
	cancelled := yielded(cctx, s, time.Hour)
	cancel()
	mustReturn(t, cancelled, "cancelled claim")
	drop()
	mustReturn(t, done, "insert done")
}

// Enqueue counts its group insert in while it runs and out once it
// committed: here the insert waits on a table lock held by another
// transaction, and a claim's yield waits with it.
func TestEnqueueHoldsTheYieldWhileItInserts(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t, "rk_test_")
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE deliveries IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	stored := make(chan error, 1)
	go func() {
		_, err := s.Enqueue(ctx, &store.Delivery{Source: model.SourceBitbucket, DeliveryID: "d-1",
			EventKey: "repo:push", Body: []byte(`{}`), ReceivedAt: time.Now()})
		stored <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.intake.mu.Lock()
		n := s.intake.leaders
		s.intake.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group insert never started")
		}
		time.Sleep(time.Millisecond)
	}
	done := yielded(ctx, s, time.Hour)
	mustWait(t, done, "insert blocked on the lock")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	mustReturn(t, done, "insert committed")
}
