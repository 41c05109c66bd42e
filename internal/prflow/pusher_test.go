package prflow

import (
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// TestPusherWithAnUnmappedEmailIsAnAuthor: the asked lead commits under an
// email Bitbucket maps to no account (the commit list cannot name them)
// and pushes it onto Lena's branch. The signed repo:push names the pusher,
// whom Bitbucket authenticated: their approval does not count and the other
// lead is asked; the other lead's approval counts.
func TestPusherWithAnUnmappedEmailIsAnAuthor(t *testing.T) {
	e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
	e.deliver("pullrequest:created", lena)
	lead := e.srv.Reviewers(repoPay, e.id)[0]
	other := mei
	if lead.AccountID == accMei {
		other = kofi
	}
	_, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Hash: fullB, AuthorRaw: "Night Owl <owl@example.net>", Pusher: lead})
	e.must(err)
	e.handle("repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", fullA, fullB, lead))
	e.deliver("pullrequest:updated", lead)
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("the pusher's approval turned the review green: %+v", st)
	}
	r := e.lastDecision().Rules[0]
	if len(r.Ignored) != 1 || !strings.Contains(r.Ignored[0], "separation of duties") {
		t.Errorf("code review %+v", r)
	}
	revs := e.srv.Reviewers(repoPay, e.id)
	if len(revs) != 2 || revs[1].AccountID != other.AccountID {
		t.Errorf("reviewers %+v, want %s added", revs, other.DisplayName)
	}
	e.must(e.srv.Approve(repoPay, e.id, other))
	e.deliver("pullrequest:approved", other)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("honest approval: %+v", st)
	}
}

// TestPusherBeforeThePullRequestIsAnAuthor: the lead pushes a commit under
// an unmapped email onto Lena's branch before she opens the pull request.
// rolekeeper keeps the branch's pushers from the signed repo:push; once
// the pull request is opened from that branch the lead is not asked and
// their approval does not count. A merge forgets the branch's pushers.
func TestPusherBeforeThePullRequestIsAnAuthor(t *testing.T) {
	org := testOrg()
	e := newBBEnv(t, org, bitbuckettest.PR{})
	pr, err := e.srv.PullRequest(repoPay, e.id)
	e.must(err)
	// Both leads are candidates; the one who pushed is excluded.
	lead := kofi
	other := mei
	_, err = e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Hash: fullB, AuthorRaw: "Night Owl <owl@example.net>", Pusher: lead})
	e.must(err)
	e.handle("repo:push", e.srv.WebhookPushBody(repoPay, pr.SourceBranch, fullA, fullB, lead))
	e.deliver("pullrequest:created", lena)
	revs := e.srv.Reviewers(repoPay, e.id)
	if len(revs) != 1 || revs[0].AccountID != other.AccountID {
		t.Fatalf("reviewers %+v: want %s, not the pusher %s", revs, other.DisplayName, lead.DisplayName)
	}
	e.must(e.srv.Approve(repoPay, e.id, lead))
	e.deliver("pullrequest:approved", lead)
	if st := e.review(); st.State == rules.StateSuccessful {
		t.Fatalf("the earlier pusher's approval turned the review green: %+v", st)
	}
	e.must(e.srv.Approve(repoPay, e.id, other))
	e.deliver("pullrequest:approved", other)
	if st := e.review(); st.State != rules.StateSuccessful {
		t.Errorf("honest approval: %+v", st)
	}
	e.must(e.srv.Merge(repoPay, e.id, other, ""))
	e.deliver("pullrequest:fulfilled", other)
	if _, found, err := e.st.Get(e.ctx, branchPushersKey(repoPay, pr.SourceBranch)); err != nil || found {
		t.Errorf("branch pushers kept after the merge (%v)", err)
	}
}
