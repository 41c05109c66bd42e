package leader

import (
	"context"
	"sync"
	"testing"
	"time"
)

// memLeases is an in-memory lease table with the store contract's rules.
type memLeases struct {
	mu     sync.Mutex
	holder map[string]string
	until  map[string]time.Time
}

func newMem() *memLeases {
	return &memLeases{holder: map[string]string{}, until: map[string]time.Time{}}
}

func (m *memLeases) AcquireLease(_ context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.holder[name]; ok && h != holder && now.Before(m.until[name]) {
		return false, nil
	}
	m.holder[name], m.until[name] = holder, now.Add(ttl)
	return true, nil
}

func (m *memLeases) ReleaseLease(_ context.Context, name, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holder[name] == holder {
		delete(m.holder, name)
	}
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestOneLeaderAndTakeover(t *testing.T) {
	leases := newMem()
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	a := New(Options{Leases: leases, Name: "cron", Holder: "a", TTL: 3 * time.Second, Renew: time.Hour, Now: clk.now})
	b := New(Options{Leases: leases, Name: "cron", Holder: "b", TTL: 3 * time.Second, Renew: time.Hour, Now: clk.now})
	ctx := context.Background()
	a.tick(ctx)
	b.tick(ctx)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("a=%v b=%v, want a alone", a.IsLeader(), b.IsLeader())
	}
	// a renews within its TTL: b stays out.
	clk.add(2 * time.Second)
	a.tick(ctx)
	b.tick(ctx)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatal("renewal lost the lease")
	}
	// a dies (no more renewals): once the lease runs out a stops claiming
	// leadership by itself, and b takes over.
	clk.add(3 * time.Second)
	if a.IsLeader() {
		t.Error("a still claims leadership past its lease")
	}
	b.tick(ctx)
	if !b.IsLeader() {
		t.Fatal("b did not take over an expired lease")
	}
	a.tick(ctx)
	if a.IsLeader() {
		t.Error("two leaders")
	}
}

func TestRunReleasesOnStop(t *testing.T) {
	leases := newMem()
	a := New(Options{Leases: leases, Name: "cron", Holder: "a", TTL: time.Minute, Renew: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !a.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("never became leader")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if a.IsLeader() {
		t.Error("still leader after stop")
	}
	// Released: b gets it at once, without waiting a minute.
	b := New(Options{Leases: leases, Name: "cron", Holder: "b", TTL: time.Minute})
	b.tick(context.Background())
	if !b.IsLeader() {
		t.Error("lease not released on stop")
	}
}
