package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// invalidatingOrg is testOrg with invalidate_on_push on its code review.
func invalidatingOrg() *roles.Org {
	org := testOrg()
	for _, r := range org.Rules {
		if r.ID == ruleCode {
			r.InvalidateOnPush = true
		}
	}
	return org
}

func approvedAt(acc string, at time.Time) model.Approval {
	return model.Approval{AccountID: acc, State: model.ReviewApproved, At: at}
}

func TestInvalidateOnPush(t *testing.T) {
	push := june.Add(-time.Hour)
	tests := []struct {
		name     string
		org      *roles.Org
		lastPush time.Time
		at       time.Time
		met      bool
		ignored  string
	}{
		{"default keeps an approval given before the push (as Bitbucket)", testOrg(), push, push.Add(-time.Minute), true, ""},
		{"approval after the last push counts", invalidatingOrg(), push, push.Add(time.Minute), true, ""},
		{"approval before the last push does not", invalidatingOrg(), push, push.Add(-time.Minute), false,
			"approval by Mei Chen does not count: given 2026-06-10T08:29:00Z, before the last push (2026-06-10T08:30:00Z) (invalidate_on_push)"},
		{"approval at the push instant does not", invalidatingOrg(), push, push, false, "before the last push"},
		{"unknown push time counts nothing", invalidatingOrg(), time.Time{}, push, false, "the time of the last push is unknown"},
		{"unknown approval time counts nothing", invalidatingOrg(), push, time.Time{}, false, "the time of the approval is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSnapshot()
			s.LastPush = tt.lastPush
			s.Approvals = []model.Approval{approvedAt(accMei, tt.at)}
			d := Evaluate(tt.org, s)
			r := ruleByID(d, ruleCode)
			wantEq(t, "met", r.Met, tt.met)
			if tt.met {
				wantEq(t, "approved by", r.ApprovedBy, []string{accMei})
				wantStatus(t, d, StatusReview, StateSuccessful, "approved by Mei Chen")
				return
			}
			if len(r.Ignored) != 1 || !strings.Contains(r.Ignored[0], tt.ignored) {
				t.Errorf("ignored %q, want %q", r.Ignored, tt.ignored)
			}
			wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead")
			if !strings.Contains(Explain(d), "ignored: approval by Mei Chen does not count") {
				t.Errorf("explain does not say why:\n%s", Explain(d))
			}
		})
	}
}

func TestCommitAuthorsAreNeitherAskedNorCounted(t *testing.T) {
	// Lena opened the pull request; Mei (a lead) pushed commits onto it.
	s := baseSnapshot()
	s.CommitAuthors = []model.Actor{{AccountID: accLena}, {AccountID: accMei}, {}}
	d := Evaluate(testOrg(), s)
	r := ruleByID(d, ruleCode)
	wantEq(t, "request", requestIDs(d), []string{accKofi}) // Mei would be the least loaded
	wantEq(t, "excluded", r.Excluded, []string{"Mei Chen " + committerWhy})
	for _, text := range []string{Explain(d), Comment(d, "")} {
		if !strings.Contains(text, "excluded: Mei Chen wrote commits of this pull request") {
			t.Errorf("the decision does not say whom it excluded:\n%s", text)
		}
	}

	// Mei approves her own commits: it does not count.
	s.Approvals = []model.Approval{approved(accMei)}
	d = Evaluate(testOrg(), s)
	r = ruleByID(d, ruleCode)
	wantEq(t, "met", r.Met, false)
	wantEq(t, "ignored", r.Ignored, []string{"approval by Mei Chen does not count: Mei Chen wrote commits of this pull request (separation of duties)"})
	wantStatus(t, d, StatusReview, StateInProgress, "needs 1 approval from technical-lead")

	// The honest path: another lead's approval counts.
	s.Approvals = append(s.Approvals, approved(accKofi))
	d = Evaluate(testOrg(), s)
	wantEq(t, "met with Kofi", ruleByID(d, ruleCode).Met, true)

	// A commit author who is the only lead leaves nobody able to approve.
	s = baseSnapshot()
	s.Repository = "reloadly/payments-api"
	s.CommitAuthors = []model.Actor{{AccountID: accTom}}
	d = Evaluate(testOrg(), s)
	r = ruleByID(d, ruleCode)
	wantEq(t, "shortfall", r.Shortfall, "needs 1 approval from technical-lead; only 0 other holders can give it")
	wantNote(t, r, "found 0 of 1 people needed (Technical lead / Lead engineer of team payments): Tom Weber "+committerWhy)
}
