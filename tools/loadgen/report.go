package main

import (
	"fmt"
	"io"
	"time"
)

// The reference targets' names in the tables.
const (
	bareName  = "bare (HMAC, 202)"
	floorName = "durable floor (HMAC, store, 202)"
)

// report is everything one invocation measured.
type report struct {
	opts         *options
	load0, load1 string
	bodyBytes    int

	bare, floor *reference // nil unless measured
	target      result
	wrk         *wrkResult

	// spawned daemon only
	warm202    int
	drained    time.Duration // from the end of the load to an empty inbox; -1: not drained
	stored     int           // deliveries the intake stored (accepted)
	duplicates int
	refused    int
	processed  int
	left       int // still in the inbox when the wait ended
	// processingTime runs from the start of the measured load to the
	// drain (or the end of the wait).
	processingTime time.Duration
	dead           int
	peakRSS        int64
	// cpu0 is the daemon's CPU time at the start of the load, cpu what it
	// used from then to the end of the wait.
	cpu0, cpu time.Duration
	upstream  *upstream
}

// answered is how many deliveries the daemon answered 202 (wrk counts
// 2xx: 202, or 200 for a duplicate, which its unique ids never are).
func (r *report) answered() int {
	n := r.warm202 + r.target.Codes[202]
	if r.wrk != nil {
		n += r.wrk.Requests - r.wrk.StatusErrors
	}
	return n
}

func (r *report) print(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "machine: %s\n", machine())
	fmt.Fprintf(w, "load average before/after: %s / %s\n", r.load0, r.load1)
	fmt.Fprintf(w, "load: %d deliveries (+%d warm-up) per target, %d keep-alive connections, bodies about %d pull requests (%d bytes)\n",
		o.n, o.warmup, o.conns, o.prs, r.bodyBytes)
	if o.rate > 0 {
		fmt.Fprintf(w, "paced: %.0f requests per second (open loop), latency from each request's due time\n", o.rate)
	}
	if r.bare != nil || r.floor != nil {
		fmt.Fprintf(w, "references and daemon measured in %d alternating rounds\n", max(1, min(o.rounds, o.n)))
	}
	if r.floor != nil {
		fmt.Fprintf(w, "durable floor: the bare handler, and each delivery %s, before its 202\n", floors[o.floor].does)
	}
	if o.spawn {
		what := "pull requests of team payments: the workers run the pull-request workflow against the in-process fake Bitbucket while the load runs"
		if o.unowned {
			what = "a repository no team owns: the workers parse each delivery and skip it"
		}
		fmt.Fprintf(w, "daemon: rolekeeper serve, store %s, inbox.workers %d, log level %s; deliveries about %s\n",
			o.store, o.workers, o.logLevel, what)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | answered | req/s | p50 | p90 | p99 | max | answers |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|")
	row := func(x result) {
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %s |\n", x.Name, len(x.Latency), x.RPS(),
			ms(x.Percentile(.50)), ms(x.Percentile(.90)), ms(x.Percentile(.99)), ms(x.Percentile(1)), x.CodeString())
	}
	var rows []result
	for _, ref := range []*reference{r.bare, r.floor} {
		if ref != nil {
			rows = append(rows, ref.res)
		}
	}
	rows = append(rows, r.target)
	for _, x := range rows {
		row(x)
	}
	if r.bare != nil && r.bare.res.RPS() > 0 {
		bare := r.bare.res
		fmt.Fprintln(w)
		for _, x := range rows[1:] {
			fmt.Fprintf(w, "%s, ratio to bare: req/s %.2f×, p99 %.2f×\n", x.Name, x.RPS()/bare.RPS(),
				float64(x.Percentile(.99))/float64(bare.Percentile(.99)))
		}
	}
	if r.wrk != nil {
		fmt.Fprintf(w, "\nwrk (%d threads, %d connections, %s, one signed body, unique X-Request-UUID per request):\n\n", o.wrkThreads, o.conns, o.wrkDur)
		fmt.Fprintln(w, "| target | requests | req/s | p50 | p90 | p99 | max | non-2xx | socket errors |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		wrow := func(name string, x wrkResult) {
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %d | %d |\n", name, x.Requests, x.RPS(),
				ms(x.P50), ms(x.P90), ms(x.P99), ms(x.Max), x.StatusErrors, x.SocketErrors)
		}
		type named struct {
			name string
			w    *wrkResult
		}
		var wrows []named
		for _, ref := range []*reference{r.bare, r.floor} {
			if ref != nil && ref.wrk != nil {
				wrows = append(wrows, named{ref.res.Name, ref.wrk})
			}
		}
		wrows = append(wrows, named{r.target.Name, r.wrk})
		for _, x := range wrows {
			wrow(x.name, *x.w)
		}
		if r.bare != nil && r.bare.wrk != nil && r.bare.wrk.RPS() > 0 {
			bare := r.bare.wrk
			fmt.Fprintln(w)
			for _, x := range wrows[1:] {
				fmt.Fprintf(w, "%s, wrk ratio to bare: req/s %.2f×, p99 %.2f×\n", x.name, x.w.RPS()/bare.RPS(), float64(x.w.P99)/float64(bare.P99))
			}
		}
	}
	if !o.spawn {
		return
	}
	answered := r.answered()
	fmt.Fprintln(w)
	check := "OK"
	if r.stored < answered {
		check = "MISSING DELIVERIES"
	}
	fmt.Fprintf(w, "stored: %d deliveries accepted by the intake for %d answered 202 (%s; wrk stops with requests in flight, so stored may exceed answered by up to -c); %d duplicates, %d refused\n",
		r.stored, answered, check, r.duplicates, r.refused)
	if r.drained < 0 {
		fmt.Fprintf(w, "inbox: NOT drained %s after the last request: %d left", o.drain, r.left)
	} else {
		fmt.Fprintf(w, "inbox: drained %s after the last request", r.drained.Round(100*time.Millisecond))
	}
	fmt.Fprintf(w, "; %d deliveries processed (%.0f/s from the start of the load), %d dead-lettered\n",
		r.processed, float64(r.processed)/r.processingTime.Seconds(), r.dead)
	if r.cpu > 0 && r.stored > 0 {
		// On a shared machine the rate varies with the neighbours; the
		// CPU a delivery costs the daemon much less.
		fmt.Fprintf(w, "daemon CPU from the start of the load to the end of the wait: %.1f s, %.0f µs per delivery stored (its intake, and its processing when drained)\n",
			r.cpu.Seconds(), float64(r.cpu.Microseconds())/float64(r.stored))
	}
	fmt.Fprintf(w, "peak RSS (VmHWM) of the daemon: %.1f MiB\n", float64(r.peakRSS)/(1<<20))
	if u := r.upstream; u != nil {
		fmt.Fprintln(w, "\nupstream calls (HTTP requests the fake Bitbucket received):")
		fmt.Fprintf(w, "- new pull request (pullrequest:created): %d — %s\n", u.NewPR, u.NewPRCalls)
		fmt.Fprintf(w, "- the same event again under a new delivery id: %d %s\n", u.SameEvent, u.SameEventCalls)
		fmt.Fprintf(w, "- redelivery (same X-Request-UUID): answered 200, %d calls, not processed again\n", u.Redelivery)
		fmt.Fprintf(w, "- approval by the requested reviewer (pullrequest:approved): %d — %s\n", u.Approval, u.ApprovalCalls)
	}
}
