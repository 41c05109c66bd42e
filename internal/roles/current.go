package roles

import "sync/atomic"

// Current holds the organisation in force. Reloading roles.yaml swaps it
// atomically; readers take one Org per event and use it throughout, so an
// event is never decided against half of two files.
type Current struct {
	p atomic.Pointer[Org]
}

// NewCurrent returns a holder with o in force.
func NewCurrent(o *Org) *Current {
	c := &Current{}
	c.p.Store(o)
	return c
}

// Get returns the organisation in force.
func (c *Current) Get() *Org { return c.p.Load() }

// Set puts o in force.
func (c *Current) Set(o *Org) { c.p.Store(o) }
