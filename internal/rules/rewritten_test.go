package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

func TestRewriteFinding(t *testing.T) {
	org := prKindsOrg(t)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	commit := strings.Repeat("ab", 20)
	eli := model.Actor{AccountID: "acc-eli", DisplayName: "Eli"}
	for _, tc := range []struct {
		name, team, key, kind string
		by                    model.Actor
		wantKey, wantWho      string
	}{
		{"review in payments", "payments", StatusReview, "code-review", eli,
			"status-overwritten:acme/pay#7@" + commit + ":rolekeeper-review:SUCCESSFUL:acc-eli", "Eli set rolekeeper-review to SUCCESSFUL"},
		{"tests in payments", "payments", StatusTests, "unit-tests", eli,
			"status-overwritten:acme/pay#7@" + commit + ":rolekeeper-tests:SUCCESSFUL:acc-eli", "Eli set rolekeeper-tests"},
		// web has no unit-tests rule: the finding names no rule.
		{"tests in web", "web", StatusTests, "", model.Actor{UUID: "{team}"},
			"status-overwritten:acme/pay#7@" + commit + ":rolekeeper-tests:SUCCESSFUL:{team}", "{team} set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := RewriteFinding(org, Rewrite{Repository: "acme/pay", Number: 7, Team: tc.team, Commit: commit,
				Key: tc.key, State: StateSuccessful, Was: StateInProgress, By: tc.by, Now: now})
			if f.Key != tc.wantKey || f.Kind != tc.kind || f.Held || !f.OccurredAt.Equal(now) ||
				!strings.Contains(f.Reason, tc.wantWho) || !strings.Contains(f.Reason, "posted as INPROGRESS") {
				t.Errorf("finding %+v", f)
			}
			if FindingTopic(f.Key) != TopicStatusOverwritten {
				t.Errorf("topic of %q", f.Key)
			}
		})
	}
}
