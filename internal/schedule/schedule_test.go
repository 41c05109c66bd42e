package schedule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type flag struct{ v atomic.Bool }

func (f *flag) IsLeader() bool { return f.v.Load() }

func TestOneRunAtATimeAndCoalesced(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Options{Registerer: reg})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	var running, maxRunning, runs atomic.Int32
	job := Job{Name: "audit", Run: func(ctx context.Context) error {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		runs.Add(1)
		started <- struct{}{}
		<-release
		running.Add(-1)
		return nil
	}}
	if err := s.Sync([]Job{job}); err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	s.Trigger("audit")
	<-started // first run is in progress
	for i := 0; i < 5; i++ {
		s.Trigger("audit") // coalesce into one queued run
	}
	release <- struct{}{}
	<-started // the queued run
	release <- struct{}{}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if maxRunning.Load() != 1 {
		t.Errorf("max concurrent runs = %d, want 1", maxRunning.Load())
	}
	if runs.Load() != 2 {
		t.Errorf("runs = %d, want 2 (one, then one coalesced)", runs.Load())
	}
	if got := testutil.ToFloat64(s.runs.WithLabelValues("audit", "ok")); got != 2 {
		t.Errorf("ok runs metric = %v", got)
	}
	if s.Trigger("nope") {
		t.Error("unknown job triggered")
	}
}

func TestOnlyLeaderRuns(t *testing.T) {
	leader := &flag{}
	s := New(Options{Leader: leader, Registerer: prometheus.NewRegistry()})
	var runs atomic.Int32
	done := make(chan struct{}, 4)
	s.Sync([]Job{{Name: "report", Run: func(context.Context) error { runs.Add(1); done <- struct{}{}; return nil }}})
	s.Start(context.Background())
	defer s.Stop(context.Background())
	s.Trigger("report")
	waitFor(t, func() bool { return testutil.ToFloat64(s.runs.WithLabelValues("report", "skipped_not_leader")) == 1 })
	if runs.Load() != 0 {
		t.Fatal("a follower ran the job")
	}
	leader.v.Store(true)
	s.Trigger("report")
	<-done
	if runs.Load() != 1 {
		t.Errorf("runs = %d", runs.Load())
	}
}

func TestErrorsAndPanicsAreContained(t *testing.T) {
	s := New(Options{Registerer: prometheus.NewRegistry()})
	s.Sync([]Job{
		{Name: "bad", Run: func(context.Context) error { return errors.New("boom") }},
		{Name: "worse", Run: func(context.Context) error { panic("kaboom") }},
	})
	s.Start(context.Background())
	defer s.Stop(context.Background())
	s.Trigger("bad")
	s.Trigger("worse")
	waitFor(t, func() bool {
		return testutil.ToFloat64(s.runs.WithLabelValues("bad", "error")) == 1 &&
			testutil.ToFloat64(s.runs.WithLabelValues("worse", "error")) == 1
	})
}

func TestSyncReschedules(t *testing.T) {
	loc, _ := time.LoadLocation("UTC")
	s := New(Options{Location: loc})
	noop := func(context.Context) error { return nil }
	if err := s.Sync([]Job{{Name: "audit", Spec: "0 * * * *", Run: noop}}); err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	defer s.Stop(context.Background())
	if n := s.Next("audit"); n.IsZero() || n.Minute() != 0 {
		t.Errorf("next = %v", n)
	}
	if err := s.Sync([]Job{{Name: "audit", Spec: "30 * * * *", Run: noop}}); err != nil {
		t.Fatal(err)
	}
	if n := s.Next("audit"); n.Minute() != 30 {
		t.Errorf("after resync next = %v, want minute 30", n)
	}
	if err := s.Sync([]Job{{Name: "audit", Spec: "", Run: noop}}); err != nil {
		t.Fatal(err)
	}
	if n := s.Next("audit"); !n.IsZero() {
		t.Errorf("disabled job still scheduled at %v", n)
	}
	if !s.Trigger("audit") {
		t.Error("a disabled job can still be triggered by hand")
	}
	if err := s.Sync([]Job{{Name: "audit", Spec: "61 * * * *", Run: noop}}); err == nil {
		t.Error("bad spec accepted")
	}
}

func TestCronFires(t *testing.T) {
	s := New(Options{})
	var mu sync.Mutex
	fired := 0
	// "@every 1s" is the shortest robfig/cron supports; wait for one tick.
	s.Sync([]Job{{Name: "tick", Spec: "@every 1s", Run: func(context.Context) error { mu.Lock(); fired++; mu.Unlock(); return nil }}})
	s.Start(context.Background())
	defer s.Stop(context.Background())
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return fired > 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
