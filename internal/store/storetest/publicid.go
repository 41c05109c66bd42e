package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// testPublicID: SaveDecision gives every decision a fresh public id of 128
// random bits, the caller cannot choose it, and GetDecisionByPublicID finds
// the decision by it and by nothing else (the numeric id is no public id).
func testPublicID(t *testing.T, s store.Store) {
	d := &store.DecisionRecord{Kind: model.SubjectGate, Summary: "gate approved", CreatedAt: base,
		PublicID: "0123456789abcdef0123456789abcdef"} // chosen by the caller: replaced
	id, err := s.SaveDecision(ctxT(t), d)
	must(t, err, "SaveDecision")
	if !store.ValidPublicID(d.PublicID) {
		t.Fatalf("SaveDecision set public id %q, want %d random bytes in hex", d.PublicID, store.PublicIDBytes)
	}
	if d.PublicID == "0123456789abcdef0123456789abcdef" {
		t.Error("SaveDecision kept the public id the caller chose")
	}
	got, err := s.GetDecisionByPublicID(ctxT(t), d.PublicID)
	must(t, err, "GetDecisionByPublicID")
	if got.ID != id || got.PublicID != d.PublicID || got.Summary != "gate approved" {
		t.Errorf("GetDecisionByPublicID = %+v, want decision %d", got, id)
	}
	byID, err := s.GetDecision(ctxT(t), id)
	must(t, err, "GetDecision")
	if byID.PublicID != d.PublicID {
		t.Errorf("GetDecision public id %q, want %q", byID.PublicID, d.PublicID)
	}
	list, err := s.ListDecisions(ctxT(t), store.DecisionFilter{})
	must(t, err, "ListDecisions")
	if len(list) != 1 || list[0].PublicID != d.PublicID {
		t.Errorf("ListDecisions = %+v, want the public id", list)
	}
	for _, bad := range []string{"", strconv.FormatInt(id, 10), d.PublicID[:31], d.PublicID + "0", store.NewPublicID()} {
		if _, err := s.GetDecisionByPublicID(ctxT(t), bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetDecisionByPublicID(%q): %v, want ErrNotFound", bad, err)
		}
	}
	must(t, s.SetOutcome(ctxT(t), id, "posted"), "SetOutcome")
	if got, err := s.GetDecisionByPublicID(ctxT(t), d.PublicID); err != nil || got.Outcome != "posted" {
		t.Errorf("after SetOutcome: %+v %v", got, err)
	}
}

// testPublicIDsUnique saves decisions from several goroutines: every one
// gets its own public id.
func testPublicIDsUnique(t *testing.T, s store.Store) {
	const workers, each = 4, 25
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d := &store.DecisionRecord{Kind: model.SubjectPullRequest, Repository: "acme/pay", PR: w*each + i + 1, CreatedAt: base}
				if _, err := s.SaveDecision(ctxT(t), d); err != nil {
					t.Errorf("SaveDecision: %v", err)
					return
				}
				ids <- d.PublicID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if !store.ValidPublicID(id) || seen[id] {
			t.Errorf("public id %q: malformed or repeated", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct public ids, want %d", len(seen), workers*each)
	}
}
