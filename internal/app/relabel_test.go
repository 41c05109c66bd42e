package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

// A lead's signed comment body re-sent as pullrequest:approved under a new
// request id (the signature does not cover X-Event-Key) is refused with 400
// and changes nothing; the lead's real approval turns the review green.
func TestRelabelledSignedBodyIsRefused(t *testing.T) {
	e := startApp(t)
	const repo = "acme/payments-api"
	id := e.bb.AddPullRequest(repo, bitbuckettest.PR{
		Title: "Add refunds", Author: amara, Description: "Refunds.\n\nPAY-7",
		Files: []model.ChangedFile{{Path: "refunds/refund.go", Status: model.FileAdded}},
	})
	send := func(key, requestID string, body []byte) (int, string) {
		return e.deliver("/webhooks/bitbucket", body, map[string]string{
			"X-Event-Key": key, "X-Request-UUID": requestID, webhook.SignatureHeader: webhook.SignatureFor(body, newSecret),
		})
	}
	if code, body := send("pullrequest:created", "created-1", e.bb.WebhookBody("pullrequest:created", repo, id, amara)); code != http.StatusAccepted {
		t.Fatalf("created: %d %s", code, body)
	}
	waitFor(t, "a reviewer", func() bool { return len(e.bb.Reviewers(repo, id)) == 1 })
	lead := e.bb.Reviewers(repo, id)[0]
	head := func() string { pr, _ := e.bb.PullRequest(repo, id); return pr.SourceCommit }
	waitFor(t, "the review status", func() bool { _, ok := e.bb.Statuses(repo, head())[rules.StatusReview]; return ok })
	if pr, _ := e.bb.PullRequest(repo, id); pr.Description != "Refunds.\n\nPAY-7" {
		t.Errorf("the reviewers PUT changed the description to %q", pr.Description)
	}

	cid := e.bb.AddComment(repo, id, lead, "Looks good once CI passes")
	comment := e.bb.WebhookCommentBody(repo, id, cid)
	code, body := send("pullrequest:approved", "relabelled-1", comment)
	if code != http.StatusBadRequest || !strings.Contains(body, "malformed") {
		t.Fatalf("relabelled comment: %d %s, want 400 malformed", code, body)
	}
	// Under its own key the same body is accepted.
	if code, body := send("pullrequest:comment_created", "comment-1", comment); code != http.StatusAccepted {
		t.Fatalf("comment: %d %s", code, body)
	}
	_, metrics := e.get("/metrics", false)
	if !strings.Contains(metrics, `rolekeeper_webhooks_total{event="pullrequest:approved",outcome="malformed",source="bitbucket"} 1`) {
		t.Error("the refused delivery is not counted as malformed")
	}
	if st := e.bb.Statuses(repo, head())[rules.StatusReview]; st.State != rules.StateInProgress {
		t.Errorf("review after the relabelled body: %+v", st)
	}

	// The honest path: the lead approves on Bitbucket.
	if err := e.bb.Approve(repo, id, lead); err != nil {
		t.Fatal(err)
	}
	if code, body := send("pullrequest:approved", "approved-1", e.bb.WebhookBody("pullrequest:approved", repo, id, lead)); code != http.StatusAccepted {
		t.Fatalf("approval: %d %s", code, body)
	}
	waitFor(t, "the review to pass", func() bool {
		return e.bb.Statuses(repo, head())[rules.StatusReview].State == rules.StateSuccessful
	})
}
