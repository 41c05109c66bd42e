package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/reloadly/rolekeeper/internal/store/sqlite"
	"github.com/reloadly/rolekeeper/internal/store/storetest"
)

// A database migrated before 0005 gets its review counts from the records
// it holds: the migration's backfill agrees with listing them.
func TestReviewCountsBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rolekeeper.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SeedReviewRecords(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE pr_review_requests`, `DELETE FROM schema_migrations WHERE version LIKE '0005%'`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckReviewCounts(t, s)
}
