package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reloadly/rolekeeper/internal/replicatest"
)

// result is what one load run measured.
type result struct {
	Name     string
	Sent     int           // requests answered or failed
	Elapsed  time.Duration // first request to last answer
	Latency  []time.Duration
	Codes    map[int]int
	Failures map[string]int // transport errors by kind
}

// RPS is requests answered per second.
func (r result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latency)) / r.Elapsed.Seconds()
}

// Percentile is the q-quantile (0 < q <= 1) of the answered requests'
// latency by the nearest-rank method; 0 when none answered.
func (r result) Percentile(q float64) time.Duration {
	return percentile(r.Latency, q)
}

// percentile expects sorted latencies.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// CodeString lists status codes and failures, "202:19998 200:2 reset:1".
func (r result) CodeString() string {
	var parts []string
	codes := make([]int, 0, len(r.Codes))
	for c := range r.Codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d:%d", c, r.Codes[c]))
	}
	kinds := make([]string, 0, len(r.Failures))
	for k := range r.Failures {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s:%d", k, r.Failures[k]))
	}
	return strings.Join(parts, " ")
}

// merge adds b's requests to a (runs measured in rounds).
func merge(a, b result) result {
	out := result{Name: a.Name, Sent: a.Sent + b.Sent, Elapsed: a.Elapsed + b.Elapsed,
		Codes: map[int]int{}, Failures: map[string]int{}}
	out.Latency = append(append(make([]time.Duration, 0, len(a.Latency)+len(b.Latency)), a.Latency...), b.Latency...)
	slices.Sort(out.Latency)
	for _, m := range []map[int]int{a.Codes, b.Codes} {
		for k, v := range m {
			out.Codes[k] += v
		}
	}
	for _, m := range []map[string]int{a.Failures, b.Failures} {
		for k, v := range m {
			out.Failures[k] += v
		}
	}
	return out
}

// newClient keeps conns keep-alive connections to one host.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only: never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// runLoad sends ds to url from conns workers, each delivery once, until all
// are sent or maxDur passes. With rate > 0 delivery i is due at start +
// i/rate (an open loop, at most conns at once) and its latency counts from
// that time: an answer that comes late delays the sends after it, and that
// wait is latency too (measured from the send, a closed loop would hide it).
func runLoad(ctx context.Context, name, url string, ds []replicatest.Delivery, conns int, maxDur time.Duration, rate float64) result {
	ctx, cancel := context.WithTimeout(ctx, maxDur)
	defer cancel()
	client := newClient(conns)
	defer client.CloseIdleConnections()

	lat := make([]time.Duration, len(ds))
	ok := make([]bool, len(ds))
	var next atomic.Int64
	var mu sync.Mutex
	codes, failures := map[int]int{}, map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			myCodes, myFail := map[int]int{}, map[string]int{}
			defer func() {
				mu.Lock()
				for k, v := range myCodes {
					codes[k] += v
				}
				for k, v := range myFail {
					failures[k] += v
				}
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(ds) {
					return
				}
				req, err := ds[i].Request(ctx, url)
				if err != nil {
					myFail["request"]++
					continue
				}
				t0 := time.Now()
				if rate > 0 {
					t0 = start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if !sleepUntil(ctx, t0) {
						return
					}
				}
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						myFail[failureKind(err)]++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i], ok[i] = time.Since(t0), true
				myCodes[resp.StatusCode]++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	answered := make([]time.Duration, 0, len(ds))
	for i, d := range lat {
		if ok[i] {
			answered = append(answered, d)
		}
	}
	slices.Sort(answered)
	sent := len(answered)
	for _, v := range failures {
		sent += v
	}
	return result{Name: name, Sent: sent, Elapsed: elapsed, Latency: answered, Codes: codes, Failures: failures}
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func failureKind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "connection reset"):
		return "reset"
	case strings.Contains(s, "Client.Timeout"), strings.Contains(s, "deadline exceeded"):
		return "timeout"
	case strings.Contains(s, "EOF"):
		return "eof"
	}
	return "error"
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}
