package bitbucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// ErrNotFound matches (with errors.Is) an *Error for a 404 answer.
var ErrNotFound = errors.New("bitbucket: not found")

// Error is a failed Bitbucket request: a non-2xx answer, or no answer at all
// (Status 0). The inbox retries it when Temporary and dead-letters it when
// Permanent.
type Error struct {
	Status   int    // HTTP status; 0 when there was no answer
	Method   string // HTTP method
	Endpoint string // normalised endpoint, as in the metrics
	Message  string // Bitbucket's error message, with field errors

	retryAfter time.Duration
	err        error // the transport error when Status is 0
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bitbucket: %s", e.Endpoint)
	if e.Status > 0 {
		fmt.Fprintf(&b, ": %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.err != nil {
		b.WriteString(": ")
		b.WriteString(e.err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Temporary reports whether the same request may succeed later: 429, 5xx,
// network errors (not a cancelled context) and 202, Bitbucket's "still
// indexing" answer of commit/{hash}/pullrequests.
func (e *Error) Temporary() bool {
	if e.Status == 0 {
		return e.err != nil && !errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded)
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Status == http.StatusAccepted
}

// Permanent reports whether the request can never succeed as sent: any 4xx
// but 408 and 429 (400, 401, 403, 404, 409, 422, …).
func (e *Error) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// RetryAfter is how long Bitbucket asked to wait (0 when it did not say).
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// errorMessage reads Bitbucket's {"type":"error","error":{"message",
// "detail","fields"}} body, falling back to the trimmed text.
func errorMessage(status int, body []byte) string {
	var v struct {
		Error struct {
			Message string              `json:"message"`
			Detail  string              `json:"detail"`
			Fields  map[string][]string `json:"fields"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && v.Error.Message != "" {
		parts := []string{v.Error.Message}
		if v.Error.Detail != "" && v.Error.Detail != v.Error.Message {
			parts = append(parts, v.Error.Detail)
		}
		keys := make([]string, 0, len(v.Error.Fields))
		for k := range v.Error.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+": "+strings.Join(v.Error.Fields[k], "; "))
		}
		return strings.Join(parts, ": ")
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" || strings.HasPrefix(msg, "<") { // an HTML error page says nothing useful
		msg = http.StatusText(status)
	}
	return msg
}

// NotFound reports whether Bitbucket answered 404 (see upstream.IsNotFound).
func (e *Error) NotFound() bool { return e.Status == http.StatusNotFound }
