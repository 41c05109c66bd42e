package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

// A database migrated before 0005 gets its review counts from the records
// it holds: the migration's backfill agrees with listing them.
func TestReviewCountsBackfill(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	s := open(t, dsn)
	storetest.SeedReviewRecords(t, s)
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE pr_review_requests`, `DELETE FROM schema_migrations WHERE version LIKE '0005%'`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)
	s = open(t, dsn)
	defer s.Close()
	storetest.CheckReviewCounts(t, s)
}
