package demo

import (
	"sync"
	"time"
)

// clock is the demo's time: the sample week's scripted moments, running on
// with real time in between. The daemon and both sandboxes read it, so that
// every timestamp, absence and expiry agrees with the week being replayed,
// while leases and backoffs still pass as they would.
type clock struct {
	mu   sync.Mutex
	at   time.Time // the time at mark
	mark time.Time // real time (monotonic) when at was set
}

func newClock(start time.Time) *clock { return &clock{at: start, mark: time.Now()} }

// Now is the demo's current time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at.Add(time.Since(c.mark))
}

// JumpTo moves the clock forward to t; it never goes back, so that no
// timestamp rolekeeper stored is ever in the future.
func (c *clock) JumpTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.at.Add(time.Since(c.mark))) {
		c.at, c.mark = t, time.Now()
	}
}
