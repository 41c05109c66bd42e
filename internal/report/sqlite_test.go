package report

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// TestBuildFromSQLite checks that the report reads the real store the way
// the in-memory source pretends to: same filters, same result.
func TestBuildFromSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := sampleSource()
	for _, f := range src.findings {
		if _, err := st.AddFinding(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for i := range src.prs {
		if err := st.UpsertPR(ctx, &src.prs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range src.gates {
		src.gates[i].DedupeKey = src.gates[i].ID
		if err := st.CreateGate(ctx, &src.gates[i]); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := ParseWeek("2026-W47", time.UTC)
	opt := Options{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), PublicURL: "https://rk.example"}
	fromStore, err := Build(ctx, st, testOrg(), w, opt)
	if err != nil {
		t.Fatal(err)
	}
	fromMem, err := Build(ctx, sampleSource(), testOrg(), w, opt)
	if err != nil {
		t.Fatal(err)
	}
	if fromStore.Summary != fromMem.Summary {
		t.Errorf("summary from store %+v, from memory %+v", fromStore.Summary, fromMem.Summary)
	}
	if len(fromStore.Violations) != len(fromMem.Violations) || len(fromStore.Reviewers) != len(fromMem.Reviewers) ||
		fromStore.Timing != fromMem.Timing || len(fromStore.BreakGlass) != 1 {
		t.Errorf("store-built report differs:\n%+v\n%+v", fromStore, fromMem)
	}
	for i := range fromStore.Trend {
		if fromStore.Trend[i] != fromMem.Trend[i] {
			t.Errorf("trend %d: %+v vs %+v", i, fromStore.Trend[i], fromMem.Trend[i])
		}
	}
}
