package group

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every caller gets its own request's answer, batches never exceed the
// limit and run one at a time, and under contention requests share
// batches.
func TestDoAnswersEveryCallerWithItsOwnResult(t *testing.T) {
	var g Group[int]
	var running, batches, maxBatch, entered atomic.Int64
	gate := make(chan struct{})
	run := func(_ context.Context, vs []int) []error {
		if running.Add(1) != 1 {
			t.Error("two batches at once")
		}
		defer running.Add(-1)
		entered.Add(int64(len(vs)))
		<-gate
		batches.Add(1)
		if n := int64(len(vs)); n > maxBatch.Load() {
			maxBatch.Store(n)
		}
		errs := make([]error, len(vs))
		for i, v := range vs {
			if v%3 == 0 {
				errs[i] = fmt.Errorf("odd one %d", v)
			}
		}
		return errs
	}
	const callers, limit = 200, 16
	var wg sync.WaitGroup
	for i := 1; i <= callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := g.Do(context.Background(), i, limit, run)
			want := i%3 == 0
			if (err != nil) != want || (want && err.Error() != fmt.Sprintf("odd one %d", i)) {
				t.Errorf("caller %d got %v", i, err)
			}
		}()
	}
	// The first batch waits at the gate until every other caller is
	// queued behind it: the contention this test is about, whatever the
	// scheduler does (closing the gate at once let callers run one by one).
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		queued := len(g.queue)
		g.mu.Unlock()
		if entered.Load()+int64(queued) == callers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers in a batch and %d queued, want %d in all", entered.Load(), queued, callers)
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if maxBatch.Load() > limit {
		t.Errorf("a batch of %d, limit %d", maxBatch.Load(), limit)
	}
	if batches.Load() >= callers {
		t.Errorf("%d batches for %d concurrent callers: nothing was grouped", batches.Load(), callers)
	}
}

// A run that answers fewer errors than requests leaves the rest nil, and
// a lone caller runs at once.
func TestDoShortAnswer(t *testing.T) {
	var g Group[string]
	boom := errors.New("boom")
	if err := g.Do(context.Background(), "a", 4, func(context.Context, []string) []error { return nil }); err != nil {
		t.Errorf("nil answers: %v", err)
	}
	if err := g.Do(context.Background(), "b", 4, func(_ context.Context, vs []string) []error { return []error{boom} }); !errors.Is(err, boom) {
		t.Errorf("got %v", err)
	}
}

// WaitAtMost returns at once for a closed channel, when the channel
// closes, when its bound passes and when its context ends, and not before.
func TestWaitAtMost(t *testing.T) {
	waited := func(ctx context.Context, done <-chan struct{}, d time.Duration) <-chan struct{} {
		out := make(chan struct{})
		go func() { WaitAtMost(ctx, done, d); close(out) }()
		return out
	}
	returns := func(what string, out <-chan struct{}) {
		t.Helper()
		select {
		case <-out:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting after 10 s", what)
		}
	}
	waits := func(what string, out <-chan struct{}) {
		t.Helper()
		select {
		case <-out:
			t.Fatalf("%s: returned early", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
	ctx := context.Background()
	closed := make(chan struct{})
	close(closed)
	returns("closed", waited(ctx, closed, time.Hour))

	open := make(chan struct{})
	out := waited(ctx, open, time.Hour)
	waits("open", out)
	close(open)
	returns("closed while waiting", out)

	returns("bound", waited(ctx, make(chan struct{}), time.Millisecond))

	cctx, cancel := context.WithCancel(ctx)
	out = waited(cctx, make(chan struct{}), time.Hour)
	waits("before cancel", out)
	cancel()
	returns("cancelled", out)
}
