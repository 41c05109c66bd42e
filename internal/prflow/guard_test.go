package prflow

import (
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// TestRewrittenStatusIsPostedAgain: the author turns rolekeeper-review
// green on their own head with their own credentials (Bitbucket lets anyone
// who can push write any status). Bitbucket's signed webhook names them:
// rolekeeper posts its status again and records who rewrote it. Its own
// writes (their echoes) cost nothing.
func TestRewrittenStatusIsPostedAgain(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	bot := model.Actor{AccountID: "acc-rolekeeper", DisplayName: "rolekeeper"}
	e.srv.SetCurrentUser(bot)
	e.deliver("pullrequest:created", lena)
	if st := e.review(); st.State != rules.StateInProgress {
		t.Fatalf("review after creation %+v", st)
	}
	statusEvent := func(actor model.Actor) int {
		return e.handle("repo:commit_status_updated", e.srv.WebhookCommitStatusBody(repoPay, fullA, rules.StatusReview, actor))
	}
	// The echo of rolekeeper's own status: nothing to do.
	if n := statusEvent(bot); n != 0 {
		t.Errorf("echo of rolekeeper's own status: %d requests", n)
	}

	// Lena forges it.
	e.srv.SetCommitStatus(repoPay, fullA, model.CommitStatus{Key: rules.StatusReview, State: rules.StateSuccessful,
		Name: "rolekeeper review", Description: "approved", URL: "https://example.com"})
	n := statusEvent(lena)
	if st := e.review(); st.State != rules.StateInProgress {
		t.Fatalf("the forged status stayed: %+v", st)
	}
	if n > 3 {
		t.Errorf("restoring cost %d requests", n)
	}
	fs, err := e.st.ListFindings(e.ctx, store.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []model.Finding
	for _, f := range fs {
		if strings.HasPrefix(f.Key, findingStatusOverwritten) {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Actor != lena.AccountID || got[0].Held || got[0].Kind != "code-review" ||
		!strings.Contains(got[0].Reason, "Lena Berg set rolekeeper-review to SUCCESSFUL") {
		t.Fatalf("findings %+v", got)
	}
	// The echo of the restored status, and a replay of Lena's event
	// (Bitbucket holds rolekeeper's status again): no second finding.
	if n := statusEvent(bot); n != 0 {
		t.Errorf("echo of the restored status: %d requests", n)
	}
	fs, _ = e.st.ListFindings(e.ctx, store.FindingFilter{})
	if len(fs) != len(got) {
		t.Errorf("%d findings after the echo, want %d", len(fs), len(got))
	}

	// The honest path: the lead approves; the status turns green and its
	// echo changes nothing.
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Fatalf("approved: %+v", st)
	}
	if n := statusEvent(bot); n != 0 {
		t.Errorf("echo of the green status: %d requests", n)
	}
}
