// Package inbox processes stored webhook deliveries at least once. Workers
// claim due deliveries from the store under a lease, hand each to the
// Processor, and then complete it, retry it later (exponential backoff with
// full jitter, or the upstream's Retry-After) or dead-letter it (a permanent
// error, or too many attempts).
//
// Every claim carries a token, and only its holder may settle it. A worker
// renews its lease while it works; when the store says the claim is lost
// (another replica took the delivery), or this replica's heartbeat has
// failed for long enough that others may think it dead, the processing is
// cancelled and nothing more is written for it.
//
// Recovery after a crash: a SQLite store is owned by one process, which at
// start releases the claims its dead predecessor left (Recover); with
// PostgreSQL, replicas heartbeat into the store and the claims of one whose
// heartbeat is older than StaleAfter are taken over. Otherwise a claim is
// taken again once its lease has passed.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/store"
)

// Processor does the work of one delivery. An error whose Permanent()
// reports true dead-letters the delivery at once; an error with a
// RetryAfter() duration delays the retry at least that long; any other
// error is retried with backoff.
type Processor interface {
	Process(ctx context.Context, d store.Delivery) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, d store.Delivery) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, d store.Delivery) error { return f(ctx, d) }

// Options configure a Runner. Zero values take the defaults of the config
// file (4 workers, 8 attempts, 2 s to 10 min backoff, 30 s lease, 2 min
// timeout), a 1 s poll, a 5 s heartbeat and 15 s before a silent replica's
// claims are taken over.
type Options struct {
	Store     store.Inbox
	Processor Processor

	Workers      int
	MaxAttempts  int
	BaseBackoff  time.Duration
	MaxBackoff   time.Duration
	Lease        time.Duration // a claim lasts this long unless renewed; renewed every third of it
	Timeout      time.Duration // processing one delivery is cut at this
	PollInterval time.Duration // how often idle workers look for retries and lost claims
	// Heartbeat is how often a started Runner records in the store that its
	// replica is alive; StaleAfter how old another replica's heartbeat may
	// be before its claims are taken over (and how long this one's may fail
	// before it gives up its own).
	Heartbeat  time.Duration
	StaleAfter time.Duration

	Now    func() time.Time                     // default time.Now
	After  func(time.Duration) <-chan time.Time // the idle wait; default time.After
	Jitter func(ceiling time.Duration) time.Duration
	// WorkerID names this replica in claims and heartbeats; default
	// host-pid-random, unique to each start of the process.
	WorkerID   string
	Logger     *zap.Logger
	Registerer prometheus.Registerer // required
}

// Runner is the pool of inbox workers.
type Runner struct {
	opt     Options
	metrics *metrics

	wake     chan struct{}
	stopping chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	started  atomic.Bool
	cancel   context.CancelFunc // ends in-flight processing when Stop's deadline passes
	lastErr  atomic.Value       // last claim error text, to log each new failure once

	// Deliveries claimed together for idle workers (claimOne), each taken
	// by the next worker that looks; idle counts workers not processing.
	mu    sync.Mutex
	batch []store.Delivery
	held  int // claims this runner holds, batched or being processed: at most 2×Workers
	idle  atomic.Int64

	beating  atomic.Bool  // the heartbeat runs (Start)
	lastBeat atomic.Int64 // Now of the last successful heartbeat, Unix ms
	beatDone chan struct{}
}

// errStale cancels processing when this replica's heartbeat has failed for
// StaleAfter: other replicas may already have taken its claims.
var errStale = errors.New("inbox: this replica's heartbeat is stale; its claims may have been taken over")

// New validates the options and registers the inbox metrics.
func New(opt Options) (*Runner, error) {
	if opt.Store == nil || opt.Processor == nil || opt.Registerer == nil {
		return nil, errors.New("inbox: store, processor and registerer are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if opt.Workers <= 0 {
		opt.Workers = 4
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 8
	}
	def(&opt.BaseBackoff, 2*time.Second)
	def(&opt.MaxBackoff, 10*time.Minute)
	def(&opt.Lease, 30*time.Second)
	def(&opt.Timeout, 2*time.Minute)
	def(&opt.PollInterval, time.Second)
	def(&opt.Heartbeat, 5*time.Second)
	def(&opt.StaleAfter, 15*time.Second)
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.After == nil {
		opt.After = time.After
	}
	if opt.Jitter == nil {
		opt.Jitter = func(c time.Duration) time.Duration {
			if c <= 0 {
				return 0
			}
			return time.Duration(rand.Int64N(int64(c) + 1))
		}
	}
	if opt.WorkerID == "" {
		host, _ := os.Hostname()
		opt.WorkerID = host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64()>>40, 36)
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	m, err := newMetrics(opt.Registerer, opt.Store, opt.Now)
	if err != nil {
		return nil, err
	}
	return &Runner{
		opt:      opt,
		metrics:  m,
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		beatDone: make(chan struct{}),
	}, nil
}

// WorkerID is the name this replica claims and heartbeats under.
func (r *Runner) WorkerID() string { return r.opt.WorkerID }

// Recover makes this process the owner of a store that one process at a
// time may work (SQLite: store.Owned), refusing when another holds it, and
// releases the claims an earlier owner left when it died, so that they are
// processed again at once rather than after their leases. Call it before
// Start; other stores need nothing.
func (r *Runner) Recover(ctx context.Context) error {
	o, ok := r.opt.Store.(store.Owned)
	if !ok {
		return nil
	}
	n, err := o.Own(ctx, r.opt.Now().UTC())
	if err != nil {
		return err
	}
	if n > 0 {
		r.opt.Logger.Warn("inbox: released deliveries left in flight by an earlier run; processing them again", zap.Int("deliveries", n))
		r.Notify()
	}
	return nil
}

// Start launches the workers. ctx carries values (the logger, say) but its
// cancellation does not stop them: Stop does, after letting in-flight
// deliveries finish.
func (r *Runner) Start(ctx context.Context) {
	if !r.started.CompareAndSwap(false, true) {
		return
	}
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.beat(base) // first, so that claims are never made under a stale name
	r.beating.Store(true)
	go r.heartbeat(base)
	for i := 0; i < r.opt.Workers; i++ {
		r.wg.Add(1)
		go r.loop(base)
	}
}

// Notify wakes an idle worker: a new delivery was stored.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Stop stops claiming and waits for in-flight deliveries to finish. When
// ctx ends first, their processing is cancelled (their claims expire and
// another run takes them) and ctx's error is returned.
func (r *Runner) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopping) })
	if !r.started.Load() {
		return nil
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		r.cancel()
		select { // a processor that ignores its context is not waited for long
		case <-done:
		case <-time.After(5 * time.Second):
		}
		err = fmt.Errorf("inbox drain: %w", ctx.Err())
	}
	r.cancel()
	<-r.beatDone
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer lcancel()
	if lerr := r.opt.Store.Leave(lctx, r.opt.WorkerID); lerr != nil {
		r.opt.Logger.Warn("inbox: could not remove this replica's heartbeat", zap.Error(lerr))
	}
	return err
}

// heartbeat records every Heartbeat that this replica is alive, until ctx
// ends.
func (r *Runner) heartbeat(ctx context.Context) {
	defer close(r.beatDone)
	t := time.NewTicker(r.opt.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.beat(ctx)
		}
	}
}

func (r *Runner) beat(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, r.opt.Heartbeat)
	defer cancel()
	now := r.opt.Now().UTC()
	if err := r.opt.Store.Heartbeat(bctx, r.opt.WorkerID, now); err != nil {
		if ctx.Err() == nil {
			r.opt.Logger.Warn("inbox: heartbeat failed", zap.Error(err))
		}
		return
	}
	r.lastBeat.Store(now.UnixMilli())
}

// stale reports whether this replica's heartbeat has failed for StaleAfter.
func (r *Runner) stale() bool {
	return r.beating.Load() && r.opt.Now().UnixMilli()-r.lastBeat.Load() >= r.opt.StaleAfter.Milliseconds()
}

func (r *Runner) loop(ctx context.Context) {
	defer r.wg.Done()
	r.idle.Add(1)
	defer r.idle.Add(-1)
	for {
		select {
		case <-r.stopping:
			r.finishBatch(ctx)
			return
		default:
		}
		n, err := r.claimOne(ctx)
		if err == nil && n > 0 {
			continue // there may be more: claim again at once
		}
		select {
		case <-r.stopping:
			r.finishBatch(ctx)
			return
		case <-r.wake:
		case <-r.opt.After(r.opt.PollInterval):
		}
	}
}

// RunOnce claims and processes due deliveries, one at a time, until none is
// due; it returns how many it processed. The CLI and tests use it instead
// of Start.
func (r *Runner) RunOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.claimOne(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// claimOne processes one due delivery: one claimed earlier, or else a new
// claim of as many as there are idle workers and up to Workers more (one
// statement, one transaction for all), the rest left for the next workers
// to look. A delivery claimed ahead is renewed when taken should its claim
// be close to lapsing (handleTaken); its worker renews it from then on.
func (r *Runner) claimOne(ctx context.Context) (int, error) {
	if d, ok := r.take(); ok {
		r.handleTaken(ctx, d)
		return 1, nil
	}
	if r.stale() {
		// The clock may have moved past the last beat (a jump, or a beat
		// that failed): beat now rather than wait for the ticker, and claim
		// nothing under a name others may think dead while that fails.
		// Claims others took over meanwhile stay theirs: settling them is
		// fenced by their tokens.
		r.beat(ctx)
		if r.stale() {
			return 0, errStale
		}
	}
	// Reserve the claims first, so that workers claiming at once never hold
	// more than 2×Workers between them (as many as a crash may leave). A
	// claim takes one delivery per idle worker and, when there are more
	// due, up to Workers more for the workers busy now: under a backlog a
	// claim statement then serves several deliveries instead of one (with
	// Postgres the claims had been 1.2 statements per delivery, more than
	// every other statement of the inbox together). A delivery claimed
	// ahead waits at most for a worker to finish; should its claim come
	// close to lapsing meanwhile, handleTaken renews it or lets it go.
	r.mu.Lock()
	limit := min(int(max(1, r.idle.Load()))+r.opt.Workers, 2*r.opt.Workers-r.held)
	r.held += max(limit, 0)
	r.mu.Unlock()
	if limit <= 0 {
		return 0, nil
	}
	now := r.opt.Now().UTC()
	ds, err := r.opt.Store.Claim(ctx, store.ClaimRequest{
		Worker:      r.opt.WorkerID,
		Now:         now,
		Lease:       r.opt.Lease,
		Limit:       limit,
		StaleBefore: now.Add(-r.opt.StaleAfter),
	})
	r.mu.Lock()
	r.held -= limit - len(ds)
	r.mu.Unlock()
	if err != nil {
		if prev, _ := r.lastErr.Load().(string); prev != err.Error() {
			r.lastErr.Store(err.Error())
			r.opt.Logger.Warn("inbox claim failed", zap.Error(err))
		}
		return 0, fmt.Errorf("claim: %w", err)
	}
	r.lastErr.Store("")
	if len(ds) == 0 {
		return 0, nil
	}
	if len(ds) > 1 {
		r.mu.Lock()
		r.batch = append(r.batch, ds[1:]...)
		r.mu.Unlock()
	}
	r.Notify() // another idle worker may take the next one
	r.handleOne(ctx, ds[0])
	return 1, nil
}

// take pops the oldest delivery claimed for idle workers.
func (r *Runner) take() (store.Delivery, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batch) == 0 {
		return store.Delivery{}, false
	}
	d := r.batch[0]
	r.batch = r.batch[1:]
	if len(r.batch) > 0 {
		r.Notify()
	}
	return d, true
}

// handleOne handles d as a busy (not idle) worker, and then no longer
// counts its claim as held.
func (r *Runner) handleOne(ctx context.Context, d store.Delivery) {
	r.idle.Add(-1)
	defer r.idle.Add(1)
	defer r.release()
	r.handle(ctx, d)
}

// release forgets one held claim.
func (r *Runner) release() {
	r.mu.Lock()
	r.held--
	r.mu.Unlock()
}

// handleTaken handles a delivery claimed earlier for an idle worker. When
// it waited long enough that its claim could lapse before the first
// renewal (every worker was busy after all), the claim is renewed first;
// a claim that cannot be renewed is not acted on: another worker may hold
// it, or will once it lapses.
func (r *Runner) handleTaken(ctx context.Context, d store.Delivery) {
	now := r.opt.Now().UTC()
	if d.ClaimedUntil.Sub(now) < r.opt.Lease/2 {
		until := now.Add(r.opt.Lease)
		if err := r.opt.Store.Renew(ctx, store.ClaimOf(d), until); err != nil {
			log := r.opt.Logger.With(zap.Int64("seq", d.Seq), zap.String("delivery_id", d.DeliveryID))
			if errors.Is(err, store.ErrLostClaim) {
				r.lostClaim(log, err)
			} else {
				log.Warn("inbox: could not renew a claim that waited for a worker; it will be processed once it lapses", zap.Error(err))
			}
			r.release()
			return
		}
		d.ClaimedUntil = until
	}
	r.handleOne(ctx, d)
}

// finishBatch processes, on Stop, what was claimed for workers that did not
// take it: it is this replica's, and finishing it beats leaving it to its
// lease.
func (r *Runner) finishBatch(ctx context.Context) {
	for {
		d, ok := r.take()
		if !ok {
			return
		}
		r.handleTaken(ctx, d)
	}
}

// handle processes one claimed delivery and records the result, unless
// the claim was lost meanwhile.
func (r *Runner) handle(ctx context.Context, d store.Delivery) {
	log := r.opt.Logger.With(
		zap.Int64("seq", d.Seq),
		zap.String("source", string(d.Source)),
		zap.String("delivery_id", d.DeliveryID),
		zap.String("event", d.EventKey),
		zap.Int("attempt", d.Attempts),
	)
	c := store.ClaimOf(d)
	start := time.Now()
	held, drop := context.WithCancelCause(ctx)
	defer drop(nil) // after the cause is read below
	pctx, cancel := context.WithTimeout(held, r.opt.Timeout)
	kept := make(chan struct{})
	go func() { defer close(kept); r.keep(pctx, drop, c, log) }()
	err := r.process(pctx, d)
	cancel()
	<-kept
	r.metrics.duration.WithLabelValues(string(d.Source)).Observe(time.Since(start).Seconds())
	if cause := context.Cause(held); errors.Is(cause, store.ErrLostClaim) || errors.Is(cause, errStale) {
		r.lostClaim(log, cause)
		return
	}

	// Record the result even when processing was cancelled by Stop.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	now := r.opt.Now().UTC()
	src := string(d.Source)
	var serr error
	switch {
	case err == nil:
		if serr = r.opt.Store.Complete(sctx, c, now); serr == nil {
			r.metrics.processed.WithLabelValues(src, "done").Inc()
			log.Debug("delivery processed")
			return
		}
	case IsPermanent(err) || d.Attempts >= r.opt.MaxAttempts:
		why := "permanent error"
		if !IsPermanent(err) {
			why = "too many attempts"
		}
		if serr = r.opt.Store.Bury(sctx, c, now, errText(err)); serr == nil {
			r.metrics.processed.WithLabelValues(src, "dead").Inc()
			r.metrics.dead.WithLabelValues(src).Inc()
			log.Error("delivery dead-lettered: "+why, zap.Error(err))
			return
		}
	default:
		delay := Backoff(d.Attempts, r.opt.BaseBackoff, r.opt.MaxBackoff, r.opt.Jitter)
		if ra := RetryAfter(err); ra > delay {
			delay = ra
		}
		if serr = r.opt.Store.Retry(sctx, c, now.Add(delay), errText(err)); serr == nil {
			r.metrics.processed.WithLabelValues(src, "retry").Inc()
			log.Warn("delivery failed, will retry", zap.Error(err), zap.Duration("retry_in", delay))
			return
		}
	}
	if errors.Is(serr, store.ErrLostClaim) {
		r.lostClaim(log, serr)
		return
	}
	log.Error("inbox: could not record the result; the delivery will be processed again once its claim lapses",
		zap.Error(serr), zap.NamedError("cause", err))
}

// lostClaim logs and counts a claim this replica no longer holds: another
// worker has the delivery, and this one stopped acting on it.
func (r *Runner) lostClaim(log *zap.Logger, cause error) {
	r.metrics.lost.Inc()
	log.Warn("inbox: lost the claim; stopped acting on the delivery, which another worker now holds", zap.Error(cause))
}

// keep renews the claim every third of the lease until ctx ends. When the
// store answers that the claim is lost, or this replica's heartbeat has
// gone stale, it cancels the processing (drop) with that cause.
func (r *Runner) keep(ctx context.Context, drop context.CancelCauseFunc, c store.Claim, log *zap.Logger) {
	t := time.NewTicker(max(r.opt.Lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.stale() {
			drop(errStale)
			return
		}
		rctx, cancel := context.WithTimeout(ctx, r.opt.Lease/3)
		err := r.opt.Store.Renew(rctx, c, r.opt.Now().UTC().Add(r.opt.Lease))
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, store.ErrLostClaim):
			drop(err)
			return
		case ctx.Err() == nil:
			log.Warn("inbox: could not renew the claim; trying again", zap.Error(err))
		}
	}
}

// process calls the processor, turning a panic into an error.
func (r *Runner) process(ctx context.Context, d store.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return r.opt.Processor.Process(ctx, d)
}

// Redrive puts a dead-lettered delivery back in the queue, with its attempts
// reset, and wakes a worker. store.ErrNotFound when it is not dead.
func (r *Runner) Redrive(ctx context.Context, seq int64) error {
	if err := r.opt.Store.Redrive(ctx, seq, r.opt.Now().UTC()); err != nil {
		return err
	}
	r.Notify()
	return nil
}

// ListDead lists dead-lettered deliveries, oldest first.
func (r *Runner) ListDead(ctx context.Context, limit int) ([]store.Delivery, error) {
	return r.opt.Store.ListDeliveries(ctx, store.DeliveryDead, limit)
}

// Backoff is the wait before retry number attempt (1 after the first
// failure): a uniformly random duration up to base·2^(attempt-1), capped at
// max ("full jitter").
func Backoff(attempt int, base, max time.Duration, jitter func(time.Duration) time.Duration) time.Duration {
	ceiling := base
	for i := 1; i < attempt && ceiling < max; i++ {
		ceiling *= 2
	}
	if ceiling > max {
		ceiling = max
	}
	return jitter(ceiling)
}

// IsPermanent reports whether err (or an error it wraps) says that trying
// again cannot help.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// RetryAfter returns how long err (or an error it wraps) asks to wait, or 0.
func RetryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// Permanent wraps err so that the inbox dead-letters the delivery at once
// (a payload that can never be processed).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

func errText(err error) string {
	s := err.Error()
	if len(s) > 4000 {
		s = s[:4000] + "…"
	}
	return s
}
