package replicatest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/leader"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
)

// crashable is a replica's lease table that stops answering at once when
// the replica "dies": no renewal, no release, as after SIGKILL.
type crashable struct {
	store.Leases
	dead atomic.Bool
}

var errDead = errors.New("replica killed")

func (c *crashable) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if c.dead.Load() {
		return false, errDead
	}
	return c.Leases.AcquireLease(ctx, name, holder, ttl, now)
}

func (c *crashable) ReleaseLease(ctx context.Context, name, holder string) error {
	if c.dead.Load() {
		return errDead
	}
	return c.Leases.ReleaseLease(ctx, name, holder)
}

// TestLeaderTakeoverPostgres elects the cron leader among three replicas,
// each with its own connection pool on one Postgres schema, kills the
// leader without a release, and checks that exactly one other replica
// takes over within the lease TTL plus one renewal, never two at once.
func TestLeaderTakeoverPostgres(t *testing.T) {
	const (
		ttl   = 3 * time.Second
		renew = time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	schema, err := NewSchema(ctx, pgtest.Require(t), "rk_leader_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := schema.Drop(c); err != nil {
			t.Error(err)
		}
	})

	type replica struct {
		name   string
		leases *crashable
		e      *leader.Elector
		stop   context.CancelFunc
		done   chan struct{}
	}
	rs := make([]*replica, replicas)
	for i := range rs {
		st, err := postgres.Open(ctx, schema.DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		r := &replica{name: fmt.Sprintf("replica%d", i), leases: &crashable{Leases: st}, done: make(chan struct{})}
		r.e = leader.New(leader.Options{Leases: r.leases, Name: "cron", Holder: r.name, TTL: ttl, Renew: renew})
		rctx, stop := context.WithCancel(ctx)
		r.stop = stop
		go func() { defer close(r.done); r.e.Run(rctx) }()
		t.Cleanup(func() { r.stop(); <-r.done })
		rs[i] = r
	}

	// leaders lists who says it leads, and fails on two at once. A killed
	// replica runs nothing, so it is left out.
	leaders := func() []*replica {
		var out []*replica
		for _, r := range rs {
			if !r.leases.dead.Load() && r.e.IsLeader() {
				out = append(out, r)
			}
		}
		if len(out) > 1 {
			t.Fatalf("%s and %s lead at once", out[0].name, out[1].name)
		}
		return out
	}
	wait := func(what string, ok func([]*replica) bool) []*replica {
		for {
			if l := leaders(); ok(l) {
				return l
			}
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	first := wait("a leader", func(l []*replica) bool { return len(l) == 1 })[0]
	// A few renewals: the leader keeps it, nobody else gets it.
	for end := time.Now().Add(2 * renew); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if l := leaders(); len(l) != 1 || l[0] != first {
			t.Fatalf("leadership moved from %s without a failure: %v", first.name, l)
		}
	}

	first.leases.dead.Store(true)
	killed := time.Now()
	first.stop()
	<-first.done
	next := wait("a new leader", func(l []*replica) bool { return len(l) == 1 && l[0] != first })[0]
	took := time.Since(killed)
	t.Logf("%s led; killed; %s took over after %s (lease %s, renewal every %s)", first.name, next.name, took.Round(time.Millisecond), ttl, renew)
	if took > ttl+renew+time.Second {
		t.Errorf("takeover took %s, want at most the TTL plus one renewal (%s)", took, ttl+renew)
	}
}
