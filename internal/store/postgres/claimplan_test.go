package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/store/pgtest"
)

// A claim walks deliveries_open in seq order and stops at its limit,
// however the planner sees the table: here its statistics were taken while
// the inbox was empty and 20,000 deliveries wait since. Planned with a
// bitmap scan and a sort (as it was, both for the generic plan pgx's
// statement cache ends up with and for a custom one), each claim read and
// sorted the whole backlog: 12 ms of the server's CPU at 27,000.
func TestClaimCostDoesNotGrowWithTheBacklog(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.SchemaDSN(t, "rk_test_"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{
		`ALTER TABLE deliveries SET (autovacuum_enabled = false)`,
		`ANALYZE deliveries`,
		`INSERT INTO deliveries (source, delivery_id, event_key, body, received_at, state, next_attempt_at)
			SELECT 'bitbucket', 'd' || g, 'pullrequest:updated', '\x7b7d', now(), 'pending', now()
			FROM generate_series(1, 20000) g`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn, err := s.inbox.Acquire(ctx) // the pool claims run on, with its settings
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `PREPARE claim_plan AS `+claimSQL); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `DEALLOCATE claim_plan`) //nolint:errcheck // best effort, the schema is dropped
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		if _, err := conn.Exec(ctx, `SET plan_cache_mode = `+mode); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `EXPLAIN EXECUTE claim_plan('processing', 'w', now() + interval '2 minutes',
			'pending', now(), 4, 'token', now() - interval '15 seconds')`)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "Index Scan using deliveries_open") || strings.Contains(text, "Sort") || strings.Contains(text, "Bitmap") {
			t.Errorf("%s: the claim does not walk deliveries_open in order:\n%s", mode, text)
		}
	}
	if _, err := conn.Exec(ctx, `RESET plan_cache_mode`); err != nil {
		t.Fatal(err)
	}
}

// The inbox's statements are planned once per connection: a claim and a
// grouped completion run six times (past the five custom plans the server
// otherwise tries first) are generic plans every time. Before, the
// completion's generic plan was estimated dearer than a custom one, and
// the server planned it again at every run.
func TestInboxStatementsPlannedOnce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.SchemaDSN(t, "rk_test_"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := s.inbox.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	now := time.Now()
	for range 6 {
		rows, err := conn.Query(ctx, claimSQL, "processing", "w", now.Add(time.Minute), "pending", now, 4, "token", now.Add(-15*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if rows, err = conn.Query(ctx, completeBatchSQL, "done", []int64{1, 2}, []string{"a", "b"}, []time.Time{now, now}, "processing"); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{claimSQL, completeBatchSQL} {
		var generic, custom int64
		if err := conn.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1`, q).Scan(&generic, &custom); err != nil {
			t.Fatalf("%.40s…: %v", q, err)
		}
		if custom != 0 || generic == 0 {
			t.Errorf("%.40s…: %d custom plans and %d generic ones in 6 runs, want only generic", q, custom, generic)
		}
	}
}
