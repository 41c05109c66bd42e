package retention_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/retention"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// TestRunPrunesInBatches: 25 done deliveries past the window go in three
// batches of 10; those inside it, open ones and (age 0) decisions stay.
func TestRunPrunesInBatches(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := old.Add(30 * 24 * time.Hour)
	add := func(id string, at time.Time, finish bool) {
		d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: id, EventKey: "repo:push", Body: []byte(strings.Repeat("x", 1000)), ReceivedAt: at}
		if _, err := s.Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
		if !finish {
			return
		}
		got, err := s.Claim(ctx, store.ClaimRequest{Worker: "w", Now: at, Lease: time.Minute, Limit: 1})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim %s: %v %v", id, got, err)
		}
		if err := s.Complete(ctx, store.ClaimOf(got[0]), at); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		add(fmt.Sprint("old-", i), old, true)
	}
	add("recent", now.Add(-time.Hour), true)
	add("open", old, false) // pending since long ago: never pruned
	if _, err := s.SaveDecision(ctx, &store.DecisionRecord{Kind: "pull_request", CreatedAt: old}); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	p, err := retention.New(retention.Options{Store: s, DoneDeliveries: 14 * 24 * time.Hour, Batch: 10,
		Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res != (retention.Result{Done: 25}) {
		t.Errorf("Run = %+v, want 25 done deliveries", res)
	}
	left, err := s.ListDeliveries(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range left {
		ids = append(ids, d.DeliveryID)
	}
	if strings.Join(ids, ",") != "recent,open" {
		t.Errorf("left %v, want recent and open", ids)
	}
	if ds, _ := s.ListDecisions(ctx, store.DecisionFilter{}); len(ds) != 1 {
		t.Errorf("%d decisions left; age 0 keeps them", len(ds))
	}
	const want = `
# HELP rolekeeper_retention_deleted_total Rows deleted by retention, by kind (deliveries_done, deliveries_dead, decisions).
# TYPE rolekeeper_retention_deleted_total counter
rolekeeper_retention_deleted_total{table="deliveries_done"} 25
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rolekeeper_retention_deleted_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "rolekeeper_store_rows", "rolekeeper_store_size_bytes"); err != nil || n != 9 {
		t.Errorf("store size metrics: %d series, %v; want 8 tables and the size", n, err)
	}
}
