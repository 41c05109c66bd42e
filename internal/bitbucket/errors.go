package bitbucket

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/upstream"
)

// Every failed request comes back as an *upstream.Error (Service
// "bitbucket"): callers ask upstream.IsNotFound, IsPermanent and RetryDelay,
// the inbox its Temporary and Permanent. Bitbucket's 202 "still indexing"
// answer is Temporary.

// apiError builds the error of one failed request.
func apiError(status int, method, endpoint, message string, retry time.Duration, err error) *upstream.Error {
	return &upstream.Error{Service: service, Method: method, Endpoint: endpoint, StatusCode: status, Message: message, Retry: retry, Err: err}
}

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
