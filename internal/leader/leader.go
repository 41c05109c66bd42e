// Package leader elects one replica to run the scheduled jobs, through a
// lease row in the shared store that the holder renews. When the leader dies
// its lease runs out and another replica takes over within TTL plus one
// renewal interval.
package leader

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/store"
)

// Elector keeps trying to hold a named lease and says whether it holds it.
type Elector struct {
	leases store.Leases
	name   string
	holder string
	ttl    time.Duration
	every  time.Duration
	now    func() time.Time
	log    *zap.Logger

	leading atomic.Bool
	// until is when our lease runs out (unix nanos); IsLeader says false past
	// it even if the renew loop is stuck, so two leaders never overlap.
	until atomic.Int64
}

// Options configure an Elector.
type Options struct {
	Leases store.Leases
	Name   string        // lease name, e.g. "cron"
	Holder string        // this replica's id, unique
	TTL    time.Duration // lease length (default 15s)
	Renew  time.Duration // renewal interval (default TTL/3)
	Now    func() time.Time
	Logger *zap.Logger
}

// New returns an Elector; call Run to campaign.
func New(o Options) *Elector {
	if o.TTL <= 0 {
		o.TTL = 15 * time.Second
	}
	if o.Renew <= 0 {
		o.Renew = o.TTL / 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Elector{leases: o.Leases, name: o.Name, holder: o.Holder, ttl: o.TTL, every: o.Renew, now: o.Now, log: o.Logger}
}

// IsLeader reports whether this replica holds an unexpired lease.
func (e *Elector) IsLeader() bool {
	return e.leading.Load() && e.now().UnixNano() < e.until.Load()
}

// Run campaigns and renews until ctx ends, then releases the lease.
func (e *Elector) Run(ctx context.Context) {
	t := time.NewTicker(e.every)
	defer t.Stop()
	for {
		e.tick(ctx)
		select {
		case <-ctx.Done():
			if e.leading.Load() {
				// A fresh context: ours is done, the release must still go out.
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if err := e.leases.ReleaseLease(rctx, e.name, e.holder); err != nil {
					e.log.Warn("release leader lease", zap.Error(err))
				}
				cancel()
				e.leading.Store(false)
			}
			return
		case <-t.C:
		}
	}
}

func (e *Elector) tick(ctx context.Context) {
	now := e.now()
	ok, err := e.leases.AcquireLease(ctx, e.name, e.holder, e.ttl, now)
	if err != nil {
		e.log.Warn("leader lease", zap.String("lease", e.name), zap.Error(err))
		ok = false
	}
	if ok {
		// Stores keep lease expiries to the millisecond: never believe in a
		// lease a moment longer than the store does.
		e.until.Store(now.Add(e.ttl).Truncate(time.Millisecond).UnixNano())
	}
	if was := e.leading.Swap(ok); was != ok {
		e.log.Info("leadership changed", zap.String("lease", e.name), zap.String("holder", e.holder), zap.Bool("leader", ok))
	}
}
