package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// Bodies live in delivery_bodies (migration 0008): a database migrated
// from before keeps every body; claims and lists read them as before; a
// pruned delivery takes its body with it.
func TestDeliveryBodiesTableOfTheirOwn(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rolekeeper.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	bodies := map[string][]byte{"d1": bytes.Repeat([]byte("a"), 6000), "d2": []byte(`{"x":1}`), "d3": {}}
	for id, b := range bodies {
		if _, err := s.Enqueue(ctx, &store.Delivery{Source: model.SourceBitbucket, DeliveryID: id, EventKey: "repo:push", Body: b, ReceivedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to the layout before 0008: the body in the row.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TRIGGER deliveries_body_deleted`,
		`ALTER TABLE deliveries ADD COLUMN body BLOB NOT NULL DEFAULT x''`,
		`UPDATE deliveries SET body = (SELECT body FROM delivery_bodies b WHERE b.seq = deliveries.seq)`,
		`ALTER TABLE deliveries DROP COLUMN body_len`,
		`DROP TABLE delivery_bodies`,
		`DELETE FROM schema_migrations WHERE version LIKE '0008%'`,
	} {
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

	list, err := s.ListDeliveries(ctx, "", 0)
	if err != nil || len(list) != 3 {
		t.Fatalf("list %d %v", len(list), err)
	}
	for _, d := range list {
		if len(d.Body) != 0 || d.BodyBytes != len(bodies[d.DeliveryID]) {
			t.Errorf("listed %s: body %d bytes, size %d, want no body and size %d", d.DeliveryID, len(d.Body), d.BodyBytes, len(bodies[d.DeliveryID]))
		}
	}
	claimed, err := s.Claim(ctx, store.ClaimRequest{Worker: "w", Now: t0.Add(time.Second), Lease: time.Minute, Limit: 3})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d %v", len(claimed), err)
	}
	for _, d := range claimed {
		if !bytes.Equal(d.Body, bodies[d.DeliveryID]) {
			t.Errorf("claimed %s: body %q…", d.DeliveryID, firstBytes(d.Body))
		}
		if err := s.Complete(ctx, store.Claim{Seq: d.Seq, Token: d.ClaimToken}, t0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetDelivery(ctx, claimed[0].Seq)
	if err != nil || !bytes.Equal(got.Body, bodies[got.DeliveryID]) {
		t.Fatalf("get %v", err)
	}
	if n, err := s.PruneDeliveries(ctx, store.DeliveryDone, t0.Add(time.Hour), 10); err != nil || n != 3 {
		t.Fatalf("pruned %d %v", n, err)
	}
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM delivery_bodies`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d bodies left after pruning their deliveries (%v)", left, err)
	}
}

func firstBytes(b []byte) string { return strings.ToValidUTF8(string(b[:min(len(b), 16)]), "?") }
