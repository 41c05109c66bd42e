package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// runFlood floods the spawned daemon and prints what it answered, what it
// stored and its peak RSS.
func (o *options) runFlood(ctx context.Context, d *daemon, target, load0 string, stdout io.Writer) error {
	rss0, err := d.proc.PeakRSS()
	if err != nil {
		return err
	}
	res := flood(ctx, target, o.flood, o.conns, o.floodBytes, o.maxDur)
	s, err := d.scrape(ctx)
	if err != nil {
		return err
	}
	rss, err := d.proc.PeakRSS()
	if err != nil {
		return err
	}
	stored := int(s.Sum("rolekeeper_webhooks_total", accepted))
	fmt.Fprintf(stdout, "machine: %s\nload average before/after: %s / %s\n", machine(), load0, loadAvg())
	fmt.Fprintf(stdout, "flood: %d unsigned deliveries of %d bytes over %d connections in %s\n", o.flood, o.floodBytes, o.conns, res.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "answers: %s; p50 %s, p99 %s\n", res.CodeString(), ms(percentile(sorted(res.Latency), .5)), ms(percentile(sorted(res.Latency), .99)))
	fmt.Fprintf(stdout, "stored: %d deliveries (none may be)\n", stored)
	fmt.Fprintf(stdout, "peak RSS (VmHWM) of the daemon: %.1f MiB before the flood, %.1f MiB after\n", float64(rss0)/(1<<20), float64(rss)/(1<<20))
	if stored > 0 {
		return fmt.Errorf("%d unsigned deliveries stored", stored)
	}
	return nil
}

func sorted(d []time.Duration) []time.Duration {
	out := slices.Clone(d)
	slices.Sort(out)
	return out
}

// flood sends n unsigned deliveries of size bytes each over conns
// connections at once: what an unauthenticated sender can make the daemon
// hold. Every one must be refused (401, or 503 past
// webhooks.max_inflight_bytes); none stored.
func flood(ctx context.Context, url string, n, conns int, size int64, maxDur time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, maxDur)
	defer cancel()
	body := bytes.Repeat([]byte("x"), int(size))
	client := newClient(conns)
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	res := result{Name: fmt.Sprintf("unsigned %d MiB bodies", size>>20), Codes: map[int]int{}, Failures: map[string]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("X-Event-Key", "pullrequest:created")
				req.Header.Set("X-Request-UUID", fmt.Sprintf("{flood-%d}", next.Load()))
				req.Header.Set("X-Hub-Signature", "sha256=0000000000000000000000000000000000000000000000000000000000000000")
				t0 := time.Now()
				resp, err := client.Do(req)
				mu.Lock()
				if err != nil {
					res.Failures[failureKind(err)]++
				} else {
					res.Codes[resp.StatusCode]++
					res.Latency = append(res.Latency, time.Since(t0))
				}
				mu.Unlock()
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Sent = len(res.Latency)
	for _, v := range res.Failures {
		res.Sent += v
	}
	return res
}
