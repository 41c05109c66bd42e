package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

func decisionTests() []test {
	return []test{
		{"RoundTrip", testDecisionRoundTrip},
		{"SetOutcome", testSetOutcome},
		{"NotFound", testDecisionNotFound},
		{"ListFilters", testListDecisions},
		{"PublicID", testPublicID},
		{"PublicIDsUnique", testPublicIDsUnique},
	}
}

func testDecisionRoundTrip(t *testing.T, s store.Store) {
	d := &store.DecisionRecord{
		Kind:       model.SubjectPullRequest,
		Repository: "acme/payments",
		PR:         42,
		Commit:     "0123456789abcdef0123456789abcdef01234567",
		IssueKey:   "PAY-12",
		Team:       "checkout",
		Trigger:    string(model.EventPRCreated),
		DeliveryID: "8f6c1c2e",
		Summary:    "asked Mei and Kofi to review",
		// Spacing and key order must survive: stored byte for byte.
		Decision: json.RawMessage(`{"status":"pending",  "picks":[{"b":1,"a":2}]}`),
		Snapshot: json.RawMessage(`{"pr":{"id":42}}`),
		Outcome:  "requested 2 reviewers",
		// Nanoseconds and a zone: truncated to the millisecond, UTC.
		CreatedAt: base,
	}
	id, err := s.SaveDecision(ctxT(t), d)
	must(t, err, "SaveDecision")
	if id == 0 || d.ID != id {
		t.Fatalf("SaveDecision = %d, d.ID %d", id, d.ID)
	}
	got, err := s.GetDecision(ctxT(t), id)
	must(t, err, "GetDecision")
	want := *d
	want.CreatedAt = canon(base)
	same(t, "GetDecision", *got, want)
	utc(t, "CreatedAt", got.CreatedAt)

	// Empty raw JSON comes back nil; ids grow.
	e := &store.DecisionRecord{Kind: model.SubjectIssue, IssueKey: "PAY-13", CreatedAt: base, Decision: json.RawMessage{}}
	id2, err := s.SaveDecision(ctxT(t), e)
	must(t, err, "SaveDecision")
	if id2 <= id {
		t.Errorf("second id %d not after %d", id2, id)
	}
	got, err = s.GetDecision(ctxT(t), id2)
	must(t, err, "GetDecision")
	if got.Decision != nil || got.Snapshot != nil {
		t.Errorf("empty JSON came back as %q, %q", got.Decision, got.Snapshot)
	}
	if _, err := s.SaveDecision(ctxT(t), &store.DecisionRecord{Summary: "no time"}); err == nil {
		t.Error("SaveDecision without CreatedAt: no error")
	}
}

func testSetOutcome(t *testing.T, s store.Store) {
	d := &store.DecisionRecord{Kind: model.SubjectGate, Summary: "gate opened", CreatedAt: base}
	id, err := s.SaveDecision(ctxT(t), d)
	must(t, err, "SaveDecision")
	must(t, s.SetOutcome(ctxT(t), id, "dry-run"), "SetOutcome")
	got, err := s.GetDecision(ctxT(t), id)
	must(t, err, "GetDecision")
	if got.Outcome != "dry-run" || got.Summary != "gate opened" {
		t.Errorf("after SetOutcome: outcome %q summary %q", got.Outcome, got.Summary)
	}
	if err := s.SetOutcome(ctxT(t), id+100, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetOutcome unknown: %v, want ErrNotFound", err)
	}
}

func testDecisionNotFound(t *testing.T, s store.Store) {
	if _, err := s.GetDecision(ctxT(t), 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDecision: %v, want ErrNotFound", err)
	}
}

func testListDecisions(t *testing.T, s store.Store) {
	// Saved out of time order; "c" and "d" share a CreatedAt (ID decides).
	seed := []store.DecisionRecord{
		{Summary: "c", Kind: model.SubjectPullRequest, Repository: "acme/pay", PR: 1, CreatedAt: at(2 * time.Hour)},
		{Summary: "a", Kind: model.SubjectPullRequest, Repository: "acme/pay", PR: 2, CreatedAt: at(0)},
		{Summary: "d", Kind: model.SubjectPullRequest, Repository: "acme/web", PR: 1, CreatedAt: at(2 * time.Hour)},
		{Summary: "b", Kind: model.SubjectIssue, IssueKey: "PAY-1", CreatedAt: at(time.Hour)},
		{Summary: "e", Kind: model.SubjectGate, Repository: "acme/pay", CreatedAt: at(3 * time.Hour)},
		{Summary: "f", Kind: model.SubjectIssue, IssueKey: "PAY-2", CreatedAt: at(3*time.Hour + time.Millisecond)},
	}
	for i := range seed {
		_, err := s.SaveDecision(ctxT(t), &seed[i])
		must(t, err, "SaveDecision")
	}
	cases := []struct {
		name string
		f    store.DecisionFilter
		want []string
	}{
		{"all", store.DecisionFilter{}, []string{"a", "b", "c", "d", "e", "f"}},
		{"limit", store.DecisionFilter{Limit: 3}, []string{"a", "b", "c"}},
		{"kind", store.DecisionFilter{Kind: model.SubjectIssue}, []string{"b", "f"}},
		{"repository", store.DecisionFilter{Repository: "acme/pay"}, []string{"a", "c", "e"}},
		{"repository and pr", store.DecisionFilter{Repository: "acme/pay", PR: 1}, []string{"c"}},
		{"pr alone", store.DecisionFilter{PR: 1}, []string{"c", "d"}},
		{"issue", store.DecisionFilter{IssueKey: "PAY-2"}, []string{"f"}},
		{"since inclusive", store.DecisionFilter{Since: at(2 * time.Hour)}, []string{"c", "d", "e", "f"}},
		{"until exclusive", store.DecisionFilter{Until: at(2 * time.Hour)}, []string{"a", "b"}},
		{"window", store.DecisionFilter{Since: at(time.Hour), Until: at(3 * time.Hour)}, []string{"b", "c", "d"}},
		{"millisecond bound", store.DecisionFilter{Since: at(3*time.Hour + time.Millisecond)}, []string{"f"}},
		{"kind window limit", store.DecisionFilter{Kind: model.SubjectPullRequest, Since: at(time.Minute), Limit: 1}, []string{"c"}},
		{"no match", store.DecisionFilter{Repository: "acme/none"}, nil},
	}
	for _, tc := range cases {
		got, err := s.ListDecisions(ctxT(t), tc.f)
		must(t, err, "ListDecisions")
		var names []string
		for _, d := range got {
			names = append(names, d.Summary)
		}
		same(t, "ListDecisions "+tc.name, names, tc.want)
	}
}

func prTests() []test {
	return []test{
		{"UpsertRoundTrip", testPRRoundTrip},
		{"NotFound", testPRNotFound},
		{"ListFilters", testListPRs},
		{"ByCommit", testPRsByCommit},
		{"ReviewLoad", testReviewLoad},
		{"OpenReviews", testOpenReviews},
	}
}

func fullPR() store.PRRecord {
	return store.PRRecord{
		Repository:        "acme/payments",
		ID:                42,
		Team:              "checkout",
		Title:             "Add refunds",
		AuthorAccountID:   "557058:author",
		State:             model.PROpen,
		Draft:             true,
		SourceCommit:      "0123456789ab",
		DestinationBranch: "main",
		MergeCommit:       "",
		ClosedBy:          "",
		DiffCommit:        "0123456789ab",
		ChangedFiles:      []string{"api/refund.go", "docs/refunds.md"},
		Reviewers:         []string{"557058:mei", "557058:kofi"},
		Requested:         []string{"557058:mei"},
		Approvals: []model.Approval{
			{AccountID: "557058:mei", Name: "Mei", State: model.ReviewApproved, At: at(time.Minute)},
			{AccountID: "557058:kofi", State: model.ReviewChangesRequested},
		},
		CommentID:     "987654",
		Statuses:      map[string]string{"rolekeeper-review": "INPROGRESS|1 of 2 approvals"},
		ReviewMet:     true,
		CreatedAt:     base,
		UpdatedAt:     at(time.Hour),
		FirstReviewAt: at(time.Minute),
		ApprovedAt:    at(2 * time.Minute),
		ClosedAt:      at(3 * time.Hour),
		SeenAt:        at(4 * time.Hour),
	}
}

// canonPR is what a store returns for pr.
func canonPR(pr store.PRRecord) store.PRRecord {
	for _, p := range []*time.Time{&pr.CreatedAt, &pr.UpdatedAt, &pr.FirstReviewAt, &pr.ApprovedAt, &pr.ClosedAt, &pr.SeenAt} {
		*p = canon(*p)
	}
	if pr.Approvals != nil {
		as := make([]model.Approval, len(pr.Approvals))
		for i, a := range pr.Approvals {
			a.At = canon(a.At)
			as[i] = a
		}
		pr.Approvals = as
	}
	return pr
}

func getPR(t *testing.T, s store.Store, repo string, id int) store.PRRecord {
	t.Helper()
	pr, err := s.GetPR(ctxT(t), repo, id)
	must(t, err, "GetPR")
	return *pr
}

func testPRRoundTrip(t *testing.T, s store.Store) {
	pr := fullPR()
	must(t, s.UpsertPR(ctxT(t), &pr), "UpsertPR insert")
	got := getPR(t, s, pr.Repository, pr.ID)
	same(t, "after insert", got, canonPR(pr))
	utc(t, "times", got.CreatedAt, got.UpdatedAt, got.FirstReviewAt, got.ApprovedAt, got.ClosedAt, got.SeenAt, got.Approvals[0].At)

	// Update every field; empty slices and maps stay empty, nil ones and
	// zero times come back nil and zero.
	upd := store.PRRecord{
		Repository:        pr.Repository,
		ID:                pr.ID,
		Team:              "platform",
		Title:             "Add refunds (v2)",
		AuthorAccountID:   "557058:other",
		State:             model.PRMerged,
		SourceCommit:      "fedcba9876543210fedcba9876543210fedcba98",
		DestinationBranch: "release",
		MergeCommit:       "aaaaaaaaaaaabbbbbbbbbbbbccccccccccccdddd",
		ClosedBy:          "557058:mei",
		DiffCommit:        "fedcba987654",
		ChangedFiles:      []string{},
		Reviewers:         nil,
		Requested:         []string{"557058:kofi", "557058:ana"},
		Approvals:         []model.Approval{},
		Statuses:          map[string]string{},
		UpdatedAt:         at(5 * time.Hour),
		ClosedAt:          at(5 * time.Hour),
	}
	must(t, s.UpsertPR(ctxT(t), &upd), "UpsertPR update")
	got = getPR(t, s, pr.Repository, pr.ID)
	same(t, "after update", got, canonPR(upd))

	// The other record of the repository is untouched.
	other := fullPR()
	other.ID = 43
	other.Statuses, other.Approvals = nil, nil
	must(t, s.UpsertPR(ctxT(t), &other), "UpsertPR other")
	same(t, "other", getPR(t, s, other.Repository, 43), canonPR(other))
	same(t, "first after other", getPR(t, s, pr.Repository, pr.ID), canonPR(upd))
}

func testPRNotFound(t *testing.T, s store.Store) {
	pr := fullPR()
	must(t, s.UpsertPR(ctxT(t), &pr), "UpsertPR")
	for _, tc := range []struct {
		repo string
		id   int
	}{{"acme/payments", 41}, {"acme/other", 42}} {
		if _, err := s.GetPR(ctxT(t), tc.repo, tc.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetPR(%s, %d): %v, want ErrNotFound", tc.repo, tc.id, err)
		}
	}
}

func testListPRs(t *testing.T, s store.Store) {
	seed := []store.PRRecord{
		{Repository: "acme/web", ID: 2, Title: "w2", State: model.PROpen, UpdatedAt: at(time.Hour)},
		{Repository: "acme/pay", ID: 10, Title: "p10", State: model.PRMerged, UpdatedAt: at(3 * time.Hour), ClosedAt: at(3 * time.Hour)},
		{Repository: "acme/pay", ID: 9, Title: "p9", State: model.PROpen, UpdatedAt: at(2 * time.Hour)},
		{Repository: "acme/web", ID: 1, Title: "w1", State: model.PRDeclined, UpdatedAt: at(4 * time.Hour), ClosedAt: at(4 * time.Hour)},
		{Repository: "acme/pay", ID: 11, Title: "p11", State: model.PROpen}, // never updated upstream
	}
	for i := range seed {
		must(t, s.UpsertPR(ctxT(t), &seed[i]), "UpsertPR")
	}
	cases := []struct {
		name string
		f    store.PRFilter
		want []string
	}{
		{"all, by repository then id", store.PRFilter{}, []string{"p9", "p10", "p11", "w1", "w2"}},
		{"limit", store.PRFilter{Limit: 2}, []string{"p9", "p10"}},
		{"repository", store.PRFilter{Repository: "acme/web"}, []string{"w1", "w2"}},
		{"state", store.PRFilter{State: model.PROpen}, []string{"p9", "p11", "w2"}},
		{"repository and state", store.PRFilter{Repository: "acme/pay", State: model.PROpen}, []string{"p9", "p11"}},
		{"updated since", store.PRFilter{UpdatedSince: at(2 * time.Hour)}, []string{"p9", "p10", "w1"}},
		{"updated until", store.PRFilter{UpdatedUntil: at(2 * time.Hour)}, []string{"w2"}},
		{"updated window", store.PRFilter{UpdatedSince: at(time.Hour), UpdatedUntil: at(4 * time.Hour)}, []string{"p9", "p10", "w2"}},
		{"closed since", store.PRFilter{ClosedSince: at(4 * time.Hour)}, []string{"w1"}},
		{"closed until: closed ones only", store.PRFilter{ClosedUntil: at(4 * time.Hour)}, []string{"p10"}},
		{"closed window", store.PRFilter{ClosedSince: base, ClosedUntil: at(5 * time.Hour)}, []string{"p10", "w1"}},
		{"no match", store.PRFilter{State: model.PRSuperseded}, nil},
	}
	for _, tc := range cases {
		got, err := s.ListPRs(ctxT(t), tc.f)
		must(t, err, "ListPRs")
		var titles []string
		for _, pr := range got {
			titles = append(titles, pr.Title)
		}
		same(t, "ListPRs "+tc.name, titles, tc.want)
	}
}

func testPRsByCommit(t *testing.T, s store.Store) {
	const (
		full  = "4f2a9c1be07d5a3c6b8e9f0a1b2c3d4e5f607182"
		short = "4f2a9c1be07d" // 12 characters, as in payloads
		// twin shares full's 12-hex prefix: a different commit.
		twin  = "4f2a9c1be07d000000000000000000000000beef"
		other = "9999999999999999999999999999999999999999"
	)
	seed := []store.PRRecord{
		{Repository: "acme/pay", ID: 7, Title: "merged-full", State: model.PRMerged, MergeCommit: full, SourceCommit: other},
		{Repository: "acme/pay", ID: 3, Title: "source-short", State: model.PROpen, SourceCommit: short},
		{Repository: "acme/pay", ID: 5, Title: "merged-short", State: model.PRMerged, MergeCommit: short[:10] + "00", SourceCommit: "1111"},
		{Repository: "acme/pay", ID: 9, Title: "unrelated", State: model.PROpen, SourceCommit: "abcdefabcdef"},
		{Repository: "acme/pay", ID: 11, Title: "no commits", State: model.PROpen},
		{Repository: "acme/pay", ID: 13, Title: "twin head", State: model.PROpen, SourceCommit: twin},
		{Repository: "acme/web", ID: 1, Title: "other repo", State: model.PRMerged, MergeCommit: full},
	}
	for i := range seed {
		must(t, s.UpsertPR(ctxT(t), &seed[i]), "UpsertPR")
	}
	cases := []struct {
		name   string
		repo   string
		commit string
		want   []string
	}{
		// Only the full hash itself: never a record holding its
		// abbreviation, never the twin that shares its 12-hex prefix.
		{"full hash finds only itself", "acme/pay", full, []string{"merged-full"}},
		{"upper case is the same hash", "acme/pay", strings.ToUpper(full), []string{"merged-full"}},
		{"the twin finds only the twin", "acme/pay", twin, []string{"twin head"}},
		{"a short hash finds nothing", "acme/pay", short, nil},
		{"a 12-hex record is never found", "acme/pay", "abcdefabcdef", nil},
		{"source commit", "acme/pay", other, []string{"merged-full"}},
		{"other repository", "acme/web", full, []string{"other repo"}},
		{"no match", "acme/pay", "0000000000000000000000000000000000000000", nil},
		{"empty commit", "acme/pay", "", nil},
	}
	for _, tc := range cases {
		got, err := s.PRsByCommit(ctxT(t), tc.repo, tc.commit)
		must(t, err, "PRsByCommit")
		var titles []string
		for _, pr := range got {
			titles = append(titles, pr.Title)
		}
		same(t, "PRsByCommit "+tc.name, titles, tc.want)
	}
}

func testReviewLoad(t *testing.T, s store.Store) {
	seed := reviewSeed()
	for i := range seed {
		must(t, s.UpsertPR(ctxT(t), &seed[i]), "UpsertPR")
	}
	for _, tc := range []struct {
		name string
		f    store.PRFilter
		want map[string]int
	}{
		{"open", store.PRFilter{State: model.PROpen}, map[string]int{"kofi": 3, "mei": 1}},
		{"all (closed ones ignored)", store.PRFilter{}, map[string]int{"kofi": 3, "mei": 1}},
		{"one repository", store.PRFilter{Repository: "acme/pay"}, map[string]int{"kofi": 2}},
	} {
		prs, err := s.ListPRs(ctxT(t), tc.f)
		must(t, err, "ListPRs")
		same(t, "ReviewLoad "+tc.name, store.ReviewLoad(prs), tc.want)
	}
}

// OpenReviews is ReviewLoad kept by UpsertPR: the same count without the
// pull request evaluated, following reviewers, approvals and state as
// records change.
func testOpenReviews(t *testing.T, s store.Store) {
	seed := append(reviewSeed(),
		store.PRRecord{Repository: "acme/web", ID: 1, State: model.PROpen}) // same id, other repository
	for i := range seed {
		must(t, s.UpsertPR(ctxT(t), &seed[i]), "UpsertPR")
	}
	check := func(name, repo string, id int, want map[string]int) {
		t.Helper()
		got, err := s.OpenReviews(ctxT(t), repo, id)
		must(t, err, "OpenReviews")
		same(t, "OpenReviews "+name, got, want)
		// The count agrees with listing the records.
		open, err := s.ListPRs(ctxT(t), store.PRFilter{State: model.PROpen})
		must(t, err, "ListPRs")
		var others []store.PRRecord
		for _, o := range open {
			if o.Repository != repo || o.ID != id {
				others = append(others, o)
			}
		}
		same(t, "ReviewLoad "+name, store.ReviewLoad(others), want)
	}
	check("all", "", 0, map[string]int{"kofi": 3, "mei": 1})
	check("without acme/web#3", "acme/web", 3, map[string]int{"kofi": 2})
	check("without acme/pay#1", "acme/pay", 1, map[string]int{"kofi": 2, "mei": 1})

	// kofi approves #2, ana is added to #3: the count follows.
	seed[1].Approvals = append(seed[1].Approvals, model.Approval{AccountID: "kofi", State: model.ReviewApproved, At: base})
	must(t, s.UpsertPR(ctxT(t), &seed[1]), "UpsertPR")
	seed[2].Reviewers = append(seed[2].Reviewers, "ana")
	must(t, s.UpsertPR(ctxT(t), &seed[2]), "UpsertPR")
	check("after approval", "", 0, map[string]int{"kofi": 2, "mei": 1, "ana": 1})

	// #3 merged, #4 (merged) stays out, #1 loses its reviewers.
	seed[2].State = model.PRMerged
	must(t, s.UpsertPR(ctxT(t), &seed[2]), "UpsertPR")
	seed[0].Reviewers = nil
	must(t, s.UpsertPR(ctxT(t), &seed[0]), "UpsertPR")
	check("after merge", "", 0, map[string]int{})
}

func findingTests() []test {
	return []test{
		{"DedupeRoundTrip", testFindingDedupe},
		{"ListFilters", testListFindings},
	}
}

func testFindingDedupe(t *testing.T, s store.Store) {
	f := model.Finding{
		Key: "merge-unapproved:acme/pay#12", Kind: "required-approvals", RuleID: "checkout/review/1",
		Team: "checkout", Subject: model.SubjectPullRequest, Ref: "acme/pay#12",
		URL: "https://bitbucket.org/acme/pay/pull-requests/12", Reason: "merged with 1 of 2 approvals",
		Held: false, OccurredAt: base, RecordedAt: at(time.Minute), Actor: "557058:mei", Details: "approvals: mei",
	}
	ok, err := s.AddFinding(ctxT(t), f)
	must(t, err, "AddFinding")
	if !ok {
		t.Fatal("AddFinding: not stored")
	}
	again := f
	again.Reason, again.Held = "changed", true
	ok, err = s.AddFinding(ctxT(t), again)
	must(t, err, "AddFinding again")
	if ok {
		t.Error("AddFinding with an existing key stored")
	}
	held := model.Finding{Key: "k2", Kind: "break-glass", Held: true, OccurredAt: at(time.Hour)}
	ok, err = s.AddFinding(ctxT(t), held)
	must(t, err, "AddFinding held")
	if !ok {
		t.Error("AddFinding k2: not stored")
	}
	got, err := s.ListFindings(ctxT(t), store.FindingFilter{})
	must(t, err, "ListFindings")
	want := []model.Finding{f, held}
	want[0].OccurredAt, want[0].RecordedAt = canon(f.OccurredAt), canon(f.RecordedAt)
	want[1].OccurredAt = canon(held.OccurredAt)
	same(t, "ListFindings", got, want)
	if len(got) > 0 {
		utc(t, "times", got[0].OccurredAt, got[0].RecordedAt)
	}
	for _, bad := range []model.Finding{{Key: "no-time"}, {OccurredAt: base}} {
		if _, err := s.AddFinding(ctxT(t), bad); err == nil {
			t.Errorf("AddFinding(%+v): no error", bad)
		}
	}
}

func testListFindings(t *testing.T, s store.Store) {
	seed := []model.Finding{
		{Key: "b", Kind: "required-approvals", Team: "checkout", OccurredAt: at(time.Hour)},
		{Key: "a", Kind: "required-approvals", Team: "checkout", OccurredAt: at(time.Hour)}, // same time: Key decides
		{Key: "c", Kind: "break-glass", Team: "platform", OccurredAt: at(0)},
		{Key: "d", Kind: "break-glass", Team: "", OccurredAt: at(2 * time.Hour)},
		{Key: "e", Kind: "fix-version", Team: "checkout", OccurredAt: at(3 * time.Hour)},
	}
	for _, f := range seed {
		_, err := s.AddFinding(ctxT(t), f)
		must(t, err, "AddFinding")
	}
	cases := []struct {
		name string
		f    store.FindingFilter
		want []string
	}{
		{"all", store.FindingFilter{}, []string{"c", "a", "b", "d", "e"}},
		{"limit", store.FindingFilter{Limit: 2}, []string{"c", "a"}},
		{"since inclusive", store.FindingFilter{Since: at(time.Hour)}, []string{"a", "b", "d", "e"}},
		{"until exclusive", store.FindingFilter{Until: at(2 * time.Hour)}, []string{"c", "a", "b"}},
		{"window", store.FindingFilter{Since: at(time.Minute), Until: at(3 * time.Hour)}, []string{"a", "b", "d"}},
		{"team", store.FindingFilter{Team: "checkout"}, []string{"a", "b", "e"}},
		{"kind", store.FindingFilter{Kind: "break-glass"}, []string{"c", "d"}},
		{"team and kind", store.FindingFilter{Team: "checkout", Kind: "fix-version"}, []string{"e"}},
		{"no match", store.FindingFilter{Team: "nobody"}, nil},
	}
	for _, tc := range cases {
		got, err := s.ListFindings(ctxT(t), tc.f)
		must(t, err, "ListFindings")
		var keys []string
		for _, f := range got {
			keys = append(keys, f.Key)
		}
		same(t, "ListFindings "+tc.name, keys, tc.want)
	}
}
