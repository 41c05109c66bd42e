package replicatest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
)

const (
	replicas   = 3
	deliveries = 1000 // one pullrequest:created per new pull request
	senders    = 12   // concurrent webhook connections, as Bitbucket opens several
	secret     = "replica-test-webhook-secret"
	lease      = 3 * time.Second
	workers    = 4
	// statusPath is the fake's counter of status posts (bitbucket.EndpointTemplate).
	statusPath = "POST /repositories/{ws}/{repo}/commit/{hash}/statuses/build"
)

// TestReplicasSharePostgres runs three `rolekeeper serve` processes on one
// Postgres schema, sends 1,000 signed deliveries spread across them,
// SIGKILLs the cron leader half-way, and checks that every delivery was
// acted on once as the fake Bitbucket counts it, that nothing was
// dead-lettered, and that the scheduled jobs moved to a new leader.
func TestReplicasSharePostgres(t *testing.T) {
	pgtest.Require(t) // before the build: without a server, skip at once
	// The build has its own budget: with a cold cache it compiles SQLite.
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer bcancel()
	dir := t.TempDir()
	built := time.Now()
	bin, err := Build(bctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", bin, time.Since(built).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	start := time.Now()
	schema, err := NewSchema(ctx, pgtest.Require(t), "rk_replica_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := schema.Drop(c); err != nil {
			t.Error(err)
		}
	})

	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	if err := AddPeople(bb); err != nil {
		t.Fatal(err)
	}
	ds := make([]Delivery, deliveries)
	for i := range ds {
		ds[i] = Event(bb, secret, "pullrequest:created", OpenPR(bb, i+1))
	}

	extra := fmt.Sprintf(`inbox:
  workers: %d
  lease: %s
  base_backoff: 100ms
  max_backoff: 1s
schedule:
  audit: ""
  weekly_report: "@every 1s"
`, workers, lease)
	procs := make([]*Process, replicas)
	for i := range procs {
		p, err := Start(ctx, Options{
			Binary: bin, Dir: filepath.Join(dir, fmt.Sprintf("replica%d", i)), Name: fmt.Sprintf("replica%d", i),
			Store: "postgres", DSN: schema.DSN, BitbucketURL: bb.URL(), WebhookSecret: secret, Extra: extra,
		})
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
		t.Cleanup(func() {
			if err := p.Stop(10 * time.Second); err != nil {
				t.Errorf("%s: %v", p.Name(), err)
			}
			if t.Failed() {
				t.Logf("%s log (last lines of %s):\n%s", p.Name(), p.LogPath(), p.tail(40))
			}
		})
	}
	t.Logf("%d replicas up at %s after %s", replicas, addrs(procs), time.Since(start).Round(time.Millisecond))

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	// The replica killed is the cron leader when `serve` runs the
	// scheduler; before it did, leadership was covered by
	// TestLeaderTakeoverPostgres alone and replica0 is killed.
	victim := procs[0]
	wired := schedulerWired(ctx, t, client, procs)
	if wired {
		victim = procs[findLeader(ctx, t, client, procs)]
		t.Logf("cron leader: %s", victim.Name())
	} else {
		t.Logf("serve exports no rolekeeper_job_* metric: the scheduler is not wired; leader takeover is checked by TestLeaderTakeoverPostgres")
	}

	// Send: delivery i goes to replica i%3; a refused connection (the
	// killed replica) is retried on the next one, as a load balancer
	// would, with the same delivery id.
	codes := make([]int, len(ds))
	var next atomic.Int64
	var killOnce sync.Once
	takeover := make(chan time.Duration, 1)
	var wg sync.WaitGroup
	errs := make(chan error, senders+1)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ds) {
					return
				}
				if i == len(ds)/2 {
					killOnce.Do(func() {
						if err := victim.Kill(); err != nil {
							errs <- err
						}
						if wired {
							go watchTakeover(ctx, client, others(procs, victim), time.Now(), takeover)
						}
					})
				}
				code, err := postAny(ctx, client, procs, i%replicas, ds[i])
				if err != nil {
					errs <- fmt.Errorf("delivery %d: %w", i, err)
					return
				}
				codes[i] = code
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sent := time.Now()
	byCode := map[int]int{}
	for _, c := range codes {
		byCode[c]++
	}
	t.Logf("sent %d deliveries in %s: %v", len(ds), sent.Sub(start).Round(time.Millisecond), byCode)
	if byCode[http.StatusAccepted]+byCode[http.StatusOK] != len(ds) {
		t.Errorf("answers %v: want every delivery 202 (or 200 for one the killed replica stored before its answer was lost)", byCode)
	}

	st, err := postgres.Open(ctx, schema.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	drained := waitDrained(ctx, t, st)
	t.Logf("inbox drained %s after the last send", drained.Sub(sent).Round(time.Millisecond))

	done, err := st.ListDeliveries(ctx, store.DeliveryDone, 2*deliveries)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := st.ListDeliveries(ctx, store.DeliveryDead, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != deliveries || len(dead) != 0 {
		t.Fatalf("%d deliveries done and %d dead, want %d and 0 (dead: %+v)", len(done), len(dead), deliveries, dead)
	}
	// Deliveries claimed more than once are those the killed replica held:
	// its leases ran out and a survivor took them. Only their pull
	// requests may show a second PUT or comment: the victim may have died
	// between Bitbucket answering and the store recording it (the crash
	// window prflow documents).
	reclaimed := map[string]bool{}
	for _, d := range done {
		if d.Attempts > 1 {
			reclaimed[d.DeliveryID] = true
		}
	}
	// A replica holds at most 2×workers claims: one per worker and as many
	// claimed ahead (inbox.claimOne).
	if len(reclaimed) > 2*workers {
		t.Errorf("%d deliveries claimed more than once; the killed replica could hold at most %d", len(reclaimed), 2*workers)
	}

	reposted := 0
	for _, d := range ds {
		puts, comments := bb.PutCount(Repo, d.PR), len(bb.Comments(Repo, d.PR))
		limit := 1
		if reclaimed[d.UUID] {
			limit = 2
		}
		if puts < 1 || puts > limit || comments < 1 || comments > limit {
			t.Errorf("PR #%d (delivery %s, reclaimed %v): %d reviewer PUTs and %d comments, want 1 each (at most %d)",
				d.PR, d.UUID, reclaimed[d.UUID], puts, comments, limit)
		}
		reposted += puts - 1 + comments - 1
		revs := bb.Reviewers(Repo, d.PR)
		if len(revs) != 1 || (revs[0].Nickname != "amara" && revs[0].Nickname != "kofi") {
			t.Errorf("PR #%d reviewers %+v: want one payments technical lead", d.PR, revs)
		}
		pr, err := bb.PullRequest(Repo, d.PR)
		if err != nil {
			t.Fatal(err)
		}
		sts := bb.Statuses(Repo, pr.SourceCommit)
		if len(sts) != 2 || sts[rules.StatusReview].State != rules.StateInProgress || sts[rules.StatusTests].State != rules.StateSuccessful {
			t.Errorf("PR #%d statuses %+v: want review in progress and tests successful", d.PR, sts)
		}
	}
	statusPosts := bb.Calls()[statusPath]
	if statusPosts < 2*deliveries || statusPosts > 2*deliveries+2*len(reclaimed) {
		t.Errorf("%d status POSTs, want %d (+ at most 2 per reclaimed delivery: %d)", statusPosts, 2*deliveries, len(reclaimed))
	}
	t.Logf("upstream: %d calls in all, %v; %d deliveries reclaimed after the kill, %d PUT/comment re-posts, %d status re-posts",
		bb.TotalCalls(), bb.Calls(), len(reclaimed), reposted, statusPosts-2*deliveries)

	if !wired {
		return
	}
	var took time.Duration
	select {
	case took = <-takeover:
	case <-ctx.Done():
	}
	if took <= 0 {
		t.Fatal("no survivor ran a scheduled job after the leader was killed")
	}
	// One leader at a time: of the survivors, which were not leading
	// before the kill, exactly one has run jobs since.
	var ran []string
	for _, p := range others(procs, victim) {
		n, err := jobRuns(ctx, client, p)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			ran = append(ran, p.Name())
		}
	}
	if len(ran) != 1 {
		t.Errorf("survivors that ran scheduled jobs: %v, want exactly one new leader", ran)
	}
	t.Logf("scheduled jobs resumed on %v %s after the leader was killed (lease %s); whole test %s",
		ran, took.Round(time.Millisecond), lease, time.Since(start).Round(time.Millisecond))
}

func others(procs []*Process, not *Process) []*Process {
	var out []*Process
	for _, p := range procs {
		if p != not {
			out = append(out, p)
		}
	}
	return out
}

// postAny posts d to procs[first], or the next live replica when one
// refuses the connection.
func postAny(ctx context.Context, c *http.Client, procs []*Process, first int, d Delivery) (int, error) {
	var last error
	for k := range len(procs) {
		p := procs[(first+k)%len(procs)]
		if p.Killed() {
			continue
		}
		code, err := Post(ctx, c, p.URL()+"/webhooks/bitbucket", d)
		if err == nil {
			return code, nil
		}
		last = err
	}
	return 0, fmt.Errorf("no replica took it: %w", last)
}

func addrs(ps []*Process) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Addr())
	}
	return strings.Join(s, ", ")
}

// waitDrained waits until nothing is pending or processing, and returns
// when.
func waitDrained(ctx context.Context, t *testing.T, st store.Inbox) time.Time {
	t.Helper()
	for {
		s, err := st.InboxStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pending == 0 && s.Processing == 0 {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("inbox not drained in time: %+v", s)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// jobRuns is how many scheduled runs p made (any job, ok or error; runs
// skipped because it was not the leader are not counted).
func jobRuns(ctx context.Context, c *http.Client, p *Process) (float64, error) {
	s, err := Scrape(ctx, c, p.URL())
	if err != nil {
		return 0, err
	}
	all := s.Sum("rolekeeper_job_runs_total", nil)
	return all - s.Sum("rolekeeper_job_runs_total", map[string]string{"result": "skipped_not_leader"}), nil
}

// findLeader waits until exactly one replica runs scheduled jobs and
// returns its index.
func findLeader(ctx context.Context, t *testing.T, c *http.Client, procs []*Process) int {
	t.Helper()
	for {
		leaders := []int{}
		for i, p := range procs {
			n, err := jobRuns(ctx, c, p)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("replicas %v all ran scheduled jobs: want one leader", leaders)
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		select {
		case <-ctx.Done():
			t.Fatal("no replica ran a scheduled job: is the scheduler wired (rolekeeper_job_runs_total)?")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchTakeover polls the survivors until one has run a scheduled job and
// sends how long after killedAt that was (0 when ctx ends first). The
// survivors were not leading, so their count of runs starts at 0.
func watchTakeover(ctx context.Context, c *http.Client, survivors []*Process, killedAt time.Time, out chan<- time.Duration) {
	for {
		for _, p := range survivors {
			if n, err := jobRuns(ctx, c, p); err == nil && n > 0 {
				out <- time.Since(killedAt)
				return
			}
		}
		select {
		case <-ctx.Done():
			out <- 0
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// schedulerWired waits up to 5 s (five runs of the 1 s schedule) for a
// replica to export a rolekeeper_job_* metric: leader or not, each counts
// its runs once the scheduler runs.
func schedulerWired(ctx context.Context, t *testing.T, c *http.Client, procs []*Process) bool {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		for _, p := range procs {
			s, err := Scrape(ctx, c, p.URL())
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range s {
				if strings.HasPrefix(x.Name, "rolekeeper_job_") {
					return true
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}
