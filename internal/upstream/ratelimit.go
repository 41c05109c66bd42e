package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// budget is what the upstream last said about its rate limit
// (X-RateLimit-Limit, -Remaining, -Reset), counted down by the requests
// sent since. Bitbucket's window is a rolling hour per credential, Jira's
// shorter; both may leave out any of the headers.
type budget struct {
	mu        sync.Mutex
	known     bool
	limit     int
	remaining int
	reset     time.Time // when the window opens again
	guessed   bool      // reset is a guess: the upstream did not say
	blocked   bool      // by a 429, not by the headers
	next      time.Time // when pacing, the earliest the next request goes
}

// answered is told of every answer other than 429: a block set by a 429
// ends, since the upstream serves again.
func (b *budget) answered() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blocked {
		b.known, b.blocked = false, false
	}
}

// take is asked before each request. It returns how long to wait before
// sending: 0 when the budget is unknown, its window has passed or enough
// is left; the time left in the window spread over the requests left when
// below slowBelow of the limit; the time to the reset when none is left
// (spent true; guessed when the upstream did not say when it resets). A
// request that has just waited out a 429 (first) is sent: it is the one
// that learns whether the window opened.
func (b *budget) take(now time.Time, slowBelow float64, first bool) (wait time.Duration, spent, guessed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.known || first {
		return 0, false, false
	}
	if !now.Before(b.reset) {
		b.known = false // a new window: the next answer says how much
		return 0, false, false
	}
	left := b.reset.Sub(now)
	if b.remaining <= 0 {
		return left, true, b.guessed
	}
	if b.limit > 0 && float64(b.remaining) < slowBelow*float64(b.limit) {
		// Requests in flight together are spaced one after another.
		at := now
		if b.next.After(at) {
			at = b.next
		}
		b.next = at.Add(left / time.Duration(b.remaining+1))
		wait = at.Sub(now)
	}
	b.remaining--
	return wait, false, false
}

// observe reads the rate-limit headers of an answer. ok is false when the
// answer had no X-RateLimit-Remaining.
func (b *budget) observe(h http.Header, now time.Time, unknownReset time.Duration) (remaining int, ok bool) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	if err != nil {
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blocked = false
	b.known, b.remaining = true, max(rem, 0)
	if l, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit"))); err == nil && l > 0 {
		b.limit = l
	}
	if at, ok := resetTime(h); ok && at.After(now) {
		b.reset, b.guessed = at, false
	} else {
		// No usable reset: look again after a while rather than never.
		b.reset, b.guessed = now.Add(unknownReset), true
	}
	return b.remaining, true
}

// block stops requests until at (a 429 said the budget is spent; guessed
// when it did not say until when).
func (b *budget) block(at time.Time, guessed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.known || at.After(b.reset) {
		b.reset, b.guessed = at, guessed
	}
	b.known, b.remaining, b.blocked = true, 0, true
}
