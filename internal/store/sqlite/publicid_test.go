package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// TestMigrationBackfillsPublicIDs: decisions stored before migration 0003
// get a random public id of the same form when it runs, and the unique
// index holds.
func TestMigrationBackfillsPublicIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rk.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range 5 {
		id, err := s.SaveDecision(ctx, &store.DecisionRecord{Kind: model.SubjectPullRequest, PR: i + 1,
			CreatedAt: time.Date(2026, 11, 2, 9, i, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	s.Close()

	// Back to the schema before 0003, as a database of the previous release.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX decisions_public_id`,
		`ALTER TABLE decisions DROP COLUMN public_id`,
		`DELETE FROM schema_migrations WHERE version = '0003_decision_public_id'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen (migration 0003): %v", err)
	}
	defer s.Close()
	seen := map[string]bool{}
	for _, id := range ids {
		d, err := s.GetDecision(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !store.ValidPublicID(d.PublicID) || seen[d.PublicID] {
			t.Fatalf("decision %d backfilled with %q: malformed or repeated", id, d.PublicID)
		}
		seen[d.PublicID] = true
		if got, err := s.GetDecisionByPublicID(ctx, d.PublicID); err != nil || got.ID != id {
			t.Errorf("GetDecisionByPublicID(%q) = %v, %v", d.PublicID, got, err)
		}
	}

	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one string
	for k := range seen {
		one = k
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO decisions (public_id, created_at) VALUES (?, 1)`, one); err == nil {
		t.Error("a second decision with the same public id was stored: no unique index")
	}
}
