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
			e.clk.add(time.Minute)
			if err := e.bb.Unapprove(testRepo, pr, e.user["bo"]); err != nil {
				t.Fatal(err)
			}
			e.clk.add(time.Minute)
			if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
				t.Fatal(err)
			}
			e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, pr, e.user["bo"]))
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
