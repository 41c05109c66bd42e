package upstream

import (
	"context"
	"errors"
	"io"
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
// Retry-After and X-RateLimit-Reset, keeps to the upstream's rate limit, and
// records every attempt in Metrics.
//
// Requests whose method is not idempotent (POST, PATCH) are retried in
// place only on 429, which means the request was not processed: a POST
// answered 5xx or cut off may have created something, so it goes back to
// the caller, which looks before it creates again.
//
// Rate limits: X-RateLimit-Limit/Remaining/Reset are read from every
// answer; below SlowBelow of the limit, requests are spaced over what is
// left of the window, and with none left they are not sent. A 429 that
// names no wait (no Retry-After, no X-RateLimit-Reset in the future) is
// not retried within seconds: its window may be a rolling hour.
//
// A wait the transport will not spend in place (longer than MaxWait, past
// the request's deadline, or a 429 that named none) is handed back: the
// answer is returned with Retry-After set to the wait (a request not sent
// gets a 429 of the transport's own, marked X-Rolekeeper-Throttled), so the
// *Error the caller builds carries it and the inbox waits that long. A body
// is replayed through GetBody; a request without GetBody is sent once.
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
	// RateLimitWait is how long a 429 that names no wait, or a spent
	// budget whose reset is unknown, makes the caller wait; 0: 1 minute.
	RateLimitWait time.Duration
	// SlowBelow is the share of X-RateLimit-Limit under which requests are
	// spaced out; 0: 0.1.
	SlowBelow float64

	budget budget
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
	waited := false // this request just waited out a 429: it goes first
	for attempt := 0; ; attempt++ {
		if wait, spent, guessed := t.budget.take(t.now(), t.slowBelow(), waited); wait > 0 {
			if guessed || wait > t.maxWait() || !t.fits(req, wait) {
				t.Metrics.throttle(t.Service, "handed_back")
				return throttled(req, wait), nil
			}
			action := "paced"
			if spent {
				action = "waited"
			}
			t.Metrics.throttle(t.Service, action)
			if err := t.sleep(req.Context(), wait); err != nil {
				return nil, err
			}
		}
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
			if code != http.StatusTooManyRequests {
				t.budget.answered()
			}
			if rem, ok := t.budget.observe(resp.Header, t.now(), t.rateLimitWait()); ok {
				t.Metrics.remaining(t.Service, rem)
			}
		}
		t.Metrics.Observe(t.Service, endpoint, code, t.now().Sub(start))

		if err == nil && resp.StatusCode == http.StatusTooManyRequests {
			d, ok := RetryAfter(resp.Header, t.now())
			if !ok {
				// Nothing says when the window opens again: not seconds.
				d = t.rateLimitWait()
			}
			t.budget.block(t.now().Add(d), !ok)
			if !ok || d > t.maxWait() || attempt >= retries || !t.fits(req, d) {
				t.Metrics.throttle(t.Service, "handed_back")
				setRetryAfter(resp, d)
				return resp, nil
			}
			drain(resp)
			if serr := t.sleep(req.Context(), d); serr != nil {
				return nil, serr
			}
			waited = true
			continue
		}
		waited = false
		if attempt >= retries || !t.shouldRetry(req, resp, err, idempotent) {
			return resp, err
		}
		wait := t.backoff(attempt)
		if resp != nil {
			if d, ok := RetryAfter(resp.Header, t.now()); ok {
				if d > t.maxWait() || !t.fits(req, d) {
					setRetryAfter(resp, d)
					return resp, nil
				}
				wait = d
			}
		}
		if !t.fits(req, wait) {
			return resp, err
		}
		if resp != nil {
			drain(resp)
		}
		if serr := t.sleep(req.Context(), wait); serr != nil {
			return nil, serr
		}
	}
}

// fits reports whether waiting d still leaves the request time to be sent
// before its deadline (http.Client.Timeout sets one): a wait that would
// end in a timeout loses what the upstream said, so it is handed back.
func (t *Transport) fits(req *http.Request, d time.Duration) bool {
	deadline, ok := req.Context().Deadline()
	return !ok || time.Until(deadline) > d+time.Second
}

// throttled is the 429 the transport answers for a request it did not
// send because the upstream's budget is spent.
func throttled(req *http.Request, wait time.Duration) *http.Response {
	body := `{"message":"rolekeeper: upstream rate limit spent, request not sent"}`
	resp := &http.Response{
		Status: "429 Too Many Requests", StatusCode: http.StatusTooManyRequests,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, ThrottledHeader: {"1"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
	setRetryAfter(resp, wait)
	return resp
}

// ThrottledHeader marks a 429 the transport answered itself (the request
// was not sent).
const ThrottledHeader = "X-Rolekeeper-Throttled"

// setRetryAfter makes the answer say the wait the transport decided, in
// whole seconds rounded up, so the caller's error carries it.
func setRetryAfter(resp *http.Response, d time.Duration) {
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	resp.Header.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10))
}

func (t *Transport) rateLimitWait() time.Duration {
	if t.RateLimitWait > 0 {
		return t.RateLimitWait
	}
	return time.Minute
}

func (t *Transport) slowBelow() float64 {
	if t.SlowBelow > 0 {
		return t.SlowBelow
	}
	return 0.1
}

func (t *Transport) shouldRetry(req *http.Request, resp *http.Response, err error, idempotent bool) bool {
	if err != nil {
		if req.Context().Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		return idempotent
	}
	if resp.StatusCode == http.StatusTooManyRequests {
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
// or Unix seconds). ok is false when neither header says; a reset already
// past says nothing (it is no reason to retry at once).
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return nonNegative(at.Sub(now)), true
		}
	}
	if at, ok := resetTime(h); ok && at.After(now) {
		return at.Sub(now), true
	}
	return 0, false
}

// resetTime reads X-RateLimit-Reset: an ISO 8601 time (Jira) or Unix
// seconds.
func resetTime(h http.Header) (time.Time, bool) {
	v := strings.TrimSpace(h.Get("X-RateLimit-Reset"))
	if v == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.000Z0700"} {
		if at, err := time.Parse(layout, v); err == nil {
			return at, true
		}
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s > 1_000_000_000 {
		return time.Unix(s, 0), true
	}
	return time.Time{}, false
}

func nonNegative(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}
