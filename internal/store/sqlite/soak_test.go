package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/retention"
	"github.com/reloadly/rolekeeper/internal/store"
)

// TestRetentionSoak simulates 30 days of a 500-person organisation on a
// fake clock, an hour at a time: about 120 pull requests a working day,
// each bringing six Bitbucket deliveries and a decision with its snapshot,
// plus Jira traffic, 1% of deliveries dead-lettered; retention runs every
// simulated hour. Once the 14-day window has passed, the database must stop
// growing: deleted pages are reused by new rows.
//
// Decisions are kept 14 days here (400 by default) so that the 30 days
// show them leveling off too; dead letters keep their default 90 days,
// and are few. Commits are not fsynced in this test (synchronous=OFF):
// what is measured is size, not durability, and the run stays within
// seconds.
func TestRetentionSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	if raceEnabled {
		// Every SQLite statement is many times slower under the race
		// detector, and the soak runs one goroutine's worth of them: .ci/run
		// runs it without -race.
		t.Skip("soak: skipped under -race (.ci/run runs it without)")
	}
	const (
		days        = 30
		window      = 14 * 24 * time.Hour
		prsPerDay   = 120 // working days; a tenth of it at weekends
		perPR       = 6   // created, two updates, approval, comment, merge
		jiraPerDay  = 250
		bodyBytes   = 3 << 10
		snapshotLen = 1500
	)
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "soak.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.w.ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC) // a Monday
	now := start
	p, err := retention.New(retention.Options{
		Store: s, DoneDeliveries: window, DeadLetters: 90 * 24 * time.Hour, Decisions: window,
		Batch: 500, Pause: time.Microsecond, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Evidence is kept by a setting of its own (evidence.retention, forever
	// by default); here the same window, so that the chain levels off too,
	// with the checkpoint at each cut that keeps the rest verifiable.
	keeper, err := evidence.NewKeeper(evidence.KeeperOptions{Log: s, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(500, 30))
	pool := make([]byte, 1<<20) // bodies are random slices of it: incompressible, cheap to make
	for i := range pool {
		pool[i] = 'a' + byte(rng.IntN(26))
	}
	body := func(n int) []byte {
		off := rng.IntN(len(pool) - n)
		return pool[off : off+n]
	}
	snapshot := string(body(snapshotLen))

	wall := time.Now()
	var sizes []int64 // at the end of each day
	var inserted int64
	seq := 0
	for day := range days {
		weekend := now.Weekday() == time.Saturday || now.Weekday() == time.Sunday
		prs := prsPerDay
		if weekend {
			prs /= 10
		}
		perHour := (prs*perPR + jiraPerDay) / 10 // working hours 8–18
		for hour := range 24 {
			now = start.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour)
			if hour >= 8 && hour < 18 {
				// Webhooks arrive together: concurrent Enqueues commit as a group.
				ds := make([]*store.Delivery, perHour)
				for i := range ds {
					seq++
					src := model.SourceBitbucket
					if i%4 == 3 {
						src = model.SourceJira
					}
					ds[i] = &store.Delivery{Source: src, DeliveryID: fmt.Sprintf("soak-%d", seq), EventKey: "pullrequest:updated",
						Body: body(bodyBytes/2 + rng.IntN(bodyBytes)), ReceivedAt: now.Add(time.Duration(i) * time.Second)}
					inserted += int64(len(ds[i].Body))
				}
				var wg sync.WaitGroup
				for _, d := range ds {
					wg.Go(func() {
						if _, err := s.Enqueue(ctx, d); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				claimed, err := s.Claim(ctx, store.ClaimRequest{Worker: "soak", Now: now.Add(time.Hour - time.Second), Lease: time.Minute, Limit: perHour})
				if err != nil {
					t.Fatal(err)
				}
				for i, d := range claimed {
					done := now.Add(time.Hour - time.Second)
					if rng.IntN(100) == 0 {
						err = s.Bury(ctx, store.ClaimOf(d), done, "permanent: 404")
					} else {
						err = s.Complete(ctx, store.ClaimOf(d), done)
					}
					if err != nil {
						t.Fatal(err)
					}
					if d.Source == model.SourceBitbucket && i%2 == 0 {
						if _, err := s.SaveDecision(ctx, &store.DecisionRecord{Kind: "pull_request", Repository: "acme/pay", PR: seq,
							Summary: "requested 2 reviewers", Decision: []byte(`{"rules":[]}`), Snapshot: []byte(`{"s":"` + snapshot + `"}`),
							CreatedAt: done}); err != nil {
							t.Fatal(err)
						}
						inserted += snapshotLen
					}
				}
				if t.Failed() {
					t.FailNow()
				}
			}
			if _, err := p.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := keeper.Prune(ctx, now.Add(-window)); err != nil {
				t.Fatal(err)
			}
		}
		sz, err := s.Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, sz.Bytes)
	}
	now = start.Add(days * 24 * time.Hour)
	sz, _ := s.Size(ctx)
	t.Logf("30 simulated days in %s: %d deliveries, %.1f MiB of bodies and snapshots written; database %.1f MiB; rows %v",
		time.Since(wall).Round(time.Millisecond), seq, float64(inserted)/(1<<20), float64(sz.Bytes)/(1<<20), sz.Tables)
	for d, b := range sizes {
		t.Logf("day %2d: %6.2f MiB", d+1, float64(b)/(1<<20))
	}

	// Flat after the window: from day 16 on, never more than 5% above the
	// size at the end of day 15 (the first day something was pruned, plus one).
	ref := sizes[15]
	for d := 16; d < days; d++ {
		if float64(sizes[d]) > 1.05*float64(ref) {
			t.Errorf("day %d: %d bytes, more than 5%% above day 16's %d: the database keeps growing", d+1, sizes[d], ref)
		}
	}
	// And it did grow before, and ends well below what was written: the
	// window holds about 14 of the 30 days (plus the evidence chain's
	// records and SQLite's free pages; without pruning it would exceed
	// what was written).
	if sizes[6] >= sizes[13] || float64(sz.Bytes) > 0.8*float64(inserted) {
		t.Errorf("sizes %d (day 7), %d (day 14), %d (end) for %d bytes written: retention did not bound them", sizes[6], sizes[13], sz.Bytes, inserted)
	}
	rows := map[string]int64{}
	for _, tr := range sz.Tables {
		rows[tr.Table] = tr.Rows
	}
	if max := int64(seq) * 16 / days; rows["deliveries"] > max {
		t.Errorf("%d deliveries kept of %d, want at most about 16 days' worth (%d)", rows["deliveries"], seq, max)
	}
}
