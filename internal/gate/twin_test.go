package gate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// TestWalkAroundTwinOfTheApprovedHead: Bo approves commit A; Mei pushes a
// commit sharing A's first 12 hex, on top of A or amended over it with
// --force. Bitbucket's activity names both by the same 12 hex, so the push
// looks like an edit of the approved head; the gate for the twin must not
// open on the approval of A. Then Bo approves the twin: it opens.
func TestWalkAroundTwinOfTheApprovedHead(t *testing.T) {
	for _, force := range []bool{false, true} {
		name := "pushed on top"
		if force {
			name = "force-pushed over"
		}
		t.Run(name, func(t *testing.T) {
			e := startE2E(t)
			a := hex40(321)
			twin := a[:12] + strings.Repeat("d", 28)
			if twin == a {
				t.Fatal("twin equals a")
			}
			pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Refunds", Author: e.user["mei"], SourceCommit: a})
			e.clk.add(time.Minute)
			if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
				t.Fatal(err)
			}
			e.clk.add(time.Minute)
			// A's deployment opens on Bo's approval (the gate resolves
			// and remembers A's 12 hex).
			if g := e.ask(t, a, "production"); g["state"] != "approved" {
				t.Fatalf("the gate for the approved head: %v", g)
			}
			e.clk.add(time.Minute)
			if _, err := e.bb.Push(testRepo, pr, bitbuckettest.Commit{Hash: twin, Force: force}); err != nil {
				t.Fatal(err)
			}
			e.clk.add(time.Minute)

			g := e.ask(t, twin, "production")
			id := g["id"].(string)
			if g["state"] != "pending" || !historyHas(g, "before the last push") {
				t.Fatalf("the gate for the twin opened on the approval of A: %v", g)
			}
			// The honest path: Bo approves the twin.
			e.approveAgain(t, pr, "bo")
			if g = e.gate(t, id); g["state"] != "approved" || g["decided_by"] != "acc-bo" {
				t.Fatalf("a fresh approval of the twin: %v", g)
			}
		})
	}
}

// TestWalkAroundIntermediateCommitOfAMergedPullRequest: Mei pushes B (a
// change nobody should ship), then C reverting it; the pull request's diff
// shows neither, Bo approves after the last push and it is merged. A custom
// pipeline run on B asks for production: B was never a state anyone
// approved for deployment, so the approval of the pull request does not
// open it. The merge commit and the final head open on it as before.
func TestWalkAroundIntermediateCommitOfAMergedPullRequest(t *testing.T) {
	e := startE2E(t)
	a, b, c, m := hex40(331), hex40(332), hex40(333), hex40(334)
	pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Refunds", Author: e.user["mei"], SourceCommit: a})
	e.clk.add(time.Minute)
	for _, h := range []string{b, c} {
		if err := e.bb.PushCommit(testRepo, pr, h, nil); err != nil {
			t.Fatal(err)
		}
		e.clk.add(time.Minute)
	}
	if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	if err := e.bb.Merge(testRepo, pr, e.user["mei"], m); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	if g := e.ask(t, b, "production"); g["state"] != "pending" {
		t.Fatalf("an intermediate commit of the merged pull request rode its approval: %v", g)
	}
	for _, h := range []string{m, c} {
		if g := e.ask(t, h, "production"); g["state"] != "approved" || g["decided_by"] != "acc-bo" {
			t.Errorf("the gate for %s: %v", short(h), g)
		}
	}
}

// TestWalkAroundPushUnderAnUnmappedEmail: Bo, a product owner, commits
// under an email Bitbucket maps to no account and pushes it onto Mei's
// branch. The commit list cannot name Bo; the review flow's record of the
// pull request holds whom the signed repo:push named (prflow's
// TestPusherWithAnUnmappedEmailIsAnAuthor shows it is kept). Bo's approval
// does not open the gate; Ana's does.
func TestWalkAroundPushUnderAnUnmappedEmail(t *testing.T) {
	e := startE2E(t)
	a, b := hex40(341), hex40(342)
	pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Refunds", Author: e.user["mei"], SourceCommit: a})
	e.clk.add(time.Minute)
	if _, err := e.bb.Push(testRepo, pr, bitbuckettest.Commit{Hash: b, AuthorRaw: "Night Owl <owl@example.net>", Pusher: e.user["bo"]}); err != nil {
		t.Fatal(err)
	}
	rec := &store.PRRecord{Repository: testRepo, ID: pr, AuthorAccountID: "acc-mei", State: model.PROpen, SourceCommit: b}
	rec.AddHeads(a, b)
	rec.AddPusher("acc-mei")
	rec.AddPusher("acc-bo")
	if err := e.st.UpsertPR(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	g := e.ask(t, b, "production")
	id := g["id"].(string)
	excluded, _ := json.Marshal(g["excluded"])
	if g["state"] != "pending" || !strings.Contains(string(excluded), "pushed to the branch of pull request") {
		t.Fatalf("the pusher's approval opened the gate: %v", g)
	}
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user["ana"]); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, pr, e.user["ana"]))
	if g = e.gate(t, id); g["state"] != "approved" || g["decided_by"] != "acc-ana" {
		t.Fatalf("Ana's approval: %v", g)
	}
}

// TestWalkAroundApprovalIntoAnUnreviewedBranch: Mei's branch carries a
// change nobody reviewed. She opens #1 into main (the whole change shows)
// and #2 into a side branch she prepared with most of it (a small diff);
// Bo approves #2. Both pull requests have the same head, but an approval
// is of a diff against its destination: the gate for the head does not
// open on #2. Bo approving #1 opens it. With `branches: [main,
// "release/*"]`, a pull request into release/1 counts.
func TestWalkAroundApprovalIntoAnUnreviewedBranch(t *testing.T) {
	e := startE2E(t)
	head := hex40(351)
	main := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Refunds", Author: e.user["mei"], SourceCommit: head})
	side := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Tidy", Author: e.user["mei"], SourceCommit: head, DestinationBranch: "mei/side"})
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, side, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	g := e.ask(t, head, "production")
	id := g["id"].(string)
	if g["state"] != "pending" {
		t.Fatalf("an approval into a side branch opened the gate: %v", g)
	}
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, main, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, main, e.user["bo"]))
	if g = e.gate(t, id); g["state"] != "approved" || g["decided_by"] != "acc-bo" {
		t.Fatalf("Bo's approval of #%d into main: %v", main, g)
	}

	// Release branches, declared.
	org := strings.Replace(orgYAML, "deploy-approval: {environments: [production]}", `deploy-approval: {environments: [production], branches: [main, "release/*"]}`, 1)
	e2 := startE2EOrg(t, org)
	h2 := hex40(352)
	rel := e2.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Hotfix", Author: e2.user["mei"], SourceCommit: h2, DestinationBranch: "release/1"})
	e2.clk.add(time.Minute)
	if err := e2.bb.Approve(testRepo, rel, e2.user["bo"]); err != nil {
		t.Fatal(err)
	}
	e2.clk.add(time.Minute)
	if g := e2.ask(t, h2, "production"); g["state"] != "approved" {
		t.Fatalf("a pull request into release/1 with branches [main, release/*]: %v", g)
	}
}

// TestWalkAroundRetargetAfterTheApproval: Mei opens the pull request into a
// side branch holding most of the change (a small diff); Bo approves it;
// Mei retargets it to main, where the whole change shows. Bitbucket keeps
// the approval, and the head did not move. The approval was of the other
// diff: the gate waits until Bo approves again.
func TestWalkAroundRetargetAfterTheApproval(t *testing.T) {
	e := startE2E(t)
	head := hex40(361)
	pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Tidy", Author: e.user["mei"], SourceCommit: head, DestinationBranch: "mei/side"})
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	if err := e.bb.Edit(testRepo, pr, e.user["mei"], bitbuckettest.Edit{DestinationBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	g := e.ask(t, head, "production")
	id := g["id"].(string)
	if g["state"] != "pending" || !historyHas(g, "before the last push") {
		t.Fatalf("an approval given before the retarget opened the gate: %v", g)
	}
	e.approveAgain(t, pr, "bo")
	if g = e.gate(t, id); g["state"] != "approved" || g["decided_by"] != "acc-bo" {
		t.Fatalf("Bo's approval after the retarget: %v", g)
	}
}
