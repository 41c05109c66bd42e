package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/replicatest"
)

var (
	bitbucketSrc = map[string]string{"source": "bitbucket"}
	accepted     = map[string]string{"source": "bitbucket", "outcome": "accepted"}
	duplicate    = map[string]string{"source": "bitbucket", "outcome": "duplicate"}
	doneResult   = map[string]string{"source": "bitbucket", "result": "done"}
)

// scrape reads the daemon's /metrics.
func (d *daemon) scrape(ctx context.Context) (replicatest.Samples, error) {
	return replicatest.Scrape(ctx, d.client, d.proc.URL())
}

// settle waits (at most --drain) for the inbox to drain and reads what
// the intake stored and the workers processed.
func (d *daemon) settle(ctx context.Context, o *options, rep *report, loadStart time.Time, stderr io.Writer) error {
	end := time.Now()
	deadline := end.Add(o.drain)
	for {
		s, err := d.scrape(ctx)
		if err != nil {
			return err
		}
		left := s.Sum("rolekeeper_inbox_depth", map[string]string{"state": "pending"}) +
			s.Sum("rolekeeper_inbox_depth", map[string]string{"state": "processing"})
		drained := left == 0
		if drained || time.Now().After(deadline) || ctx.Err() != nil {
			rep.drained = time.Since(end)
			rep.processingTime = time.Since(loadStart)
			if !drained {
				rep.drained = -1
				fmt.Fprintf(stderr, "loadgen: inbox not drained after %s: %.0f deliveries left\n", o.drain, left)
			}
			rep.left = int(left)
			rep.cpu = cpuTime(d.proc.PID()) - rep.cpu0
			rep.stored = int(s.Sum("rolekeeper_webhooks_total", accepted))
			rep.duplicates = int(s.Sum("rolekeeper_webhooks_total", duplicate))
			rep.processed = int(s.Sum("rolekeeper_inbox_processed_total", doneResult))
			rep.dead = int(s.Sum("rolekeeper_inbox_depth", map[string]string{"state": "dead"}))
			rep.refused = int(s.Sum("rolekeeper_webhooks_total", bitbucketSrc)) - rep.stored - rep.duplicates
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// upstream is what single events cost upstream, as the fake counts
// requests (redirects and pages included).
type upstream struct {
	NewPR, SameEvent, Redelivery, Approval    int
	NewPRCalls, SameEventCalls, ApprovalCalls string // endpoints called
}

// measureUpstream sends, one at a time on the quiet daemon: a new pull
// request's created event; the same event under a new delivery id (as
// Bitbucket sends when the event fires again); the very same delivery
// again (a redelivery: same X-Request-UUID); then an approval by the
// reviewer rolekeeper asked. Each is counted after the daemon processed it.
func measureUpstream(ctx context.Context, bb *bitbuckettest.Server, d *daemon, secret string) (upstream, error) {
	var u upstream
	processed := func() (float64, error) {
		s, err := d.scrape(ctx)
		if err != nil {
			return 0, err
		}
		return s.Sum("rolekeeper_inbox_processed_total", doneResult), nil
	}
	// send posts del, expects code, waits until the daemon has processed
	// one more delivery (or, for a redelivery, that it processed none in
	// 2 s: the workers poll every second), and returns the calls made.
	send := func(del replicatest.Delivery, code int) (int, string, error) {
		base, err := processed()
		if err != nil {
			return 0, "", err
		}
		before, calls0 := bb.TotalCalls(), bb.Calls()
		got, err := replicatest.Post(ctx, d.client, d.proc.URL()+"/webhooks/bitbucket", del)
		if err != nil {
			return 0, "", err
		}
		if got != code {
			return 0, "", fmt.Errorf("%s %s: answered %d, want %d", del.EventKey, del.UUID, got, code)
		}
		want := base + 1
		if code != http.StatusAccepted {
			want = base
			time.Sleep(2 * time.Second)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			n, err := processed()
			if err != nil {
				return 0, "", err
			}
			if n > want {
				return 0, "", fmt.Errorf("%s %s: processed %v deliveries, want %v", del.EventKey, del.UUID, n-base, want-base)
			}
			if n == want {
				break
			}
			if time.Now().After(deadline) {
				return 0, "", fmt.Errorf("%s %s: not processed in 30 s", del.EventKey, del.UUID)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return bb.TotalCalls() - before, callDiff(calls0, bb.Calls()), nil
	}

	id := replicatest.OpenPR(bb, 1_000_000)
	created := replicatest.Event(bb, secret, "pullrequest:created", id)
	var err error
	if u.NewPR, u.NewPRCalls, err = send(created, http.StatusAccepted); err != nil {
		return u, err
	}
	again := created
	again.UUID = replicatest.NewUUID()
	if u.SameEvent, u.SameEventCalls, err = send(again, http.StatusAccepted); err != nil {
		return u, err
	}
	if u.Redelivery, _, err = send(again, http.StatusOK); err != nil {
		return u, err
	}
	revs := bb.Reviewers(replicatest.Repo, id)
	if len(revs) != 1 {
		return u, fmt.Errorf("new PR #%d has reviewers %+v, want one", id, revs)
	}
	if err := bb.Approve(replicatest.Repo, id, revs[0]); err != nil {
		return u, err
	}
	body := bb.WebhookBody("pullrequest:approved", replicatest.Repo, id, revs[0])
	approval := replicatest.Delivery{EventKey: "pullrequest:approved", UUID: replicatest.NewUUID(), Body: body,
		Signature: bitbuckettest.Sign(secret, body), PR: id}
	if u.Approval, u.ApprovalCalls, err = send(approval, http.StatusAccepted); err != nil {
		return u, err
	}
	return u, nil
}

// callDiff lists the endpoints called between two counts.
func callDiff(before, after map[string]int) string {
	var out []string
	for k, v := range after {
		if n := v - before[k]; n > 0 {
			out = append(out, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// cpuTime is the CPU time (user and system) pid has used so far, from
// /proc/<pid>/stat; 0 when it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (state is field 3; utime 14, stime 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go runs on.
const clockTicks = 100
