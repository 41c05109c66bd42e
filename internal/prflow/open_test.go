package prflow

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

func TestNewPullRequest(t *testing.T) {
	// The commits (authors and the full head), the diffstat, the pull
	// request read just before the reviewers PUT, two statuses, a comment.
	all := []string{"PullRequestCommits", "PullRequestDiffStat", "GetPullRequest", "SetReviewers", "SetCommitStatus", "SetCommitStatus", "CreateComment"}
	tests := []struct {
		name       string
		pr         func(*model.PullRequest)
		files      []string
		wantCalls  []string
		wantReview string // state of rolekeeper-review
		wantTests  string
		testsDesc  string // substring of the tests description
		reviewers  []string
		commit     string // where the statuses must be
	}{
		{
			// Bitbucket answers 12-hex hashes: the statuses go on the full
			// one from the commits (hs.status finds only those).
			name:       "asks one lead, posts both statuses on the full hash, comments once",
			files:      goodFiles,
			wantCalls:  all,
			wantReview: rules.StateInProgress, wantTests: rules.StateSuccessful, testsDesc: "tests changed",
			commit: fullA,
		},
		{
			name:       "source changed without tests fails rolekeeper-tests",
			files:      []string{"internal/refund/refund.go"},
			wantCalls:  all,
			wantReview: rules.StateInProgress, wantTests: rules.StateFailed, testsDesc: "internal/refund/refund.go",
			commit: fullA,
		},
		{
			name:       "helm and code: one lead answers for both rules, one PUT",
			files:      []string{"helm/values.yaml", "internal/a.go", "internal/a_test.go"},
			wantCalls:  all,
			wantReview: rules.StateInProgress, wantTests: rules.StateSuccessful,
			commit: fullA,
		},
		{
			name: "team with no rule on paths: no diffstat",
			pr: func(pr *model.PullRequest) {
				pr.Repository, pr.Author, pr.URL = repoWeb, ana, ""
			},
			wantCalls:  []string{"PullRequestCommits", "GetPullRequest", "SetReviewers", "SetCommitStatus", "SetCommitStatus", "CreateComment"},
			wantReview: rules.StateInProgress, wantTests: rules.StateSuccessful,
			reviewers: []string{accWes},
			commit:    fullA,
		},
		{
			name: "the lead is already a reviewer: no PUT, no read of the pull request",
			pr: func(pr *model.PullRequest) {
				pr.Reviewers = []model.Actor{mei}
			},
			files:      goodFiles,
			wantCalls:  []string{"PullRequestCommits", "PullRequestDiffStat", "SetCommitStatus", "SetCommitStatus", "CreateComment"},
			wantReview: rules.StateInProgress, wantTests: rules.StateSuccessful,
			reviewers: []string{accMei},
			commit:    fullA,
		},
		{
			name: "payload with the full hash: the commits are still read for their authors",
			pr: func(pr *model.PullRequest) {
				pr.Reviewers = []model.Actor{mei}
				pr.SourceCommit = fullA
			},
			files:      goodFiles,
			wantCalls:  []string{"PullRequestCommits", "PullRequestDiffStat", "SetCommitStatus", "SetCommitStatus", "CreateComment"},
			wantReview: rules.StateInProgress, wantTests: rules.StateSuccessful,
			reviewers: []string{accMei},
			commit:    fullA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			pr := newPR()
			if tt.pr != nil {
				tt.pr(&pr)
			}
			hs.upstream(pr, tt.files...)
			calls := hs.mustHandle(event(model.EventPRCreated, pr, pr.Author))
			wantCalls(t, calls, tt.wantCalls...)
			t.Logf("upstream calls for a new pull request: %d %q", len(calls), calls)

			got := hs.reviewerIDs(pr.Repository, pr.ID)
			if tt.reviewers != nil {
				if !slices.Equal(got, tt.reviewers) {
					t.Errorf("reviewers = %q, want %q", got, tt.reviewers)
				}
			} else if len(got) != 1 || (got[0] != accMei && got[0] != accKofi) {
				t.Errorf("reviewers = %q, want one of the leads", got)
			}
			for key, want := range map[string]string{rules.StatusReview: tt.wantReview, rules.StatusTests: tt.wantTests} {
				st, ok := hs.status(pr.Repository, tt.commit, key)
				if !ok {
					t.Fatalf("no %s status on %s", key, tt.commit)
				}
				if st.State != want {
					t.Errorf("%s = %s (%s), want %s", key, st.State, st.Description, want)
				}
				if st.URL != "https://rolekeeper.example/decisions/"+hs.st.decisions[0].PublicID || st.Name != strings.ReplaceAll(key, "-", " ") {
					t.Errorf("%s url %q name %q", key, st.URL, st.Name)
				}
			}
			if tt.testsDesc != "" {
				st, _ := hs.status(pr.Repository, tt.commit, rules.StatusTests)
				if !strings.Contains(st.Description, tt.testsDesc) {
					t.Errorf("tests description %q lacks %q", st.Description, tt.testsDesc)
				}
			}
			cs := hs.srv.Comments(pr.Repository, pr.ID)
			if len(cs) != 1 || !strings.Contains(cs[0].Body, "rolekeeper") {
				t.Fatalf("comments = %+v, want one explaining comment", cs)
			}
			rec, ok := hs.st.rec(pr.Repository, pr.ID)
			if !ok {
				t.Fatal("no record")
			}
			if rec.CommentID != cs[0].ID || rec.Team == "" || rec.State != model.PROpen {
				t.Errorf("record comment %q team %q state %q", rec.CommentID, rec.Team, rec.State)
			}
			if len(tt.files) > 0 && !slices.Equal(rec.ChangedFiles, tt.files) {
				t.Errorf("record files %q, want %q", rec.ChangedFiles, tt.files)
			}
		})
	}
}

func TestDecisionRecord(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	ev := event(model.EventPRCreated, pr, lena)
	ev.DeliveryID = "req-1"
	hs.mustHandle(ev)

	d := hs.st.lastDecision()
	if d.Kind != model.SubjectPullRequest || d.Repository != repoPay || d.PR != 7 || d.Team != "payments" ||
		d.Trigger != string(model.EventPRCreated) || d.DeliveryID != "req-1" || !model.SameCommit(d.Commit, fullA) {
		t.Errorf("decision record = %+v", d)
	}
	if !strings.HasPrefix(d.Summary, "reloadly/payments-api#7") || strings.Contains(d.Summary, "\n") {
		t.Errorf("summary = %q", d.Summary)
	}
	picked := hs.reviewerIDs(repoPay, 7)[0]
	handle := map[string]string{accMei: "mei", accKofi: "kofi"}[picked]
	for _, part := range []string{"asked " + handle, "review INPROGRESS", "tests SUCCESSFUL", "comment created"} {
		if !strings.Contains(d.Outcome, part) {
			t.Errorf("outcome %q lacks %q", d.Outcome, part)
		}
	}
	var dec rules.Decision
	if err := json.Unmarshal(d.Decision, &dec); err != nil || dec.Team != "payments" || len(dec.Rules) != 3 {
		t.Errorf("decision json: %v %+v", err, dec)
	}
	var snap rules.PRSnapshot
	if err := json.Unmarshal(d.Snapshot, &snap); err != nil || !slices.Equal(snap.ChangedFiles, goodFiles) || snap.Author.AccountID != accLena {
		t.Errorf("snapshot json: %v %+v", err, snap)
	}
	// simulate: the stored snapshot gives the stored decision again.
	again := rules.Evaluate(testOrg(), snap)
	if !slices.Equal(pickAccounts(again.Request), pickAccounts(dec.Request)) || again.ApprovalsMet != dec.ApprovalsMet {
		t.Errorf("re-evaluated snapshot differs: %+v vs %+v", again.Request, dec.Request)
	}
}

func pickAccounts(ps []rules.Pick) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.AccountID
	}
	return out
}

// TestRedelivery: after a new pull request was handled, events that change
// nothing cost no upstream call.
func TestRedelivery(t *testing.T) {
	tests := []struct {
		name string
		next func(hs *harness) []*model.Event
	}{
		{"updated with the same commit", func(hs *harness) []*model.Event {
			pr := hs.current(repoPay, 7)
			return []*model.Event{event(model.EventPRUpdated, pr, lena)}
		}},
		{"created redelivered (payload from before the reviewers PUT)", func(hs *harness) []*model.Event {
			return []*model.Event{event(model.EventPRCreated, newPR(), lena)}
		}},
		{"updated rendered before the reviewers PUT, after the load moved", func(hs *harness) []*model.Event {
			// The lead asked now has more open reviews than the other: a
			// stale reviewer list must not make rolekeeper swap them.
			lead := hs.reviewerIDs(repoPay, 7)[0]
			for id := 100; id < 104; id++ {
				hs.st.UpsertPR(context.Background(), &store.PRRecord{Repository: repoPay, ID: id, State: model.PROpen, Reviewers: []string{lead}})
			}
			return []*model.Event{event(model.EventPRUpdated, newPR(), lena)}
		}},
		{"title edited", func(hs *harness) []*model.Event {
			title := "Add refunds (v2)"
			hs.edit(7, t0.Add(time.Hour), bitbuckettest.Edit{Title: &title})
			return []*model.Event{event(model.EventPRUpdated, hs.current(repoPay, 7), lena)}
		}},
		{"approval by someone outside the role redelivered", func(hs *harness) []*model.Event {
			pr := hs.current(repoPay, 7)
			ev := approvalEvent(pr, paul, t0.Add(2*time.Hour))
			hs.mustHandle(ev)
			return []*model.Event{ev}
		}},
		{"approval by the lead redelivered: statuses unchanged", func(hs *harness) []*model.Event {
			pr := hs.current(repoPay, 7)
			lead := actor(hs.reviewerIDs(repoPay, 7)[0], "")
			ev := approvalEvent(pr, lead, t0.Add(2*time.Hour))
			calls := hs.mustHandle(ev)
			wantCalls(hs.t, calls, "GetPullRequest", "SetCommitStatus")
			return []*model.Event{ev, ev}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			pr := newPR()
			hs.upstream(pr, goodFiles...)
			hs.mustHandle(event(model.EventPRCreated, pr, lena))
			for _, ev := range tt.next(hs) {
				before := hs.st.decisionCount()
				calls := hs.mustHandle(ev)
				wantCalls(t, calls)
				// Superseded (nothing stored), or decided again to no effect.
				if hs.st.decisionCount() != before {
					if out := hs.st.lastDecision().Outcome; out != "nothing to change" {
						t.Errorf("outcome = %q", out)
					}
				}
			}
			if n := len(hs.srv.Comments(repoPay, 7)); n != 1 {
				t.Errorf("%d comments, want 1", n)
			}
		})
	}
}

func TestReviewerPolicy(t *testing.T) {
	t.Run("a reviewer a person added is never removed", func(t *testing.T) {
		hs := newHarness(t)
		pr := newPR()
		pr.Reviewers = []model.Actor{paul}
		hs.upstream(pr, goodFiles...)
		calls := hs.mustHandle(event(model.EventPRCreated, pr, lena))
		if count(calls, "SetReviewers") != 1 {
			t.Fatalf("calls %q", calls)
		}
		got := hs.reviewerIDs(repoPay, 7)
		if len(got) != 2 || got[0] != accPaul {
			t.Errorf("reviewers = %q, want paul kept and one lead added", got)
		}
	})
	t.Run("the author is never requested", func(t *testing.T) {
		hs := newHarness(t)
		pr := newPR()
		pr.Author = mei // a lead authoring: the other lead is asked
		hs.upstream(pr, goodFiles...)
		hs.mustHandle(event(model.EventPRCreated, pr, mei))
		if got := hs.reviewerIDs(repoPay, 7); !slices.Equal(got, []string{accKofi}) {
			t.Errorf("reviewers = %q, want kofi only", got)
		}
	})
	t.Run("a person rolekeeper asked and someone removed is not asked again", func(t *testing.T) {
		hs := newHarness(t)
		pr := newPR()
		hs.upstream(pr, goodFiles...)
		hs.mustHandle(event(model.EventPRCreated, pr, lena))
		hs.edit(7, t0.Add(time.Hour), bitbuckettest.Edit{Reviewers: &[]model.Actor{}})
		calls := hs.mustHandle(event(model.EventPRUpdated, hs.current(repoPay, 7), lena))
		if count(calls, "SetReviewers") != 0 {
			t.Errorf("calls %q: rolekeeper fought the person who removed the reviewer", calls)
		}
	})
	t.Run("a reviewer rolekeeper asked stays: the next update adds nobody", func(t *testing.T) {
		hs := newHarness(t)
		pr := newPR()
		hs.upstream(pr, goodFiles...)
		hs.mustHandle(event(model.EventPRCreated, pr, lena))
		first := hs.reviewerIDs(repoPay, 7)
		cur := hs.current(repoPay, 7)
		cur.UpdatedAt = cur.UpdatedAt.Add(time.Hour)
		// Another pull request makes the asked lead busier: still kept.
		other := newPR()
		other.ID, other.Reviewers = 8, []model.Actor{{AccountID: first[0]}}
		hs.upstream(other, goodFiles...)
		hs.mustHandle(event(model.EventPRCreated, other, lena))
		calls := hs.mustHandle(event(model.EventPRUpdated, cur, lena))
		wantCalls(t, calls)
		if got := hs.reviewerIDs(repoPay, 7); !slices.Equal(got, first) {
			t.Errorf("reviewers = %q, want %q", got, first)
		}
	})
}

func TestDraft(t *testing.T) {
	t.Run("no reviewers and no comment until ready; statuses posted", func(t *testing.T) {
		hs := newHarness(t)
		pr := newPR()
		pr.Draft = true
		hs.upstream(pr, goodFiles...)
		calls := hs.mustHandle(event(model.EventPRCreated, pr, lena))
		wantCalls(t, calls, "PullRequestCommits", "PullRequestDiffStat", "SetCommitStatus", "SetCommitStatus")
		if got := hs.reviewerIDs(repoPay, 7); len(got) != 0 {
			t.Errorf("draft got reviewers %q", got)
		}
		if st, ok := hs.status(repoPay, fullA, rules.StatusReview); !ok || st.State != rules.StateInProgress {
			t.Errorf("review status %+v %v", st, ok)
		}

		draft := false
		hs.edit(7, t0.Add(time.Hour), bitbuckettest.Edit{Draft: &draft})
		calls = hs.mustHandle(event(model.EventPRUpdated, hs.current(repoPay, 7), lena))
		wantCalls(t, calls, "GetPullRequest", "SetReviewers", "CreateComment")
		if got := hs.reviewerIDs(repoPay, 7); len(got) != 1 {
			t.Errorf("ready pull request reviewers %q", got)
		}
	})
	t.Run("AssignDrafts asks on drafts", func(t *testing.T) {
		hs := newHarness(t, func(o *Options) { o.AssignDrafts = true })
		pr := newPR()
		pr.Draft = true
		hs.upstream(pr, goodFiles...)
		calls := hs.mustHandle(event(model.EventPRCreated, pr, lena))
		if count(calls, "SetReviewers") != 1 || count(calls, "CreateComment") != 1 {
			t.Errorf("calls %q", calls)
		}
	})
}

func TestApprovals(t *testing.T) {
	at := t0.Add(3 * time.Hour)
	tests := []struct {
		name        string
		events      func(pr model.PullRequest, lead model.Actor) []*model.Event
		wantReview  string
		descHas     string
		statusPosts int // on the last event
		firstReview bool
		approved    bool
	}{
		{
			name: "the asked lead approves: review passes",
			events: func(pr model.PullRequest, lead model.Actor) []*model.Event {
				return []*model.Event{approvalEvent(pr, lead, at)}
			},
			wantReview: rules.StateSuccessful, descHas: "approved by", statusPosts: 1, firstReview: true, approved: true,
		},
		{
			name: "approval by someone outside the role does not count",
			events: func(pr model.PullRequest, lead model.Actor) []*model.Event {
				return []*model.Event{approvalEvent(pr, paul, at)}
			},
			wantReview: rules.StateInProgress, statusPosts: 0, firstReview: true,
		},
		{
			name: "the author's own approval does not count and is no review",
			events: func(pr model.PullRequest, lead model.Actor) []*model.Event {
				return []*model.Event{approvalEvent(pr, lena, at)}
			},
			wantReview: rules.StateInProgress, statusPosts: 0,
		},
		{
			name: "approval withdrawn: back in progress",
			events: func(pr model.PullRequest, lead model.Actor) []*model.Event {
				ev := approvalEvent(pr, lead, at)
				un := event(model.EventPRUnapproved, approvedBy(pr, lead, at), lead)
				un.Approval = &model.Approval{AccountID: lead.AccountID, At: at.Add(time.Minute)}
				un.At = at.Add(time.Minute)
				un.PullRequest.UpdatedAt = un.At // Bitbucket's body: updated_on is the withdrawal
				return []*model.Event{ev, un}
			},
			wantReview: rules.StateInProgress, statusPosts: 1, firstReview: true, approved: true,
		},
		{
			name: "changes requested by the lead block",
			events: func(pr model.PullRequest, lead model.Actor) []*model.Event {
				pr.Participants = []model.Participant{{User: lead, State: model.ReviewChangesRequested, On: at}}
				ev := event(model.EventPRChangesRequested, pr, lead)
				ev.At = at
				return []*model.Event{ev}
			},
			wantReview: rules.StateInProgress, descHas: "changes requested", statusPosts: 1, firstReview: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			pr := newPR()
			hs.upstream(pr, goodFiles...)
			hs.mustHandle(event(model.EventPRCreated, pr, lena))
			lead := model.Actor{AccountID: hs.reviewerIDs(repoPay, 7)[0]}
			var calls []string
			for _, ev := range tt.events(hs.current(repoPay, 7), lead) {
				calls = hs.mustHandle(ev)
			}
			if n := count(calls, "SetCommitStatus"); n != tt.statusPosts {
				t.Errorf("status posts = %d (%q), want %d", n, calls, tt.statusPosts)
			}
			if count(calls, "PullRequestDiffStat")+count(calls, "CreateComment")+count(calls, "SetReviewers") != 0 {
				t.Errorf("calls %q: an approval needs no diffstat, no new comment, no PUT", calls)
			}
			st, _ := hs.status(repoPay, fullA, rules.StatusReview)
			if st.State != tt.wantReview || !strings.Contains(st.Description, tt.descHas) {
				t.Errorf("review = %s %q, want %s containing %q", st.State, st.Description, tt.wantReview, tt.descHas)
			}
			rec, _ := hs.st.rec(repoPay, 7)
			if got := !rec.FirstReviewAt.IsZero(); got != tt.firstReview {
				t.Errorf("FirstReviewAt = %v", rec.FirstReviewAt)
			} else if got && !rec.FirstReviewAt.Equal(at) {
				t.Errorf("FirstReviewAt = %v, want %v", rec.FirstReviewAt, at)
			}
			if got := !rec.ApprovedAt.IsZero(); got != tt.approved {
				t.Errorf("ApprovedAt = %v", rec.ApprovedAt)
			} else if got && !rec.ApprovedAt.Equal(at) {
				t.Errorf("ApprovedAt = %v, want %v", rec.ApprovedAt, at)
			}
			if rec.ReviewMet != (tt.wantReview == rules.StateSuccessful) {
				t.Errorf("ReviewMet = %v", rec.ReviewMet)
			}
			if n := len(hs.srv.Comments(repoPay, 7)); n != 1 {
				t.Errorf("%d comments", n)
			}
		})
	}
}

func TestPush(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	hs.mustHandle(event(model.EventPRCreated, pr, lena))

	// Lena pushes a commit without a test: the head moves from A to B.
	hs.at(t0.Add(time.Hour))
	hs.must(hs.srv.PushCommit(repoPay, 7, fullB, changed("internal/refund/refund.go", "internal/refund/fees.go")))
	push := &model.Event{
		Source: model.SourceBitbucket, Kind: model.EventRepoPush, Repository: repoPay, Actor: lena,
		Push: &model.Push{Changes: []model.PushChange{
			{RefType: "tag", RefName: "v1", NewCommit: fullB},
			{RefType: "branch", RefName: "feature/refunds", OldCommit: fullA, NewCommit: fullB},
			{RefType: "branch", RefName: "again", OldCommit: fullB, NewCommit: fullA}, // #7 already handled in this push
		}},
	}
	calls := hs.mustHandle(push)
	// No approval on record: the record stands in for the pull request (no
	// read); the new head's commits and diffstat are read.
	if count(calls, "GetPullRequest") != 0 || count(calls, "PullRequestCommits") != 1 || count(calls, "PullRequestDiffStat") != 1 || count(calls, "SetCommitStatus") != 2 {
		t.Fatalf("calls %q", calls)
	}
	if count(calls, "SetReviewers") != 0 || count(calls, "CreateComment") != 0 {
		t.Errorf("calls %q: the push re-asked or re-commented", calls)
	}
	st, ok := hs.status(repoPay, fullB, rules.StatusTests)
	if !ok || st.State != rules.StateFailed {
		t.Errorf("tests status on the full pushed hash = %+v %v", st, ok)
	}
	rec, _ := hs.st.rec(repoPay, 7)
	if rec.SourceCommit != fullB || rec.DiffCommit != fullB {
		t.Errorf("record commit %q diff %q", rec.SourceCommit, rec.DiffCommit)
	}
	// The pullrequest:updated Bitbucket sends for the same push: nothing left to do.
	upd := hs.current(repoPay, 7)
	if upd.SourceCommit != fullB[:12] {
		t.Fatalf("head %s", upd.SourceCommit)
	}
	wantCalls(t, hs.mustHandle(event(model.EventPRUpdated, upd, lena)))
}

func TestUnknownRepository(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	pr.Repository = repoOut
	hs.upstream(pr, goodFiles...)
	for _, ev := range []*model.Event{
		event(model.EventPRCreated, pr, lena),
		approvalEvent(pr, mei, t0),
		event(model.EventPRMerged, pr, mei),
		{Source: model.SourceBitbucket, Kind: model.EventRepoPush, Repository: repoOut,
			Push: &model.Push{Changes: []model.PushChange{{RefType: "branch", OldCommit: fullA, NewCommit: fullB}}}},
	} {
		wantCalls(t, hs.mustHandle(ev))
	}
	if n := hs.st.decisionCount(); n != 0 {
		t.Errorf("%d decisions stored", n)
	}
	if _, ok := hs.st.rec(repoOut, 7); ok {
		t.Error("record stored for an unknown repository")
	}
	res, err := hs.h.Reconcile(context.Background(), pr, "audit")
	if err != nil || res.Skipped == "" || res.Calls != 0 {
		t.Errorf("Reconcile = %+v, %v", res, err)
	}
}

func TestIgnoredEvents(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	for _, ev := range []*model.Event{
		nil,
		{Source: model.SourceJira, Kind: model.EventIssueCreated},
		{Source: model.SourceBitbucket, Kind: model.EventPRComment, PullRequest: &pr},
		{Source: model.SourceBitbucket, Kind: model.EventCommitStatus, Repository: repoPay},
	} {
		if err := hs.h.Handle(context.Background(), ev); err != nil {
			t.Errorf("Handle(%v) = %v", ev, err)
		}
	}
	wantCalls(t, hs.host.take())
	err := hs.h.Handle(context.Background(), &model.Event{Source: model.SourceBitbucket, Kind: model.EventPRCreated})
	if !permanent(err) {
		t.Errorf("event without a pull request: %v, want a permanent error", err)
	}
}

func TestReconcileAudit(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	cur := hs.current(repoPay, 7) // what the audit reads: a 12-hex head
	res, err := hs.h.Reconcile(context.Background(), cur, "audit")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.DecisionID == 0 || res.Team != "payments" || res.Calls != 6 || res.Decision.Team != "payments" {
		t.Errorf("first audit = %+v", res)
	}
	if d := hs.st.lastDecision(); d.Trigger != "audit" || d.DeliveryID != "" {
		t.Errorf("decision trigger %q delivery %q", d.Trigger, d.DeliveryID)
	}
	hs.host.take()
	res, err = hs.h.Reconcile(context.Background(), hs.current(repoPay, 7), "audit")
	if err != nil || res.Changed || res.Calls != 0 || res.Outcome != "nothing to change" {
		t.Errorf("second audit = %+v, %v", res, err)
	}
	wantCalls(t, hs.host.take())
}

func TestConcurrentEventsOfOnePullRequest(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	evs := []*model.Event{
		event(model.EventPRCreated, pr, lena),
		event(model.EventPRUpdated, pr, lena),
		approvalEvent(pr, paul, t0.Add(time.Hour)),
		event(model.EventPRCreated, pr, lena),
	}
	errs := make(chan error, len(evs))
	for _, ev := range evs {
		go func() { errs <- hs.h.Handle(context.Background(), ev) }()
	}
	for range evs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	calls := hs.host.take()
	if count(calls, "CreateComment") != 1 || count(calls, "SetReviewers") != 1 || count(calls, "PullRequestDiffStat") != 1 {
		t.Errorf("calls %q: want one diffstat, one PUT, one comment", calls)
	}
	if n := len(hs.srv.Comments(repoPay, 7)); n != 1 {
		t.Errorf("%d comments", n)
	}
}

func TestNewOptions(t *testing.T) {
	client, err := bitbucket.New(bitbucket.Options{BaseURL: "http://127.0.0.1:1/2.0"})
	if err != nil {
		t.Fatal(err)
	}
	ok := Options{Host: client, Store: newMemStore(), Roles: nil, PublicURL: "http://x"}
	tests := []struct {
		name   string
		mutate func(*Options)
	}{
		{"no host", func(o *Options) { o.Host = nil }},
		{"no store", func(o *Options) { o.Store = nil }},
		{"no roles", func(o *Options) { o.Roles = nil }},
		{"no public url", func(o *Options) { o.PublicURL = " " }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			o.Roles = newHarness(t).h.roles
			tt.mutate(&o)
			if _, err := New(o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	t.Run("metrics registered twice", func(t *testing.T) {
		hs := newHarness(t)
		o := ok
		o.Roles, o.Registerer = hs.h.roles, hs.reg
		if _, err := New(o); err == nil {
			t.Error("second registration on one registry succeeded")
		}
	})
}

func TestSameCommit(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{fullA, fullA, true},
		{fullA[:12], fullA, true},
		{fullA, fullA[:12], true},
		{strings.ToUpper(fullA[:12]), fullA, true},
		{fullA[:12], fullB, false},
		{"", fullA, false},
		{"", "", false},
		{"abc", "abcdef0123", false}, // too short to be an abbreviation
		{"abc", "abc", true},
	}
	for _, tt := range tests {
		if got := model.SameCommit(tt.a, tt.b); got != tt.want {
			t.Errorf("model.SameCommit(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

func TestRetargetRereadsTheDiff(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	hs.mustHandle(event(model.EventPRCreated, pr, lena))
	hs.edit(7, t0.Add(time.Hour), bitbuckettest.Edit{DestinationBranch: "release/1.2", Files: changed("internal/refund/refund.go", "helm/values.yaml")})
	calls := hs.mustHandle(event(model.EventPRUpdated, hs.current(repoPay, 7), lena))
	if count(calls, "PullRequestDiffStat") != 1 {
		t.Fatalf("calls %q: a retargeted pull request needs its diff again", calls)
	}
	if st, _ := hs.status(repoPay, fullA, rules.StatusTests); st.State != rules.StateFailed {
		t.Errorf("tests after retarget %+v", st)
	}
}

// BenchmarkRedelivery measures the path most events take: nothing changed,
// no upstream call, one decision stored.
func BenchmarkRedelivery(b *testing.B) {
	hs := newHarness(b)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	if err := hs.handle(event(model.EventPRCreated, pr, lena)); err != nil {
		b.Fatal(err)
	}
	ev := event(model.EventPRUpdated, hs.current(repoPay, 7), lena)
	hs.host.take()
	b.ReportAllocs()
	for b.Loop() {
		if err := hs.h.Handle(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(hs.host.take()); n != 0 {
		b.Fatalf("%d upstream calls", n)
	}
}
