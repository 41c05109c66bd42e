package storetest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Sizes of the data BenchLists reads from.
const (
	BenchPRs       = 10_000
	BenchDecisions = 50_000
)

// BenchLists fills s with BenchPRs pull requests and BenchDecisions
// decisions spread over a year (50 repositories, one PR in ten open), then
// measures the queries the reports and the reviewer picker make.
func BenchLists(b *testing.B, s store.Store) {
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	repo := func(i int) string { return fmt.Sprintf("acme/service-%02d", i%50) }
	decision := json.RawMessage(`{"status":"pending","picks":[{"role":"tech-lead","account_id":"557058:a"}],"reasons":["` + strings.Repeat("x", 200) + `"]}`)
	snapshot := json.RawMessage(`{"pr":{"title":"` + strings.Repeat("y", 600) + `"}}`)

	fill(b, BenchPRs, func(i int) error {
		at := start.Add(year / BenchPRs * time.Duration(i))
		pr := store.PRRecord{Repository: repo(i), ID: i + 1, Team: "checkout", Title: "change", State: model.PRMerged,
			SourceCommit: commit(i), MergeCommit: commit(-i),
			Reviewers: []string{"557058:a", "557058:b"}, Requested: []string{"557058:a"},
			Approvals: []model.Approval{{AccountID: "557058:a", State: model.ReviewApproved, At: at}},
			Statuses:  map[string]string{"rolekeeper-review": "SUCCESSFUL|2 of 2"},
			CreatedAt: at, UpdatedAt: at.Add(time.Hour), ClosedAt: at.Add(time.Hour), SeenAt: at.Add(time.Hour)}
		if i%10 == 0 {
			pr.State, pr.ClosedAt, pr.MergeCommit = model.PROpen, time.Time{}, ""
		}
		return s.UpsertPR(b.Context(), &pr)
	})
	fill(b, BenchDecisions, func(i int) error {
		d := store.DecisionRecord{Kind: model.SubjectPullRequest, Repository: repo(i), PR: i%BenchPRs + 1,
			Trigger: "pr.updated", Summary: "asked a", Decision: decision, Snapshot: snapshot,
			CreatedAt: start.Add(year / BenchDecisions * time.Duration(i))}
		_, err := s.SaveDecision(b.Context(), &d)
		return err
	})

	week := start.Add(26 * 7 * 24 * time.Hour)
	cases := []struct {
		name string
		run  func() (int, error)
	}{
		{"ListPRs/open", func() (int, error) {
			prs, err := s.ListPRs(b.Context(), store.PRFilter{State: model.PROpen})
			return len(prs), err
		}},
		{"ListPRs/closed-in-a-week", func() (int, error) {
			prs, err := s.ListPRs(b.Context(), store.PRFilter{ClosedSince: week, ClosedUntil: week.AddDate(0, 0, 7)})
			return len(prs), err
		}},
		{"ListPRs/updated-in-a-week", func() (int, error) {
			prs, err := s.ListPRs(b.Context(), store.PRFilter{UpdatedSince: week, UpdatedUntil: week.AddDate(0, 0, 7)})
			return len(prs), err
		}},
		{"ListPRs/repository", func() (int, error) {
			prs, err := s.ListPRs(b.Context(), store.PRFilter{Repository: repo(7)})
			return len(prs), err
		}},
		// The reviewer picker's load: listing the open records (before
		// migration 0005) against the kept counts.
		{"ReviewLoad/listing-open-prs", func() (int, error) {
			prs, err := s.ListPRs(b.Context(), store.PRFilter{State: model.PROpen})
			return len(store.ReviewLoad(prs)), err
		}},
		{"ReviewLoad/OpenReviews", func() (int, error) {
			load, err := s.OpenReviews(b.Context(), repo(7), 8)
			return len(load), err
		}},
		{"PRsByCommit", func() (int, error) {
			prs, err := s.PRsByCommit(b.Context(), repo(7), commit(7))
			return len(prs), err
		}},
		{"ListDecisions/a-week", func() (int, error) {
			ds, err := s.ListDecisions(b.Context(), store.DecisionFilter{Since: week, Until: week.AddDate(0, 0, 7)})
			return len(ds), err
		}},
		{"ListDecisions/pr", func() (int, error) {
			ds, err := s.ListDecisions(b.Context(), store.DecisionFilter{Repository: repo(7), PR: 8})
			return len(ds), err
		}},
		{"ListDecisions/kind-since-limit-100", func() (int, error) {
			ds, err := s.ListDecisions(b.Context(), store.DecisionFilter{Kind: model.SubjectPullRequest, Since: week, Limit: 100})
			return len(ds), err
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var rows int
			for b.Loop() {
				n, err := tc.run()
				if err != nil {
					b.Fatal(err)
				}
				rows = n
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// commit returns a 40-character hash made of i.
func commit(i int) string {
	sum := sha1.Sum([]byte(strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

// fill runs add(0…n-1) from several goroutines.
func fill(b *testing.B, n int, add func(i int) error) {
	b.Helper()
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += workers {
				errs[w] = add(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}
