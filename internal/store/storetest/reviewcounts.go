package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// SeedReviewRecords stores pull request records with reviewers, approvals
// and states of every kind, for a test of the review counts' backfill:
// store them, undo migration 0005 behind the store's back, reopen, and
// CheckReviewCounts.
func SeedReviewRecords(t *testing.T, s store.Store) {
	t.Helper()
	seed := append(reviewSeed(),
		store.PRRecord{Repository: "acme/web", ID: 5, State: model.PROpen},
		store.PRRecord{Repository: "acme/web", ID: 6, State: model.PROpen, Reviewers: []string{}, Approvals: []model.Approval{}})
	for i := range seed {
		if err := s.UpsertPR(context.Background(), &seed[i]); err != nil {
			t.Fatalf("UpsertPR: %v", err)
		}
	}
}

// reviewSeed is four pull request records, three open, whose reviewers
// have approved, asked for changes or not answered yet.
func reviewSeed() []store.PRRecord {
	return []store.PRRecord{
		{Repository: "acme/pay", ID: 1, State: model.PROpen, Reviewers: []string{"mei", "kofi"},
			Approvals: []model.Approval{{AccountID: "mei", State: model.ReviewApproved, At: base}}},
		{Repository: "acme/pay", ID: 2, State: model.PROpen, Reviewers: []string{"kofi", "ana"},
			Approvals: []model.Approval{{AccountID: "ana", State: model.ReviewChangesRequested}}},
		{Repository: "acme/web", ID: 3, State: model.PROpen, Reviewers: []string{"kofi", "mei"}},
		{Repository: "acme/web", ID: 4, State: model.PRMerged, Reviewers: []string{"ana", "mei"}},
	}
}

// CheckReviewCounts compares the kept counts with listing the records.
func CheckReviewCounts(t *testing.T, s store.Store) {
	t.Helper()
	got, err := s.OpenReviews(context.Background(), "", 0)
	if err != nil {
		t.Fatalf("OpenReviews: %v", err)
	}
	prs, err := s.ListPRs(context.Background(), store.PRFilter{State: model.PROpen})
	if err != nil {
		t.Fatalf("ListPRs: %v", err)
	}
	want := store.ReviewLoad(prs)
	if !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("OpenReviews %v, listing the records %v", got, want)
	}
}
