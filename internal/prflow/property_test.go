package prflow

import (
	"math/rand/v2"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// TestOutOfOrderEventsConverge: whatever happens on Bitbucket (approvals,
// withdrawals, pushes by the author or by a lead, each sending repo:push
// and pullrequest:updated) and in whatever order the
// webhooks arrive, once every body is handled the review status is what
// Bitbucket's state says: green exactly when a lead who wrote no commit of
// the pull request approves it. A stale body never turns it green.
func TestOutOfOrderEventsConverge(t *testing.T) {
	const scenarios = 25
	for seed := range uint64(scenarios) {
		rng := rand.New(rand.NewPCG(seed, 11))
		e := newBBEnv(t, testOrg(), bitbuckettest.PR{})
		e.deliver("pullrequest:created", lena)
		type delivery struct {
			key  string
			body []byte
		}
		var bodies []delivery
		approved := map[string]bool{}
		committers := map[string]bool{}
		leads := []model.Actor{mei, kofi}
		head := fullA
		// A push sends repo:push (its signed commit list names the
		// authors) and pullrequest:updated.
		pushed := func(by model.Actor, hash string) {
			bodies = append(bodies,
				delivery{"repo:push", e.srv.WebhookPushBody(repoPay, "feature/1", head, hash, by)},
				delivery{"pullrequest:updated", e.srv.WebhookBody("pullrequest:updated", repoPay, e.id, by)})
			head = hash
		}
		for step := 0; step < 2+rng.IntN(5); step++ {
			switch rng.IntN(4) {
			case 0, 1: // a lead approves or withdraws
				lead := leads[rng.IntN(2)]
				if approved[lead.AccountID] {
					e.must(e.srv.Unapprove(repoPay, e.id, lead))
					bodies = append(bodies, delivery{"pullrequest:unapproved", e.srv.WebhookBody("pullrequest:unapproved", repoPay, e.id, lead)})
				} else {
					e.must(e.srv.Approve(repoPay, e.id, lead))
					bodies = append(bodies, delivery{"pullrequest:approved", e.srv.WebhookBody("pullrequest:approved", repoPay, e.id, lead)})
				}
				approved[lead.AccountID] = !approved[lead.AccountID]
			case 2: // Lena pushes
				hash, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{})
				e.must(err)
				pushed(lena, hash)
			case 3: // a lead pushes onto Lena's branch
				lead := leads[rng.IntN(2)]
				hash, err := e.srv.Push(repoPay, e.id, bitbuckettest.Commit{Author: lead, Pusher: lead})
				e.must(err)
				committers[lead.AccountID] = true
				pushed(lead, hash)
			}
		}
		rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
		for _, b := range bodies {
			e.handle(b.key, b.body)
		}
		want := false
		for id, ok := range approved {
			want = want || ok && !committers[id]
		}
		got := e.review().State == rules.StateSuccessful
		if got != want {
			t.Errorf("seed %d: review green %v, Bitbucket says %v (approved %v, committers %v, %d bodies)", seed, got, want, approved, committers, len(bodies))
		}
	}
}
