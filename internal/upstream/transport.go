package upstream

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EndpointFunc names a request for metrics and errors, without ids (for
// example "GET /rest/api/2/issue/{key}").
type EndpointFunc func(*http.Request) string

// Transport is an http.RoundTripper that retries 429 and 5xx answers and
// network errors with full-jitter exponential backoff, honouring
// Retry-After and X-RateLimit-Reset, and records every attempt in Metrics.
//
// Requests whose method is not idempotent (POST, PATCH) are retried only on
// 429 and 503, which mean the request was not processed, so a sub-task is
// never created twice by a retry. A body is replayed through GetBody; a
// request without GetBody is sent once.
//
// When all retries are spent, or the upstream asks to wait longer than
// MaxWait, the last answer is returned as is: the caller turns it into an
// *Error whose RetryAfter the inbox honours.
type Transport struct {
	Base       http.RoundTripper // nil: http.DefaultTransport
	Service    string            // metrics label: "jira", "bitbucket"
	Metrics    *Metrics          // nil: none
	Endpoint   EndpointFunc      // nil: method and URL path
	MaxRetries int               // retries after the first attempt; <0: none, 0: 3
	MinBackoff time.Duration     // first backoff ceiling; 0: 500ms
	MaxBackoff time.Duration     // backoff ceiling; 0: 30s
	MaxWait    time.Duration     // longest Retry-After waited in place; 0: 60s
	// Idempotent says whether a request may be retried after a 5xx or a
	// network error; nil: by method (GET, HEAD, OPTIONS, PUT, DELETE).
	Idempotent func(*http.Request) bool
	Sleep      func(ctx context.Context, d time.Duration) error // nil: timer honouring ctx
	Rand       func() float64                                   // [0,1); nil: math/rand/v2
	Now        func() time.Time                                 // nil: time.Now
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	endpoint := t.endpoint(req)
	retries := t.MaxRetries
	switch {
	case retries == 0:
		retries = 3
	case retries < 0:
		retries = 0
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		retries = 0
	}
	idempotent := t.idempotent(req)
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		start := t.now()
		resp, err := base.RoundTrip(r)
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		t.Metrics.Observe(t.Service, endpoint, code, t.now().Sub(start))

		if attempt >= retries || !t.shouldRetry(req, resp, err, idempotent) {
			return resp, err
		}
		wait := t.backoff(attempt)
		if resp != nil {
			if d, ok := RetryAfter(resp.Header, t.now()); ok {
				if d > t.maxWait() {
					return resp, nil
				}
				wait = d
			}
			drain(resp)
		}
		if serr := t.sleep(req.Context(), wait); serr != nil {
			return nil, serr
		}
	}
}

func (t *Transport) shouldRetry(req *http.Request, resp *http.Response, err error, idempotent bool) bool {
	if err != nil {
		if req.Context().Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		return idempotent
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	}
	return idempotent && resp.StatusCode >= 500 && RetryableStatus(resp.StatusCode)
}

// backoff is full jitter: a uniform wait in [0, min(Max, Min·2^attempt)).
func (t *Transport) backoff(attempt int) time.Duration {
	lo, hi := t.MinBackoff, t.MaxBackoff
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	ceil := float64(lo) * math.Pow(2, float64(attempt))
	if ceil > float64(hi) {
		ceil = float64(hi)
	}
	r := rand.Float64
	if t.Rand != nil {
		r = t.Rand
	}
	return time.Duration(r() * ceil)
}

func (t *Transport) endpoint(req *http.Request) string {
	if t.Endpoint != nil {
		return t.Endpoint(req)
	}
	return req.Method + " " + req.URL.Path
}

func (t *Transport) idempotent(req *http.Request) bool {
	if t.Idempotent != nil {
		return t.Idempotent(req)
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (t *Transport) maxWait() time.Duration {
	if t.MaxWait > 0 {
		return t.MaxWait
	}
	return time.Minute
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits for d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// drain discards a little of a body so the connection can be reused.
func drain(resp *http.Response) {
	buf := make([]byte, 4096)
	for range 16 {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	_ = resp.Body.Close()
}

// RetryAfter reads how long to wait from Retry-After (delta seconds or an
// HTTP date) or else X-RateLimit-Reset (an ISO 8601 time as Jira sends it,
// or Unix seconds). ok is false when neither header says.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return nonNegative(at.Sub(now)), true
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.000Z0700"} {
			if at, err := time.Parse(layout, v); err == nil {
				return nonNegative(at.Sub(now)), true
			}
		}
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s > 1_000_000_000 {
			return nonNegative(time.Unix(s, 0).Sub(now)), true
		}
	}
	return 0, false
}

func nonNegative(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}
