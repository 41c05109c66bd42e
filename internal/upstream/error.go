package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Error is a failed upstream request: an answer with a non-2xx status, or
// no answer at all (StatusCode 0, Err set). The inbox retries it when
// Temporary and dead-letters it when Permanent.
type Error struct {
	Service    string        // "jira", "bitbucket"
	Method     string        // HTTP method
	Endpoint   string        // normalised path, as in the metrics
	StatusCode int           // 0 when no answer
	Message    string        // readable detail from the body (field errors, …)
	Retry      time.Duration // from Retry-After / X-RateLimit-Reset; 0 when unknown
	Err        error         // the transport error when there was no answer
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", e.Service, e.Method, e.Endpoint)
	if e.StatusCode > 0 {
		fmt.Fprintf(&b, ": status %d", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: 429, 5xx,
// 408/409/425, network errors (not a cancelled context) and 202, an answer
// that says "not ready yet" (Bitbucket's commit/{hash}/pullrequests while
// it indexes).
func (e *Error) Temporary() bool {
	if e.StatusCode == 0 {
		return e.Err != nil && !errors.Is(e.Err, context.Canceled)
	}
	return e.StatusCode == http.StatusAccepted || RetryableStatus(e.StatusCode)
}

// RetryAfter is how long the upstream asked to wait (0 when it did not say).
func (e *Error) RetryAfter() time.Duration { return e.Retry }

// Permanent reports whether the request can never succeed as sent: a 4xx
// other than 408, 409, 425 and 429.
func (e *Error) Permanent() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && !RetryableStatus(e.StatusCode)
}

// NotFound reports whether the upstream answered 404.
func (e *Error) NotFound() bool { return e.StatusCode == http.StatusNotFound }

// RetryableStatus reports whether an answer with this status may succeed
// when sent again later.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500 && code < 600
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// ErrorFromResponse builds an *Error from a non-2xx answer, reading (at most
// 64 KiB of) the body and closing it. message turns the body into readable
// detail; nil keeps the trimmed body text.
func ErrorFromResponse(service, endpoint string, resp *http.Response, now time.Time, message func([]byte) string) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	e := &Error{Service: service, StatusCode: resp.StatusCode, Endpoint: endpoint}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		if endpoint == "" {
			e.Endpoint = resp.Request.URL.Path
		}
	}
	if d, ok := RetryAfter(resp.Header, now); ok {
		e.Retry = d
	}
	if message != nil {
		e.Message = message(body)
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "…"
		}
	}
	return e
}

// IsNotFound reports whether err, anywhere in its chain, is an upstream
// answer 404. Every caller asks this, never a type of its own.
func IsNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}

// IsPermanent reports whether err, anywhere in its chain, can never succeed
// as sent.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// RetryDelay is how long the upstream behind err asked to wait (0 when it
// did not say, or err is no upstream error).
func RetryDelay(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}
