package prflow

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

const mergeCommit = "9f8e7d6c5b4a"

func merged(pr model.PullRequest, by model.Actor, at time.Time) *model.Event {
	pr.State, pr.MergeCommit, pr.ClosedBy, pr.UpdatedAt = model.PRMerged, mergeCommit, &by, at
	ev := event(model.EventPRMerged, pr, by)
	ev.DeliveryID = "fulfilled-1"
	return ev
}

func TestMerge(t *testing.T) {
	at := t0.Add(5 * time.Hour)
	tests := []struct {
		name      string
		files     []string
		known     bool // rolekeeper saw the pull request before
		approve   []model.Actor
		want      map[string]bool // finding key prefix → Held
		reasonHas []string        // in the approval finding's reason
		calls     []string
	}{
		{
			name: "merged without the required approval", files: goodFiles, known: true,
			want:      map[string]bool{findingUnapproved: false, findingTested: true},
			reasonHas: []string{"merged by Kofi Mensah", "technical-lead/code-review", "Technical lead", "Reviews code written by the engineers in the team", "needs 1 approval"},
		},
		{
			name: "approved only by its author", files: goodFiles, known: true, approve: []model.Actor{lena},
			want:      map[string]bool{findingUnapproved: false, findingTested: true},
			reasonHas: []string{"approved only by its author, Lena Berg", "merged by Kofi Mensah"},
		},
		{
			name: "approved by someone outside the role", files: goodFiles, known: true, approve: []model.Actor{paul},
			want:      map[string]bool{findingUnapproved: false, findingTested: true},
			reasonHas: []string{"without the required approvals"},
		},
		{
			name: "approved by a lead: the rule held", files: goodFiles, known: true, approve: []model.Actor{mei},
			want:      map[string]bool{findingApproved: true, findingTested: true},
			reasonHas: []string{"with the required approvals", "approved by Mei Chen"},
		},
		{
			name: "source merged without tests", files: []string{"internal/refund/refund.go"}, known: true, approve: []model.Actor{mei},
			want: map[string]bool{findingApproved: true, findingUntested: false},
		},
		{
			name: "never seen before: the approval verified, commits and diffstat read, then judged", files: goodFiles, approve: []model.Actor{lena},
			want:  map[string]bool{findingUnapproved: false, findingTested: true},
			calls: []string{"GetPullRequest", "PullRequestCommits", "PullRequestDiffStat"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			pr := newPR()
			hs.upstream(pr, tt.files...)
			wantURL := hs.current(repoPay, 7).URL // the pull request's page on Bitbucket
			if tt.known {
				hs.mustHandle(event(model.EventPRCreated, pr, lena))
				pr = hs.current(repoPay, 7)
			}
			for _, a := range tt.approve {
				pr = approvedBy(pr, a, at.Add(-time.Hour))
			}
			calls := hs.mustHandle(merged(pr, kofi, at))
			want := tt.calls
			if tt.known && len(tt.approve) > 0 {
				want = []string{"GetPullRequest"} // approvals never verified before: read
			}
			wantCalls(t, calls, want...)

			fs, _ := hs.st.ListFindings(context.Background(), storeFilter())
			if len(fs) != len(tt.want) {
				t.Fatalf("findings = %+v, want %v", fs, tt.want)
			}
			for _, f := range fs {
				prefix := f.Key[:strings.Index(f.Key, ":")+1]
				held, ok := tt.want[prefix]
				if !ok {
					t.Errorf("unexpected finding %s", f.Key)
					continue
				}
				if f.Key != prefix+"reloadly/payments-api#7" || f.Held != held || f.Team != "payments" ||
					f.Subject != model.SubjectPullRequest || f.Ref != "reloadly/payments-api#7" || f.URL != wantURL ||
					!f.OccurredAt.Equal(at) || f.Actor != accKofi || f.RuleID == "" || f.Reason == "" {
					t.Errorf("finding = %+v", f)
				}
				switch prefix {
				case findingUnapproved, findingApproved:
					if f.Kind != "code-review" || f.RuleID != "technical-lead/code-review" {
						t.Errorf("approval finding kind %q rule %q", f.Kind, f.RuleID)
					}
					for _, s := range tt.reasonHas {
						if !strings.Contains(f.Reason, s) {
							t.Errorf("reason %q lacks %q", f.Reason, s)
						}
					}
				default:
					if f.Kind != "unit-tests" {
						t.Errorf("tests finding kind %q", f.Kind)
					}
				}
			}
			rec, _ := hs.st.rec(repoPay, 7)
			if rec.State != model.PRMerged || rec.MergeCommit != mergeCommit || rec.ClosedBy != accKofi || !rec.ClosedAt.Equal(at) {
				t.Errorf("record state %s merge %q by %q at %v", rec.State, rec.MergeCommit, rec.ClosedBy, rec.ClosedAt)
			}
			d := hs.st.lastDecision()
			if d.Trigger != string(model.EventPRMerged) || !strings.Contains(d.Outcome, "merged by Kofi Mensah") ||
				!strings.Contains(d.Outcome, "recorded") {
				t.Errorf("decision %q outcome %q", d.Trigger, d.Outcome)
			}

			// Redelivered: nothing new upstream or in the findings (the
			// pass sees the state it decided from and stops).
			decisions := hs.st.decisionCount()
			wantCalls(t, hs.mustHandle(merged(pr, kofi, at)))
			again, _ := hs.st.ListFindings(context.Background(), storeFilter())
			if len(again) != len(fs) || hs.st.decisionCount() != decisions {
				t.Errorf("redelivery: %d findings, %d decisions more", len(again), hs.st.decisionCount()-decisions)
			}
			// A late pullrequest:updated for the open pull request is stale.
			open := pr
			open.Title = "late"
			wantCalls(t, hs.mustHandle(event(model.EventPRUpdated, open, lena)))
			if rec2, _ := hs.st.rec(repoPay, 7); rec2.State != model.PRMerged {
				t.Errorf("stale event reopened the record: %s", rec2.State)
			}
		})
	}
}

func TestDeclined(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	hs.mustHandle(event(model.EventPRCreated, pr, lena))
	cur := hs.current(repoPay, 7)
	cur.State, cur.UpdatedAt = model.PRDeclined, t0.Add(time.Hour)
	ev := event(model.EventPRDeclined, cur, mei)
	wantCalls(t, hs.mustHandle(ev))
	fs, _ := hs.st.ListFindings(context.Background(), storeFilter())
	if len(fs) != 0 {
		t.Errorf("findings %+v for a declined pull request", fs)
	}
	rec, _ := hs.st.rec(repoPay, 7)
	if rec.State != model.PRDeclined || rec.ClosedBy != accMei || !rec.ClosedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("record %s by %q at %v", rec.State, rec.ClosedBy, rec.ClosedAt)
	}
	if out := hs.st.lastDecision().Outcome; out != "declined by Mei Chen" {
		t.Errorf("outcome %q", out)
	}
}

// TestAuditFindsMerge: the audit catches a merge whose webhook never
// arrived; the close time is the pull request's, not the audit's.
func TestAuditFindsMerge(t *testing.T) {
	hs := newHarness(t)
	pr := newPR()
	hs.upstream(pr, goodFiles...)
	hs.mustHandle(event(model.EventPRCreated, pr, lena))
	closedAt := t0.Add(2 * time.Hour)
	hs.at(closedAt)
	if err := hs.srv.Merge(repoPay, 7, mei, mergeFull(mergeCommit)); err != nil {
		t.Fatal(err)
	}
	cur := hs.current(repoPay, 7)
	hs.now = t0.Add(24 * time.Hour)
	res, err := hs.h.Reconcile(context.Background(), cur, "audit")
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 0 || res.Changed || len(res.Findings) != 2 || res.Findings[0].Key != findingUnapproved+"reloadly/payments-api#7" {
		t.Fatalf("result = %+v", res)
	}
	if f := res.Findings[0]; !f.OccurredAt.Equal(closedAt) || f.Actor != accMei || !strings.Contains(f.Reason, "merged by Mei Chen") {
		t.Errorf("finding = %+v", f)
	}
	rec, _ := hs.st.rec(repoPay, 7)
	if !rec.ClosedAt.Equal(closedAt) {
		t.Errorf("ClosedAt = %v, want %v", rec.ClosedAt, closedAt)
	}
}
