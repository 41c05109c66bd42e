package storetest

import (
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

func retention(t *testing.T, s store.Store) store.Retention {
	t.Helper()
	r, ok := s.(store.Retention)
	if !ok {
		t.Fatalf("%T does not implement store.Retention", s)
	}
	return r
}

func testPrune(t *testing.T, s store.Store) {
	r := retention(t, s)
	// Six deliveries: three done at +1h, +2h, +3h, two dead at +1h, +5h,
	// one still pending.
	seqs := enqueue(t, s, 6)
	got := claim(t, s, "w", at(time.Hour), time.Hour, 5)
	same(t, "claimed", seqsOf(got), seqs[:5])
	for i, end := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour} {
		must(t, s.Complete(ctxT(t), store.ClaimOf(got[i]), at(end)), "Complete")
	}
	must(t, s.Bury(ctxT(t), store.ClaimOf(got[3]), at(time.Hour), "x"), "Bury")
	must(t, s.Bury(ctxT(t), store.ClaimOf(got[4]), at(5*time.Hour), "x"), "Bury")

	n, err := r.PruneDeliveries(ctxT(t), store.DeliveryDone, at(3*time.Hour), 1)
	must(t, err, "PruneDeliveries")
	if n != 1 {
		t.Errorf("pruned %d done with limit 1, want 1", n)
	}
	n, err = r.PruneDeliveries(ctxT(t), store.DeliveryDone, at(3*time.Hour), 100)
	must(t, err, "PruneDeliveries")
	if n != 1 {
		t.Errorf("pruned %d more done before +3h, want 1 (the +3h one stays)", n)
	}
	n, err = r.PruneDeliveries(ctxT(t), store.DeliveryDead, at(2*time.Hour), 100)
	must(t, err, "PruneDeliveries")
	if n != 1 {
		t.Errorf("pruned %d dead before +2h, want 1", n)
	}
	if _, err := r.PruneDeliveries(ctxT(t), store.DeliveryPending, at(1000*time.Hour), 100); err == nil {
		t.Error("pruning pending deliveries: no error")
	}
	all, err := s.ListDeliveries(ctxT(t), "", 0)
	must(t, err, "ListDeliveries")
	same(t, "left", seqsOf(all), []int64{seqs[2], seqs[4], seqs[5]})

	for i := range 5 {
		_, err := s.SaveDecision(ctxT(t), &store.DecisionRecord{Kind: model.SubjectKind("pull_request"), Summary: "d",
			CreatedAt: at(time.Duration(i) * 24 * time.Hour)})
		must(t, err, "SaveDecision")
	}
	n, err = r.PruneDecisions(ctxT(t), at(3*24*time.Hour), 2)
	must(t, err, "PruneDecisions")
	if n != 2 {
		t.Errorf("pruned %d decisions with limit 2, want 2", n)
	}
	n, err = r.PruneDecisions(ctxT(t), at(3*24*time.Hour), 100)
	must(t, err, "PruneDecisions")
	if n != 1 {
		t.Errorf("pruned %d more decisions, want 1", n)
	}
	left, err := s.ListDecisions(ctxT(t), store.DecisionFilter{})
	must(t, err, "ListDecisions")
	if len(left) != 2 || !left[0].CreatedAt.Equal(canon(at(3*24*time.Hour))) {
		t.Errorf("decisions left: %d, first %v", len(left), left)
	}
}

func testSize(t *testing.T, s store.Store) {
	r := retention(t, s)
	before, err := r.Size(ctxT(t))
	must(t, err, "Size")
	if before.Bytes <= 0 {
		t.Errorf("empty store size %d bytes", before.Bytes)
	}
	enqueue(t, s, 3)
	after, err := r.Size(ctxT(t))
	must(t, err, "Size")
	rows := map[string]int64{}
	for _, tr := range after.Tables {
		rows[tr.Table] = tr.Rows
	}
	if rows["deliveries"] != 3 || rows["decisions"] != 0 {
		t.Errorf("rows %v, want 3 deliveries, 0 decisions", rows)
	}
}
