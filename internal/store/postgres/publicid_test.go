package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// TestMigrationBackfillsPublicIDs: decisions stored before migration 0003
// get a random public id of the same form when it runs, and the unique
// index holds.
func TestMigrationBackfillsPublicIDs(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	s := open(t, dsn)
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
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`ALTER TABLE decisions DROP COLUMN public_id`,
		`DELETE FROM schema_migrations WHERE version = '0003_decision_public_id'`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s = open(t, dsn)
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
	var one string
	for k := range seen {
		one = k
	}
	if _, err := conn.Exec(ctx, `INSERT INTO decisions (public_id, created_at) VALUES ($1, now())`, one); err == nil {
		t.Error("a second decision with the same public id was stored: no unique index")
	}
	if _, err := conn.Exec(ctx, `INSERT INTO decisions (created_at) VALUES (now())`); err == nil {
		t.Error("a decision without a public id was stored")
	}
}
