package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

func testRenewFenced(t *testing.T, s store.Store) {
	seq := enqueue(t, s, 1)[0]
	c := claimOne(t, s, "w1", base, seq) // until base+1m
	must(t, s.Renew(ctxT(t), c, at(90*time.Second)), "Renew")
	if d := getDelivery(t, s, seq); !d.ClaimedUntil.Equal(canon(at(90 * time.Second))) {
		t.Errorf("renewed until %v, want %v", d.ClaimedUntil, canon(at(90*time.Second)))
	}
	// The renewal holds the claim past the first lease.
	if got := claim(t, s, "w2", at(time.Minute), time.Minute, 10); len(got) != 0 {
		t.Errorf("claimed a renewed claim: %v", seqsOf(got))
	}
	lost(t, "Renew with a wrong token", s.Renew(ctxT(t), store.Claim{Seq: seq, Token: c.Token + "x"}, at(time.Hour)))
	lost(t, "Renew unknown", s.Renew(ctxT(t), store.Claim{Seq: seq + 100, Token: c.Token}, at(time.Hour)))
	must(t, s.Complete(ctxT(t), c, at(time.Minute)), "Complete")
	lost(t, "Renew after Complete", s.Renew(ctxT(t), c, at(time.Hour)))
}

// testStaleHolderLoses is the case of the issue: a worker past its lease
// (a long rate-limit wait) must not settle a delivery another worker holds.
func testStaleHolderLoses(t *testing.T, s store.Store) {
	seq := enqueue(t, s, 1)[0]
	old := claimOne(t, s, "w1", base, seq)
	cur := claimOne(t, s, "w2", at(time.Minute), seq) // w1's lease ran out
	lost(t, "stale Retry", s.Retry(ctxT(t), old, at(time.Minute), "429"))
	lost(t, "stale Bury", s.Bury(ctxT(t), old, at(time.Minute), "x"))
	lost(t, "stale Complete", s.Complete(ctxT(t), old, at(time.Minute)))
	lost(t, "stale Renew", s.Renew(ctxT(t), old, at(time.Hour)))
	d := getDelivery(t, s, seq)
	if d.State != store.DeliveryProcessing || d.ClaimedBy != "w2" || d.ClaimToken != cur.Token {
		t.Fatalf("after the stale holder: state %s by %q token %q, want processing by w2", d.State, d.ClaimedBy, d.ClaimToken)
	}
	must(t, s.Complete(ctxT(t), cur, at(time.Minute)), "Complete by the holder")
}

func testHeartbeatTakeover(t *testing.T, s store.Store) {
	seqs := enqueue(t, s, 3)
	stale := 15 * time.Second
	req := func(worker string, now time.Time) store.ClaimRequest {
		return store.ClaimRequest{Worker: worker, Now: now, Lease: time.Hour, Limit: 10, StaleBefore: now.Add(-stale)}
	}
	must(t, s.Heartbeat(ctxT(t), "a", at(5*time.Minute)), "Heartbeat a")
	must(t, s.Heartbeat(ctxT(t), "b", at(5*time.Minute)), "Heartbeat b")
	got, err := s.Claim(ctxT(t), req("a", at(5*time.Minute)))
	must(t, err, "Claim a")
	same(t, "a claims", seqsOf(got), seqs)
	// b claims while a is alive: nothing (a's leases run an hour).
	must(t, s.Heartbeat(ctxT(t), "a", at(5*time.Minute+10*time.Second)), "Heartbeat a")
	got, err = s.Claim(ctxT(t), req("b", at(5*time.Minute+20*time.Second)))
	must(t, err, "Claim b")
	same(t, "b claims while a beats", seqsOf(got), []int64{})
	// a stops beating (kill -9): 15 s after its last heartbeat b takes over.
	got, err = s.Claim(ctxT(t), req("b", at(5*time.Minute+24*time.Second)))
	must(t, err, "Claim b")
	same(t, "b claims 14 s after a's last beat", seqsOf(got), []int64{})
	got, err = s.Claim(ctxT(t), req("b", at(5*time.Minute+25*time.Second)))
	must(t, err, "Claim b")
	same(t, "b claims 15 s after a's last beat", seqsOf(got), seqs)
	for _, d := range got {
		if d.ClaimedBy != "b" || d.Attempts != 2 {
			t.Errorf("taken over %d: by %q attempts %d", d.Seq, d.ClaimedBy, d.Attempts)
		}
	}
	// A replica that left has no heartbeat: only leases count for it.
	must(t, s.Leave(ctxT(t), "b"), "Leave b")
	got, err = s.Claim(ctxT(t), req("c", at(time.Hour)))
	must(t, err, "Claim c")
	same(t, "c claims after b left", seqsOf(got), []int64{})
	// A claim without StaleBefore ignores heartbeats.
	got, err = s.Claim(ctxT(t), store.ClaimRequest{Worker: "c", Now: at(6 * time.Minute), Lease: time.Hour, Limit: 10})
	must(t, err, "Claim c")
	same(t, "claim without StaleBefore", seqsOf(got), []int64{})
}

// testInboxModel drives the inbox with random claims, renewals, lease
// expiries, missed heartbeats, crashes and restarts of replicas, on a fake
// clock, and checks after every step that no delivery has two live holders
// (a holder is live while its lease and its replica's heartbeat are both
// fresh: after that another replica may take the delivery), that only the
// current holder settles a delivery, and at the end that every delivery
// was completed exactly once.
func testInboxModel(t *testing.T, s store.Store) { InboxModel(t, s) }

// InboxModel is the model test of testInboxModel on any store.Inbox (the
// inbox package runs it on its in-memory store too).
func InboxModel(t *testing.T, s store.Inbox) {
	const (
		n        = 24
		replicas = 3
		workers  = 2 // per replica
		steps    = 700
		lease    = 10 * time.Second
		stale    = 15 * time.Second
	)
	rng := rand.New(rand.NewPCG(13, uint64(len(t.Name()))))
	now := base
	seqs := make([]int64, n)
	for i := range n {
		d := delivery(model.SourceBitbucket, name("m", i), base)
		ok, err := s.Enqueue(ctxT(t), d)
		must(t, err, "Enqueue")
		if !ok {
			t.Fatalf("Enqueue %d: not inserted", i)
		}
		seqs[i] = d.Seq
	}

	type holding struct {
		c     store.Claim
		until time.Time // the lease as this worker last set it
	}
	type replica struct {
		id       string
		alive    bool
		beat     time.Time // last heartbeat stored
		restarts int
		held     []*holding // per worker; nil when idle
	}
	rs := make([]*replica, replicas)
	for i := range rs {
		rs[i] = &replica{id: fmt.Sprintf("r%d", i), alive: true, held: make([]*holding, workers)}
	}
	current := map[int64]string{} // seq → token of its latest claim
	completed := map[int64]int{}
	live := func(r *replica, h *holding) bool {
		return h != nil && r.alive && now.Before(h.until) && now.Sub(r.beat) < stale
	}
	check := func(step int, what string) {
		t.Helper()
		// A replica that has not beaten for `stale` knows it may have been
		// declared dead and drops its claims (the runner cancels them).
		for _, r := range rs {
			if now.Sub(r.beat) >= stale {
				clear(r.held)
			}
		}
		holders := map[int64][]string{}
		for _, r := range rs {
			for w, h := range r.held {
				if live(r, h) {
					holders[h.c.Seq] = append(holders[h.c.Seq], fmt.Sprintf("%s/%d", r.id, w))
				}
			}
		}
		for seq, hs := range holders {
			if len(hs) > 1 {
				t.Fatalf("step %d (%s): delivery %d has %d live holders: %v", step, what, seq, len(hs), hs)
			}
		}
	}
	settle := func(step int, r *replica, w int, err error, done bool) {
		t.Helper()
		h := r.held[w]
		r.held[w] = nil
		switch {
		case err == nil:
			if current[h.c.Seq] != h.c.Token {
				t.Fatalf("step %d: %s/%d settled %d with a superseded claim", step, r.id, w, h.c.Seq)
			}
			if done {
				completed[h.c.Seq]++
			}
		case errors.Is(err, store.ErrLostClaim):
			if current[h.c.Seq] == h.c.Token && r.alive && now.Sub(r.beat) < stale {
				// Still its claim in the model: the store refused a holder.
				t.Fatalf("step %d: %s/%d refused its own claim of %d: %v", step, r.id, w, h.c.Seq, err)
			}
		default:
			t.Fatalf("step %d: settle: %v", step, err)
		}
	}
	act := func(step int, r *replica, w int) {
		h := r.held[w]
		if h == nil {
			got, err := s.Claim(ctxT(t), store.ClaimRequest{Worker: r.id, Now: now, Lease: lease, Limit: 1, StaleBefore: now.Add(-stale)})
			must(t, err, "Claim")
			for _, d := range got {
				current[d.Seq] = d.ClaimToken
				r.held[w] = &holding{c: store.ClaimOf(d), until: now.Add(lease)}
			}
			return
		}
		switch p := rng.IntN(10); {
		case p < 4: // renew
			err := s.Renew(ctxT(t), h.c, now.Add(lease))
			if err == nil {
				if current[h.c.Seq] != h.c.Token {
					t.Fatalf("step %d: renewed a superseded claim of %d", step, h.c.Seq)
				}
				h.until = now.Add(lease)
				return
			}
			settle(step, r, w, err, false)
		case p < 8:
			settle(step, r, w, s.Complete(ctxT(t), h.c, now), true)
		default:
			settle(step, r, w, s.Retry(ctxT(t), h.c, now.Add(time.Duration(rng.IntN(5))*time.Second), "retry"), false)
		}
	}
	beat := func(r *replica) {
		if now.Sub(r.beat) >= stale {
			clear(r.held)
		}
		must(t, s.Heartbeat(ctxT(t), r.id, now), "Heartbeat")
		r.beat = now
	}
	for _, r := range rs {
		beat(r)
	}
	for step := range steps {
		var what string
		switch p := rng.IntN(100); {
		case p < 25:
			d := time.Duration(rng.IntN(6000)) * time.Millisecond
			now = now.Add(d)
			what = "clock +" + d.String()
		case p < 45:
			r := rs[rng.IntN(replicas)]
			if r.alive {
				beat(r)
			}
			what = "heartbeat " + r.id
		case p < 48: // kill -9: its claims are abandoned
			r := rs[rng.IntN(replicas)]
			r.alive = false
			clear(r.held)
			what = "crash " + r.id
		case p < 52: // a crashed replica restarts under a new name
			r := rs[rng.IntN(replicas)]
			if !r.alive {
				r.restarts++
				r.id = fmt.Sprintf("r%d.%d", rng.IntN(1000), r.restarts)
				r.alive = true
				beat(r)
			}
			what = "restart " + r.id
		default:
			r, w := rs[rng.IntN(replicas)], rng.IntN(workers)
			if r.alive {
				act(step, r, w)
			}
			what = "act " + r.id
		}
		check(step, what)
	}
	// Drain: every replica alive and beating, time passing, until all done.
	for _, r := range rs {
		if !r.alive {
			r.alive, r.id = true, r.id+"-up"
		}
	}
	for i := 0; len(completed) < n && i < 2000; i++ {
		now = now.Add(2 * time.Second)
		for _, r := range rs {
			beat(r)
			for w := range r.held {
				act(-1, r, w)
				if r.held[w] != nil {
					settle(-1, r, w, s.Complete(ctxT(t), r.held[w].c, now), true)
				}
			}
		}
		check(-1, "drain")
	}
	for i, seq := range seqs {
		if completed[seq] != 1 {
			t.Errorf("delivery %d (%s) completed %d times, want once", seq, name("m", i), completed[seq])
		}
		if d, err := s.GetDelivery(ctxT(t), seq); err != nil || d.State != store.DeliveryDone {
			t.Errorf("delivery %d ended %+v (%v), want done", seq, d, err)
		}
	}
}
