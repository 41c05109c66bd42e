package inbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeProc records calls and answers with the error its function gives.
type fakeProc struct {
	mu    sync.Mutex
	calls map[int64]int
	fn    func(ctx context.Context, d store.Delivery, call int) error
}

func (p *fakeProc) Process(ctx context.Context, d store.Delivery) error {
	p.mu.Lock()
	if p.calls == nil {
		p.calls = make(map[int64]int)
	}
	p.calls[d.Seq]++
	n := p.calls[d.Seq]
	p.mu.Unlock()
	if p.fn == nil {
		return nil
	}
	return p.fn(ctx, d, n)
}

func (p *fakeProc) count(seq int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[seq]
}

type retryAfterErr struct{ d time.Duration }

func (e retryAfterErr) Error() string             { return fmt.Sprintf("rate limited for %s", e.d) }
func (e retryAfterErr) RetryAfter() time.Duration { return e.d }
func (e retryAfterErr) Temporary() bool           { return true }

type httpErr struct{ status int }

func (e httpErr) Error() string   { return fmt.Sprintf("status %d", e.status) }
func (e httpErr) Permanent() bool { return e.status >= 400 && e.status < 500 }

type fixture struct {
	st    store.Inbox
	clk   *clock
	proc  *fakeProc
	run   *Runner
	reg   *prometheus.Registry
	mu    sync.Mutex
	seqOf map[string]int64
}

func setup(t *testing.T, newStore func(t *testing.T) store.Inbox, opt Options) *fixture {
	t.Helper()
	f := &fixture{st: newStore(t), clk: newClock(), proc: &fakeProc{}, reg: prometheus.NewRegistry(), seqOf: map[string]int64{}}
	opt.Store, opt.Processor, opt.Registerer, opt.Now = f.st, f.proc, f.reg, f.clk.Now
	if opt.Jitter == nil {
		opt.Jitter = func(c time.Duration) time.Duration { return c } // the ceiling: deterministic
	}
	if opt.BaseBackoff == 0 {
		opt.BaseBackoff = 2 * time.Second
	}
	if opt.MaxBackoff == 0 {
		opt.MaxBackoff = 10 * time.Minute
	}
	run, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	f.run = run
	return f
}

func (f *fixture) enqueue(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: id, EventKey: "repo:push", Body: []byte(`{}`), ReceivedAt: f.clk.Now()}
		ok, err := f.st.Enqueue(context.Background(), d)
		if err != nil || !ok {
			t.Errorf("enqueue %s: %v %v", id, ok, err)
			return
		}
		f.mu.Lock()
		f.seqOf[id] = d.Seq
		f.mu.Unlock()
	}
}

func (f *fixture) get(t *testing.T, id string) *store.Delivery {
	t.Helper()
	f.mu.Lock()
	seq := f.seqOf[id]
	f.mu.Unlock()
	d, err := f.st.GetDelivery(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) runOnce(t *testing.T) int {
	t.Helper()
	n, err := f.run.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func storeKinds() []struct {
	name string
	open func(t *testing.T) store.Inbox
} {
	return []struct {
		name string
		open func(t *testing.T) store.Inbox
	}{
		{"memory", func(*testing.T) store.Inbox { return &memStore{} }},
		{"sqlite", openSQLite},
	}
}

func forEachStore(t *testing.T, test func(t *testing.T, newStore func(t *testing.T) store.Inbox)) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) { test(t, k.open) })
	}
}

func TestProcessesEachDelivery(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{})
		f.enqueue(t, "a", "b", "c")
		if n := f.runOnce(t); n != 3 {
			t.Fatalf("processed %d, want 3", n)
		}
		for _, id := range []string{"a", "b", "c"} {
			d := f.get(t, id)
			if d.State != store.DeliveryDone || f.proc.count(d.Seq) != 1 {
				t.Errorf("%s: state %s, %d calls", id, d.State, f.proc.count(d.Seq))
			}
		}
		if n := f.runOnce(t); n != 0 {
			t.Errorf("processed %d again", n)
		}
	})
}

func TestRetryBackoffAndRetryAfter(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{BaseBackoff: 2 * time.Second, MaxBackoff: 5 * time.Second, MaxAttempts: 10})
		f.proc.fn = func(_ context.Context, _ store.Delivery, call int) error {
			switch call {
			case 1, 2, 3:
				return errors.New("bitbucket: status 502")
			case 4:
				return fmt.Errorf("wrapped: %w", retryAfterErr{90 * time.Second})
			}
			return nil
		}
		f.enqueue(t, "a")
		// Each failure waits the ceiling (jitter is the identity here):
		// 2s, 4s, then capped at 5s; then the upstream's 90s.
		for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 90 * time.Second} {
			if n := f.runOnce(t); n != 1 {
				t.Fatalf("attempt %d: processed %d", i+1, n)
			}
			d := f.get(t, "a")
			if d.State != store.DeliveryPending || !d.NextAttemptAt.Equal(f.clk.Now().Add(want)) || d.LastError == "" {
				t.Fatalf("attempt %d: state %s next %s (want now+%s) err %q", i+1, d.State, d.NextAttemptAt, want, d.LastError)
			}
			f.clk.Add(want - time.Millisecond)
			if n := f.runOnce(t); n != 0 {
				t.Fatalf("attempt %d: retried before it was due", i+1)
			}
			f.clk.Add(time.Millisecond)
		}
		if n := f.runOnce(t); n != 1 || f.get(t, "a").State != store.DeliveryDone {
			t.Fatalf("last attempt: processed %d, state %s", n, f.get(t, "a").State)
		}
		if got := testutil.ToFloat64(f.run.metrics.processed.WithLabelValues("bitbucket", "retry")); got != 4 {
			t.Errorf("retry counter %v, want 4", got)
		}
	})
}

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		attempts int // processing calls before it is dead
	}{
		{"permanent error at once", fmt.Errorf("apply: %w", httpErr{404}), 1},
		{"permanent wrapper at once", Permanent(errors.New("unparseable body")), 1},
		{"temporary error after max attempts", httpErr{503}, 3},
		{"panic is retried like an error", nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
				f := setup(t, newStore, Options{MaxAttempts: 3})
				f.proc.fn = func(context.Context, store.Delivery, int) error {
					if tt.err == nil {
						panic("boom")
					}
					return tt.err
				}
				f.enqueue(t, "a")
				for i := 0; i < 10 && f.get(t, "a").State != store.DeliveryDead; i++ {
					f.runOnce(t)
					f.clk.Add(time.Hour)
				}
				d := f.get(t, "a")
				if d.State != store.DeliveryDead || f.proc.count(d.Seq) != tt.attempts {
					t.Fatalf("state %s after %d calls, want dead after %d", d.State, f.proc.count(d.Seq), tt.attempts)
				}
				if got := testutil.ToFloat64(f.run.metrics.dead.WithLabelValues("bitbucket")); got != 1 {
					t.Errorf("dead letters %v, want 1", got)
				}
				dead, err := f.run.ListDead(context.Background(), 10)
				if err != nil || len(dead) != 1 || dead[0].Seq != d.Seq || dead[0].LastError == "" {
					t.Errorf("ListDead = %+v, %v", dead, err)
				}
			})
		})
	}
}

func TestRedrive(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{})
		broken := true
		f.proc.fn = func(context.Context, store.Delivery, int) error {
			if broken {
				return Permanent(errors.New("no team owns the repository"))
			}
			return nil
		}
		f.enqueue(t, "a", "b")
		f.runOnce(t)
		if err := f.run.Redrive(context.Background(), f.seqOf["b"]+100); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("redrive of an unknown delivery: %v", err)
		}
		broken = false // the operator fixed roles.yaml
		if err := f.run.Redrive(context.Background(), f.seqOf["a"]); err != nil {
			t.Fatal(err)
		}
		if d := f.get(t, "a"); d.State != store.DeliveryPending || d.Attempts != 0 {
			t.Fatalf("after redrive: %s, %d attempts", d.State, d.Attempts)
		}
		if n := f.runOnce(t); n != 1 {
			t.Fatalf("processed %d after redrive", n)
		}
		if d := f.get(t, "a"); d.State != store.DeliveryDone {
			t.Errorf("a: %s", d.State)
		}
		if d := f.get(t, "b"); d.State != store.DeliveryDead {
			t.Errorf("b (not redriven): %s", d.State)
		}
		if err := f.run.Redrive(context.Background(), f.seqOf["a"]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("redrive of a done delivery: %v", err)
		}
	})
}

// TestReclaimAfterCrash: a worker claimed a delivery and died; once the
// lease has passed another run takes it.
func TestReclaimAfterCrash(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{Lease: 2 * time.Minute})
		f.enqueue(t, "a")
		got, err := f.st.Claim(context.Background(), store.ClaimRequest{Worker: "crashed", Now: f.clk.Now(), Lease: 2 * time.Minute, Limit: 5})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %v", got, err)
		}
		f.clk.Add(time.Minute)
		if n := f.runOnce(t); n != 0 {
			t.Fatalf("took a delivery still under lease")
		}
		f.clk.Add(time.Minute + time.Second)
		if n := f.runOnce(t); n != 1 {
			t.Fatalf("did not reclaim after the lease")
		}
		if d := f.get(t, "a"); d.State != store.DeliveryDone || d.Attempts != 2 {
			t.Errorf("state %s attempts %d", d.State, d.Attempts)
		}
	})
}

// TestWorkersProcessEverything runs the worker pool: every delivery
// enqueued (with a wake-up) is processed, at least once.
func TestWorkersProcessEverything(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{Workers: 4})
		const n = 40
		done := make(chan int64, n*2)
		f.proc.fn = func(_ context.Context, d store.Delivery, call int) error {
			if call == 1 && d.Seq%7 == 0 {
				return Permanent(errors.New("bad"))
			}
			done <- d.Seq
			return nil
		}
		f.run.Start(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.enqueue(t, fmt.Sprintf("d%d", i))
				f.run.Notify()
			}()
		}
		wg.Wait()
		want := 0
		for _, seq := range f.seqOf {
			if seq%7 != 0 {
				want++
			}
		}
		seen := map[int64]bool{}
		for len(seen) < want {
			seen[<-done] = true
		}
		if err := f.run.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		for id, seq := range f.seqOf {
			d := f.get(t, id)
			if seq%7 == 0 && d.State != store.DeliveryDead || seq%7 != 0 && d.State != store.DeliveryDone {
				t.Errorf("%s (seq %d): %s", id, seq, d.State)
			}
		}
	})
}

// TestStopDrains: Stop stops claiming and waits for the delivery in hand.
func TestStopDrains(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{Workers: 1})
		entered, release := make(chan struct{}), make(chan struct{})
		f.proc.fn = func(context.Context, store.Delivery, int) error {
			close(entered)
			<-release
			return nil
		}
		f.enqueue(t, "a")
		f.run.Start(context.Background())
		f.run.Notify()
		<-entered
		f.enqueue(t, "b") // arrives while stopping: stays for the next run
		stopped := make(chan error)
		go func() { stopped <- f.run.Stop(context.Background()) }()
		<-f.run.stopping
		close(release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if d := f.get(t, "a"); d.State != store.DeliveryDone {
			t.Errorf("in-flight delivery: %s, want done", d.State)
		}
		if d := f.get(t, "b"); d.State != store.DeliveryPending || f.proc.count(d.Seq) != 0 {
			t.Errorf("delivery after stop: %s, %d calls", d.State, f.proc.count(d.Seq))
		}
	})
}

// TestStopDeadline: when Stop's context ends, processing is cancelled and
// the delivery goes back to the queue.
func TestStopDeadline(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{Workers: 1})
		entered := make(chan struct{})
		f.proc.fn = func(ctx context.Context, _ store.Delivery, _ int) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		f.enqueue(t, "a")
		f.run.Start(context.Background())
		f.run.Notify()
		<-entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.run.Stop(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop = %v, want canceled", err)
		}
		if d := f.get(t, "a"); d.State != store.DeliveryPending {
			t.Errorf("cancelled delivery: %s, want pending", d.State)
		}
	})
}

func TestDepthMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{})
		f.proc.fn = func(_ context.Context, d store.Delivery, _ int) error { return Permanent(errors.New("x")) }
		f.enqueue(t, "a")
		f.runOnce(t) // a is dead
		f.clk.Add(time.Minute)
		f.enqueue(t, "b", "c")
		f.clk.Add(90 * time.Second)
		want := `
# HELP rolekeeper_inbox_depth Deliveries in the inbox by state (pending, processing, dead).
# TYPE rolekeeper_inbox_depth gauge
rolekeeper_inbox_depth{state="dead"} 1
rolekeeper_inbox_depth{state="pending"} 2
rolekeeper_inbox_depth{state="processing"} 0
# HELP rolekeeper_inbox_oldest_pending_seconds Age of the oldest pending delivery (0 when none).
# TYPE rolekeeper_inbox_oldest_pending_seconds gauge
rolekeeper_inbox_oldest_pending_seconds 90
`
		if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "rolekeeper_inbox_depth", "rolekeeper_inbox_oldest_pending_seconds"); err != nil {
			t.Error(err)
		}
	})
}

func TestBackoff(t *testing.T) {
	identity := func(c time.Duration) time.Duration { return c }
	half := func(c time.Duration) time.Duration { return c / 2 }
	tests := []struct {
		attempt int
		jitter  func(time.Duration) time.Duration
		want    time.Duration
	}{
		{1, identity, 2 * time.Second},
		{2, identity, 4 * time.Second},
		{5, identity, 32 * time.Second},
		{9, identity, 512 * time.Second},
		{10, identity, 10 * time.Minute},
		{60, identity, 10 * time.Minute},
		{3, half, 4 * time.Second},
	}
	for _, tt := range tests {
		if got := Backoff(tt.attempt, 2*time.Second, 10*time.Minute, tt.jitter); got != tt.want {
			t.Errorf("Backoff(%d) = %s, want %s", tt.attempt, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err        error
		permanent  bool
		retryAfter time.Duration
	}{
		{errors.New("plain"), false, 0},
		{httpErr{404}, true, 0},
		{httpErr{503}, false, 0},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", httpErr{400})), true, 0},
		{errors.Join(errors.New("x"), retryAfterErr{time.Minute}), false, time.Minute},
		{Permanent(errors.New("bad payload")), true, 0},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.permanent {
			t.Errorf("IsPermanent(%v) = %v", tt.err, got)
		}
		if got := RetryAfter(tt.err); got != tt.retryAfter {
			t.Errorf("RetryAfter(%v) = %v", tt.err, got)
		}
	}
}

// TestClockJumpDoesNotStallClaims: when the clock moves past the last
// heartbeat (a jump, as the demo's simulated week makes, or NTP), the worker
// beats at once and claims, instead of idling until its heartbeat ticker
// fires (5 s by default: the demo waited that long for every step).
func TestClockJumpDoesNotStallClaims(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) store.Inbox) {
		f := setup(t, newStore, Options{Workers: 1, Heartbeat: time.Hour, PollInterval: time.Hour})
		done := make(chan struct{}, 1)
		f.proc.fn = func(context.Context, store.Delivery, int) error {
			done <- struct{}{}
			return nil
		}
		f.run.Start(context.Background())
		t.Cleanup(func() { _ = f.run.Stop(context.Background()) })
		f.clk.Add(2 * time.Hour)
		f.enqueue(t, "a")
		f.run.Notify()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // a liveness bound, not a speed target: without the beat it never comes
			t.Fatal("delivery not claimed after the clock moved past the last heartbeat")
		}
	})
}
