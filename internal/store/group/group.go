// Package group commits concurrent requests together: the first caller to
// find no batch under way leads, runs what is queued (its own request
// first) as one batch, answers everyone in it, and hands the lead to the
// oldest caller still queued. Under load one round trip and one commit
// serve many callers; alone, a caller runs at once. The stores use it for
// their workers' completions.
package group

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Group queues requests of type T. Its zero value is ready.
type Group[T any] struct {
	mu      sync.Mutex
	queue   []*request[T]
	leading bool
}

type request[T any] struct {
	v   T
	res chan result // buffered: answered once with lead, once with the result
}

type result struct {
	lead bool
	err  error
}

// Do queues v and returns its error once a batch holding it ran. run gets
// at most limit requests, in the order they were queued, and returns one
// error per request (nil for success); ctx is the leader's.
func (g *Group[T]) Do(ctx context.Context, v T, limit int, run func(ctx context.Context, batch []T) []error) error {
	r := &request[T]{v: v, res: make(chan result, 2)}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		if got := <-r.res; !got.lead {
			return got.err
		}
	}
	g.runHead(ctx, limit, run)
	return (<-r.res).err
}

// runHead runs the head of the queue, which holds the caller's own
// request, and passes the lead on.
func (g *Group[T]) runHead(ctx context.Context, limit int, run func(context.Context, []T) []error) {
	g.mu.Lock()
	n := min(len(g.queue), max(1, limit))
	batch := g.queue[:n:n]
	g.queue = slices.Clone(g.queue[n:])
	g.mu.Unlock()

	vs := make([]T, n)
	for i, r := range batch {
		vs[i] = r.v
	}
	errs := run(ctx, vs)
	for i, r := range batch {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		r.res <- result{err: err}
	}

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.mu.Unlock()
	next.res <- result{lead: true}
}

// WaitAtMost returns once done is closed, d has passed or ctx is done,
// whichever comes first. Both stores' claims wait this way for the
// intake's commits under way (their yieldToIntake).
func WaitAtMost(ctx context.Context, done <-chan struct{}, d time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}
