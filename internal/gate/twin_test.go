package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
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
