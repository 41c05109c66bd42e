// Package schedule runs the daemon's periodic jobs (audit, weekly report)
// from robfig/cron specs. Cron callbacks only enqueue: each job has one
// worker, so a job never runs twice at once, and a tick that arrives while it
// runs is coalesced into one more run. Schedules are re-synced on reload, and
// with several replicas only the leader runs them.
package schedule

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// Job is a named periodic task.
type Job struct {
	Name string
	Spec string // robfig/cron standard spec (5 fields or a descriptor); "" disables
	Run  func(ctx context.Context) error
}

// Leader says whether this replica may run jobs; nil means always.
type Leader interface{ IsLeader() bool }

// Options configure a Scheduler.
type Options struct {
	Location   *time.Location
	Leader     Leader
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Scheduler owns a cron and one worker per job.
type Scheduler struct {
	opt  Options
	log  *zap.Logger
	cron *cron.Cron

	mu      sync.Mutex
	entries map[string]cron.EntryID
	jobs    map[string]*worker
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	running  *prometheus.GaugeVec
}

type worker struct {
	job  Job
	kick chan struct{}
}

// New returns a stopped Scheduler.
func New(o Options) *Scheduler {
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Scheduler{
		opt:     o,
		log:     o.Logger,
		cron:    cron.New(cron.WithLocation(o.Location)),
		entries: map[string]cron.EntryID{},
		jobs:    map[string]*worker{},
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rolekeeper_job_runs_total",
			Help: "Scheduled job runs by job and result (ok, error, skipped_not_leader)."}, []string{"job", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rolekeeper_job_duration_seconds",
			Help: "Duration of scheduled job runs.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 9)}, []string{"job"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rolekeeper_job_running",
			Help: "1 while a job runs."}, []string{"job"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.runs, s.duration, s.running)
	}
	return s
}

// Validate checks a cron spec the way Sync will parse it.
func Validate(spec string) error {
	if spec == "" {
		return nil
	}
	_, err := cron.ParseStandard(spec)
	return err
}

// Sync replaces the schedules with jobs: new specs take effect at once, a
// job with an empty spec is unscheduled (it can still be triggered). A job
// running now finishes undisturbed.
func (s *Scheduler) Sync(jobs []Job) error {
	for _, j := range jobs {
		if err := Validate(j.Spec); err != nil {
			return fmt.Errorf("schedule %s: %w", j.Name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, id := range s.entries {
		s.cron.Remove(id)
		delete(s.entries, name)
	}
	for _, j := range jobs {
		w := s.jobs[j.Name]
		if w == nil {
			w = &worker{kick: make(chan struct{}, 1)}
			s.jobs[j.Name] = w
			if s.ctx != nil {
				s.startWorker(w)
			}
		}
		w.job = j
		if j.Spec == "" {
			continue
		}
		name := j.Name
		id, err := s.cron.AddFunc(j.Spec, func() { s.Trigger(name) })
		if err != nil {
			return fmt.Errorf("schedule %s: %w", j.Name, err)
		}
		s.entries[j.Name] = id
	}
	return nil
}

// Trigger enqueues one run of a job; it never blocks. It returns false for
// an unknown job.
func (s *Scheduler) Trigger(name string) bool {
	s.mu.Lock()
	w := s.jobs[name]
	s.mu.Unlock()
	if w == nil {
		return false
	}
	select {
	case w.kick <- struct{}{}:
	default: // a run is already queued: coalesce
	}
	return true
}

// Next returns the next scheduled time of a job (zero when unscheduled).
func (s *Scheduler) Next(name string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.entries[name]
	if !ok {
		return time.Time{}
	}
	return s.cron.Entry(id).Next
}

// Start starts the cron and the workers.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	s.ctx, s.cancel = context.WithCancel(ctx)
	for _, w := range s.jobs {
		s.startWorker(w)
	}
	s.mu.Unlock()
	s.cron.Start()
}

func (s *Scheduler) startWorker(w *worker) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-w.kick:
				s.runOnce(w)
			}
		}
	}()
}

func (s *Scheduler) runOnce(w *worker) {
	s.mu.Lock()
	job := w.job
	s.mu.Unlock()
	if s.opt.Leader != nil && !s.opt.Leader.IsLeader() {
		s.runs.WithLabelValues(job.Name, "skipped_not_leader").Inc()
		s.log.Debug("job skipped: not the leader", zap.String("job", job.Name))
		return
	}
	start := time.Now()
	s.running.WithLabelValues(job.Name).Set(1)
	err := safeRun(s.ctx, job)
	s.running.WithLabelValues(job.Name).Set(0)
	s.duration.WithLabelValues(job.Name).Observe(time.Since(start).Seconds())
	if err != nil {
		s.runs.WithLabelValues(job.Name, "error").Inc()
		s.log.Error("job failed", zap.String("job", job.Name), zap.Error(err))
		return
	}
	s.runs.WithLabelValues(job.Name, "ok").Inc()
	s.log.Info("job done", zap.String("job", job.Name), zap.Duration("took", time.Since(start)))
}

// safeRun turns a panicking job into an error: one bad run must not take the
// daemon down.
func safeRun(ctx context.Context, job Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job %s panicked: %v", job.Name, r)
		}
	}()
	return job.Run(ctx)
}

// Stop stops the cron, cancels running jobs' context and waits for the
// workers, bounded by ctx.
func (s *Scheduler) Stop(ctx context.Context) error {
	<-s.cron.Stop().Done()
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
