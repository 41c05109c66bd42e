package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// limited answers 200 with the rate-limit headers it is given.
func limited(t *testing.T, hdr func(n int) map[string]string) (*httptest.Server, *int) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		for k, v := range hdr(n) {
			w.Header().Set(k, v)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func get(t *testing.T, tr *Transport, url string, ctx context.Context) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// Below a tenth of the limit requests are spaced over the rest of the
// window; with none left they are not sent and the caller is told how
// long to wait.
func TestTransportKeepsToTheRateLimit(t *testing.T) {
	clock := now
	reset := now.Add(60 * time.Second)
	srv, calls := limited(t, func(n int) map[string]string {
		return map[string]string{"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": fmt.Sprint(max(0, 6-n)),
			"X-RateLimit-Reset": fmt.Sprint(reset.Unix())}
	})
	var waits []time.Duration
	reg := prometheus.NewRegistry()
	tr := &Transport{Service: "bitbucket", Metrics: NewMetrics(reg), MaxWait: time.Hour,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
		Now:   func() time.Time { return clock }}
	ctx := context.Background()
	get(t, tr, srv.URL, ctx) // remaining 5 of 1000: slow down
	get(t, tr, srv.URL, ctx) // goes at once; the next one 60 s / (5+1) later
	get(t, tr, srv.URL, ctx)
	if len(waits) != 1 || waits[0] != 10*time.Second {
		t.Fatalf("waits %v, want [10s]", waits)
	}
	for range 3 {
		get(t, tr, srv.URL, ctx)
	}
	if *calls != 6 {
		t.Fatalf("%d calls", *calls)
	}
	// None left (the server said 0): with a short MaxWait the request is
	// not sent and the caller gets the wait.
	tr.MaxWait = 5 * time.Second
	clock = now.Add(20 * time.Second)
	resp := get(t, tr, srv.URL, ctx)
	if resp.StatusCode != 429 || resp.Header.Get(ThrottledHeader) != "1" || resp.Header.Get("Retry-After") != "40" {
		t.Errorf("answer %d %v, want a throttled 429 with Retry-After 40", resp.StatusCode, resp.Header)
	}
	if e := ErrorFromResponse("bitbucket", "", resp, clock, nil); e.RetryAfter() != 40*time.Second || !e.Temporary() {
		t.Errorf("error %v retry %v", e, e.RetryAfter())
	}
	if *calls != 6 {
		t.Errorf("%d calls: a request was sent with no budget left", *calls)
	}
	// After the reset the budget is unknown again: requests go.
	clock = reset.Add(time.Second)
	if resp := get(t, tr, srv.URL, ctx); resp.StatusCode != 200 || *calls != 7 {
		t.Errorf("after the reset: %d, %d calls", resp.StatusCode, *calls)
	}
	if v := gather(t, reg, "rolekeeper_upstream_throttled_total"); len(v) == 0 {
		t.Error("throttling not counted")
	}
}

// Bitbucket's 429 carries no Retry-After and its window is a rolling hour:
// the request is not retried within seconds, the caller (the inbox) waits
// a minute, and the requests after it are not sent in the meantime.
func TestTransport429WithoutWaitIsHandedBack(t *testing.T) {
	s := &script{statuses: []int{429, 429, 429, 429}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	slept := 0
	tr := &Transport{Service: "bitbucket", Sleep: func(context.Context, time.Duration) error { slept++; return nil },
		Now: func() time.Time { return now }}
	resp := get(t, tr, srv.URL, context.Background())
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" || slept != 0 || len(s.bodies) != 1 {
		t.Fatalf("status %d Retry-After %q, slept %d, calls %d", resp.StatusCode, resp.Header.Get("Retry-After"), slept, len(s.bodies))
	}
	resp = get(t, tr, srv.URL, context.Background())
	if resp.Header.Get(ThrottledHeader) != "1" || len(s.bodies) != 1 {
		t.Errorf("second request sent within the minute (calls %d)", len(s.bodies))
	}
}

// A wait that would run past the request's deadline (Jira: a Retry-After
// longer than the client's timeout) is handed back instead of ending in a
// timeout that loses it.
func TestTransportHandsBackWaitsPastTheDeadline(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		hdr    map[string]string
		want   string
	}{
		{"429 Retry-After past the deadline", 429, map[string]string{"Retry-After": "30"}, "30"},
		{"503 Retry-After past the deadline", 503, map[string]string{"Retry-After": "30"}, "30"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{statuses: []int{tt.status}, headers: []map[string]string{tt.hdr}}
			srv := httptest.NewServer(s)
			defer srv.Close()
			slept := 0
			tr := &Transport{Service: "jira", MaxWait: time.Minute, Sleep: func(context.Context, time.Duration) error { slept++; return nil }}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp := get(t, tr, srv.URL, ctx)
			if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.want || slept != 0 || len(s.bodies) != 1 {
				t.Errorf("status %d Retry-After %q slept %d calls %d", resp.StatusCode, resp.Header.Get("Retry-After"), slept, len(s.bodies))
			}
		})
	}
}

// Requests sent together near the limit are spaced one after another,
// not all released after the same wait.
func TestBudgetSpacesRequestsInFlight(t *testing.T) {
	var b budget
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "100")
	h.Set("X-RateLimit-Remaining", "2")
	h.Set("X-RateLimit-Reset", fmt.Sprint(now.Add(30*time.Second).Unix()))
	if _, ok := b.observe(h, now, time.Minute); !ok {
		t.Fatal("headers not read")
	}
	var waits []time.Duration
	for range 3 {
		w, _, _ := b.take(now, 0.1, false)
		waits = append(waits, w)
	}
	if fmt.Sprint(waits) != fmt.Sprint([]time.Duration{0, 10 * time.Second, 30 * time.Second}) {
		t.Errorf("waits %v, want [0s 10s 30s]", waits)
	}
	if _, spent, guessed := b.take(now, 0.1, false); !spent || guessed {
		t.Errorf("spent %v guessed %v after the budget ran out", spent, guessed)
	}
}
