package faulttest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/app"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/replicatest"
)

// clock is the daemon's time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestBitbucketOutage: Bitbucket answers 503 to everything for a simulated
// minute while pull requests keep being opened, then recovers. Every pull
// request ends with its reviewer, asked once, and nothing is dead-lettered.
//
// The daemon's clock (inbox due times, backoff, Retry-After) runs 5 times
// faster than the wall clock, so the minute lasts 12 s: longer than the
// Bitbucket client's own retries in place (real sleeps of a few seconds),
// so deliveries do go back to the inbox.
func TestBitbucketOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: a few seconds of wall time")
	}
	clk := &clock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	bb := bitbuckettest.New()
	defer bb.Close()
	if err := replicatest.AddPeople(bb); err != nil {
		t.Fatal(err)
	}

	// Bitbucket down for a minute of the daemon's clock: every request gets
	// a 503 maintenance page and changes nothing on the fake.
	outageStart := clk.Now().Add(20 * time.Second)
	outageEnd := outageStart.Add(time.Minute)
	down := func() bool { now := clk.Now(); return !now.Before(outageStart) && now.Before(outageEnd) }
	bb.Fail(bitbuckettest.Fault{Status: http.StatusServiceUnavailable, Times: 1 << 30, HTML: true, When: down})

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "roles.yaml"), rolekeeper.RolesYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgYAML := "listen: 127.0.0.1:0\npublic_url: https://rk.example.com\nroles: roles.yaml\n" +
		"store: {driver: sqlite, dsn: data/rk.db}\n" +
		"bitbucket: {base_url: " + bb.URL() + ", workspace: reloadly}\n" +
		"schedule: {audit: \"\", weekly_report: \"\"}\n" +
		"inbox: {workers: 4}\n" // the shipped backoff and attempts
	cfgPath := filepath.Join(dir, "rolekeeper.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "outage-secret"
	env := map[string]string{
		config.EnvBitbucketWebhookSecret: secret,
		config.EnvBitbucketUsername:      "rolekeeper@example.com",
		config.EnvBitbucketToken:         "bb-token",
	}
	a, err := app.New(cfg, config.LoadSecrets(func(k string) string { return env[k] }),
		app.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Now: clk.Now, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	base := "http://" + a.Addr()
	client := &http.Client{Timeout: 10 * time.Second}

	// Pull requests keep coming, one every 2 simulated seconds, from 20 s
	// before the outage to 20 s after it.
	var prs []int
	for step := 0; clk.Now().Before(outageEnd.Add(20 * time.Second)); step++ {
		id := replicatest.OpenPR(bb, step+1)
		prs = append(prs, id)
		d := replicatest.Event(bb, secret, "pullrequest:created", id)
		code, err := replicatest.Post(context.Background(), client, base+"/webhooks/bitbucket", d)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("PR #%d: delivery answered %d, %v", id, code, err)
		}
		time.Sleep(400 * time.Millisecond)
		clk.advance(2 * time.Second)
	}
	if bb.Faulted() == 0 {
		t.Fatal("the outage refused nothing: the test tested nothing")
	}

	// Recovery: the clock keeps running until the inbox is empty.
	deadline := time.Now().Add(90 * time.Second)
	for {
		s, err := replicatest.Scrape(context.Background(), client, base)
		if err != nil {
			t.Fatal(err)
		}
		open := s.Sum("rolekeeper_inbox_depth", map[string]string{"state": "pending"}) +
			s.Sum("rolekeeper_inbox_depth", map[string]string{"state": "processing"})
		dead := s.Sum("rolekeeper_inbox_depth", map[string]string{"state": "dead"})
		if dead > 0 {
			t.Fatalf("%v deliveries dead-lettered", dead)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox not drained: %v deliveries open", open)
		}
		time.Sleep(100 * time.Millisecond)
		clk.advance(2 * time.Second)
	}

	s, err := replicatest.Scrape(context.Background(), client, base)
	if err != nil {
		t.Fatal(err)
	}
	retried := s.Sum("rolekeeper_inbox_processed_total", map[string]string{"result": "retry"})
	if retried == 0 {
		t.Error("no delivery went back to the inbox: the outage was absorbed in place and the inbox path went untested")
	}
	var missing, twice []int
	for _, id := range prs {
		if n := len(bb.Reviewers(replicatest.Repo, id)); n != 1 {
			missing = append(missing, id)
		}
		if n := bb.PutCount(replicatest.Repo, id); n != 1 {
			twice = append(twice, id)
		}
	}
	if len(missing) > 0 || len(twice) > 0 {
		t.Errorf("%d pull requests: without exactly one reviewer %v; reviewers not set exactly once %v", len(prs), missing, twice)
	}
	t.Logf("%d pull requests, %d requests refused during the outage, %v deliveries retried through the inbox, simulated %s",
		len(prs), bb.Faulted(), retried, clk.Now().Sub(outageStart.Add(-20*time.Second)).Round(time.Second))
}
