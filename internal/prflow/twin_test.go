package prflow

import (
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// TestTwinForcePushedOverAnApproval: the author amends the approved head
// into a commit sharing its first 12 hex (a colliding pair takes under a
// minute to find) and force-pushes it. Bitbucket keeps the approval, and
// its activity names both heads by the same 12 hex, so the push looks like
// an edit of the approved head. The signed push names both in full: the
// approval is stale. In either order of the two webhooks.
func TestTwinForcePushedOverAnApproval(t *testing.T) {
	twin := fullA[:12] + strings.Repeat("e", 28)
	for _, order := range []string{"push first", "updated first"} {
		t.Run(order, func(t *testing.T) {
			org := testOrg()
			for _, r := range org.Rules {
				if r.Kind == roles.KindCodeReview {
					r.InvalidateOnPush = true
				}
			}
			e := newBBEnv(t, org, bitbuckettest.PR{})
			e.deliver("pullrequest:created", lena)
			lead := e.srv.Reviewers(repoPay, e.id)[0]
			e.must(e.srv.Approve(repoPay, e.id, lead))
			e.deliver("pullrequest:approved", lead)
			if st := e.review(); st.State != rules.StateSuccessful {
				t.Fatalf("approval of the head: %+v", st)
			}
			_, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Hash: twin, Force: true})
			e.must(err)
			push := func() { e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", fullA, twin, lena)) }
			updated := func() { e.deliver("pullrequest:updated", lena) }
			if order == "push first" {
				push()
				updated()
			} else {
				updated()
				push()
			}
			// Statuses are read by full hash: the 12 hex name two commits now.
			review := func() model.CommitStatus { return e.srv.Statuses(repoPay, twin)[rules.StatusReview] }
			if st := review(); st.State == rules.StateSuccessful {
				t.Fatalf("the approval of %s counted for its twin %s: %+v", fullA[:14], twin[:14], st)
			}
			d := e.lastDecision()
			if r := d.Rules[0]; r.Met || len(r.Ignored) != 1 || !strings.Contains(r.Ignored[0], "before the last push") {
				t.Errorf("code review %+v", r)
			}
			// The honest path: the lead approves the twin.
			e.must(e.srv.Unapprove(repoPay, e.id, lead))
			e.must(e.srv.Approve(repoPay, e.id, lead))
			e.deliver("pullrequest:approved", lead)
			if st := review(); st.State != rules.StateSuccessful {
				t.Errorf("approval after the push: %+v", st)
			}
		})
	}
}
