package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var now = time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{"delta seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second, true},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{"jira reset iso", map[string]string{"X-RateLimit-Reset": now.Add(2 * time.Minute).Format(time.RFC3339)}, 2 * time.Minute, true},
		{"jira reset minutes only", map[string]string{"X-RateLimit-Reset": "2026-11-03T10:05Z"}, 5 * time.Minute, true},
		{"reset unix seconds", map[string]string{"X-RateLimit-Reset": fmt.Sprint(now.Add(30 * time.Second).Unix())}, 30 * time.Second, true},
		{"retry-after wins", map[string]string{"Retry-After": "3", "X-RateLimit-Reset": now.Add(time.Hour).Format(time.RFC3339)}, 3 * time.Second, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"none", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, ok := RetryAfter(h, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// script answers requests with the given statuses in order, then 200.
type script struct {
	mu       sync.Mutex
	statuses []int
	headers  []map[string]string
	bodies   []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	i := len(s.bodies) - 1
	code := http.StatusOK
	if i < len(s.statuses) {
		code = s.statuses[i]
	}
	var hdr map[string]string
	if i < len(s.headers) {
		hdr = s.headers[i]
	}
	s.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"attempt":%d}`, i+1)
}

func TestTransportRetries(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		statuses  []int
		headers   []map[string]string
		retries   int
		wantCalls int
		wantCode  int
		wantWaits []time.Duration // with Rand fixed at 0.5, Min 100ms
	}{
		{"ok at once", "GET", nil, nil, 3, 1, 200, nil},
		{"5xx then ok", "GET", []int{502, 500}, nil, 3, 3, 200, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"gives up after retries", "GET", []int{500, 500, 500, 500, 500}, nil, 2, 3, 500, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
		{"429 honours retry-after", "GET", []int{429}, []map[string]string{{"Retry-After": "4"}}, 3, 2, 200, []time.Duration{4 * time.Second}},
		{"retry-after beyond max wait is returned", "GET", []int{429}, []map[string]string{{"Retry-After": "3600"}}, 3, 1, 429, nil},
		{"4xx not retried", "GET", []int{404}, nil, 3, 1, 404, nil},
		{"501 not retried", "GET", []int{501}, nil, 3, 1, 501, nil},
		{"post not retried on 500", "POST", []int{500}, nil, 3, 1, 500, nil},
		{"post retried on 429", "POST", []int{429}, nil, 3, 2, 200, []time.Duration{50 * time.Millisecond}},
		{"post retried on 503", "POST", []int{503}, nil, 3, 2, 200, []time.Duration{50 * time.Millisecond}},
		{"no retries configured", "GET", []int{500}, nil, -1, 1, 500, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{statuses: tt.statuses, headers: tt.headers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			var waits []time.Duration
			reg := prometheus.NewRegistry()
			tr := &Transport{
				Service: "jira", Metrics: NewMetrics(reg), MaxRetries: tt.retries,
				MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
				Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
				Rand:  func() float64 { return 0.5 },
				Now:   func() time.Time { return now },
			}
			req, _ := http.NewRequest(tt.method, srv.URL+"/rest/api/2/issue", strings.NewReader(`{"x":1}`))
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if len(s.bodies) != tt.wantCalls {
				t.Errorf("calls %d, want %d", len(s.bodies), tt.wantCalls)
			}
			for i, b := range s.bodies {
				if b != `{"x":1}` {
					t.Errorf("attempt %d body %q: not replayed", i+1, b)
				}
			}
			if fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tt.wantWaits)
			}
			total := 0.0
			for _, m := range gather(t, reg, "rolekeeper_upstream_requests_total") {
				total += m.GetCounter().GetValue()
			}
			if int(total) != tt.wantCalls {
				t.Errorf("metric counted %v attempts, want %d", total, tt.wantCalls)
			}
		})
	}
}

func TestTransportBackoffCapped(t *testing.T) {
	tr := &Transport{MinBackoff: time.Second, MaxBackoff: 5 * time.Second, Rand: func() float64 { return 0.999999 }}
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		got := tr.backoff(attempt)
		if got > want || got < want*99/100 {
			t.Errorf("attempt %d: backoff %v, want just under %v", attempt, got, want)
		}
	}
}

func TestTransportNetworkError(t *testing.T) {
	calls := 0
	fail := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return nil, errors.New("connection reset")
	})
	tr := &Transport{Base: fail, MaxRetries: 2, Sleep: func(context.Context, time.Duration) error { return nil }}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", nil)
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("want error")
	}
	if calls != 3 {
		t.Errorf("calls %d, want 3", calls)
	}

	// A cancelled context stops at once, even while waiting.
	calls = 0
	ctx, cancel := context.WithCancel(context.Background())
	tr.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return Sleep(ctx, time.Hour) }
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:1/x", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Errorf("calls %d, want 1", calls)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		code                 int
		err                  error
		temporary, permanent bool
	}{
		{202, nil, true, false}, // "not ready yet" (Bitbucket indexing)
		{400, nil, false, true},
		{401, nil, false, true},
		{404, nil, false, true},
		{409, nil, true, false},
		{429, nil, true, false},
		{500, nil, true, false},
		{501, nil, false, false},
		{503, nil, true, false},
		{0, errors.New("dial tcp: refused"), true, false},
		{0, context.Canceled, false, false},
	}
	for _, tt := range tests {
		e := &Error{Service: "jira", StatusCode: tt.code, Err: tt.err}
		if e.Temporary() != tt.temporary || e.Permanent() != tt.permanent {
			t.Errorf("%d %v: temporary %v permanent %v; want %v %v", tt.code, tt.err, e.Temporary(), e.Permanent(), tt.temporary, tt.permanent)
		}
	}
}

func TestErrorFromResponse(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://x/rest/api/2/issue", nil)
	resp := &http.Response{
		StatusCode: 429, Request: req,
		Header: http.Header{"Retry-After": []string{"12"}},
		Body:   io.NopCloser(strings.NewReader(`{"errorMessages":["slow down"]}`)),
	}
	e := ErrorFromResponse("jira", "", resp, now, nil)
	if e.RetryAfter() != 12*time.Second || !e.Temporary() || e.Endpoint != "/rest/api/2/issue" || e.Method != "POST" {
		t.Errorf("got %+v", e)
	}
	if !strings.Contains(e.Error(), "slow down") || !strings.Contains(e.Error(), "status 429") {
		t.Errorf("message %q", e.Error())
	}
	var target interface{ Temporary() bool }
	if !errors.As(fmt.Errorf("wrapped: %w", e), &target) {
		t.Error("errors.As through wrapping failed")
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.Observe("jira", "GET /x", 200, time.Millisecond)
	b.Observe("bitbucket", "GET /y", 0, time.Millisecond)
	series := gather(t, reg, "rolekeeper_upstream_requests_total")
	if len(series) != 2 {
		t.Errorf("series %d, want 2", len(series))
	}
	var labels []string
	for _, m := range series {
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
	}
	if got := strings.Join(labels, ","); !strings.Contains(got, "code=error") || !strings.Contains(got, "service=bitbucket") {
		t.Errorf("labels %s", got)
	}
	var m *Metrics
	m.Observe("jira", "x", 200, 0) // nil is a no-op
}

func gather(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}
