package jira

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/reloadly/rolekeeper/internal/jsonscan"
)

// ErrNoWebhookEvent is CheckWebhook's error for a body (valid JSON) with no
// webhookEvent, or null or "": the intake answers it as a missing event
// header. It wraps ErrMalformed.
var ErrNoWebhookEvent = fmt.Errorf("%w: no webhookEvent", ErrMalformed)

// CheckWebhook is what the webhook intake needs of a Jira body before it
// answers, in one pass over it (jsonscan.ValidEach) instead of decoding it
// whole twice: it returns the body's webhookEvent (even when it refuses the
// body, once it has read it) and an error when the intake must refuse the
// body. It refuses a body that is not valid JSON (trailing data included),
// as the intake always has and as ParseWebhook does.
//
// It decodes webhookEvent, the JSON type of every top-level member
// ParseWebhook reads (timestamp may be anything: issue 13 item 7), and of
// these only: issue.id, issue.key and issue.fields (whose type
// decodeIssue checks), version.id and sprint.id, and checks the values
// ParseWebhook requires of each event (an issue key, a version id, a
// positive sprint id). A wrong JSON type below those (in issue.fields,
// user, changelog, comment, or version and sprint beyond their ids) passes
// here; ParseWebhook refuses it when the worker parses the stored delivery,
// which dead-letters it. Anything else the fast path does not accept (a
// body it would refuse, or one written unusually: escaped, repeated or
// case-folded member names, a member of an unexpected type) is answered
// by decoding the body as the intake did before: webhookEvent alone, then
// ParseWebhook, so such bodies get exactly that answer.
func CheckWebhook(body []byte) (eventKey string, err error) {
	if key, ok := checkPlain(body); ok {
		return key, nil
	}
	return checkWhole(body)
}

// checkWhole is the intake as it was: webhookEvent decoded on its own (so
// json.Unmarshal refuses anything but one JSON value), then the whole parse.
func checkWhole(body []byte) (string, error) {
	var head struct {
		WebhookEvent string `json:"webhookEvent"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if head.WebhookEvent == "" {
		return "", ErrNoWebhookEvent
	}
	_, err := ParseWebhook(body)
	return head.WebhookEvent, err
}

// The top-level members whose JSON type ParseWebhook's decoder checks, in
// the order of topNames. timestamp is not one: a json.RawMessage takes any
// value.
const (
	tEvent = iota
	tTypeName
	tUser
	tIssue
	tChangelog
	tComment
	tVersion
	tSprint
)

var topNames = [...]string{"webhookEvent", "issue_event_type_name", "user", "issue", "changelog", "comment", "version", "sprint"}

// checkPlain answers ok with the event key when the body is sure to be
// accepted by ParseWebhook but for a wrong type deep in it (CheckWebhook);
// ok false leaves the answer to checkWhole.
func checkPlain(body []byte) (string, bool) {
	var top [len(topNames)][]byte
	m := jsonscan.Members{Names: topNames[:], Out: top[:]}
	if valid, isObject := jsonscan.ValidEach(body, m.Add); !valid || !isObject || !m.Plain() {
		return "", false
	}
	for i, v := range top {
		want := "{n" // the pointers to structs: an object or null
		if i == tEvent || i == tTypeName {
			want = `"n`
		}
		if !is(v, want) {
			return "", false
		}
	}
	key, ok := jsonscan.String(top[tEvent])
	if !ok || key == "" {
		return "", false
	}

	var issueKey, versionID string
	if v := top[tIssue]; v != nil && v[0] == '{' {
		var sub [3][]byte // id, key, fields
		if !jsonscan.Pick(v, []string{"id", "key", "fields"}, sub[:]) || !is(sub[0], `"n`) || !is(sub[1], `"n`) || !is(sub[2], "{n") {
			return "", false
		}
		if issueKey, ok = jsonscan.String(sub[1]); !ok {
			return "", false
		}
	}
	if v := top[tVersion]; v != nil && v[0] == '{' {
		var sub [1][]byte
		if !jsonscan.Pick(v, []string{"id"}, sub[:]) || !is(sub[0], `"n`) {
			return "", false
		}
		if versionID, ok = jsonscan.String(sub[0]); !ok {
			return "", false
		}
	}
	sprintOK := false // a positive id, as ParseWebhook requires of sprint events
	if v := top[tSprint]; v != nil && v[0] == '{' {
		var sub [1][]byte
		if !jsonscan.Pick(v, []string{"id"}, sub[:]) || !is(sub[0], `"0n`) {
			return "", false
		}
		id := sub[0]
		if id != nil && id[0] == '"' {
			id = id[1 : len(id)-1]
		}
		sprintOK = id != nil && positiveInt(id)
		// json.Number takes a string only if it is a number: which one is
		// left to checkWhole.
		if !sprintOK && sub[0] != nil && sub[0][0] == '"' {
			return "", false
		}
	}

	switch key {
	case WebhookVersionReleased:
		ok = versionID != ""
	case WebhookSprintStarted, WebhookSprintUpdated:
		ok = sprintOK
	case WebhookIssueCreated, WebhookIssueUpdated, WebhookIssueDeleted, WebhookCommentCreated, WebhookCommentUpdated:
		ok = issueKey != ""
	}
	return key, ok
}

// is reports whether the raw value v is absent or of one of kinds: '"' a
// string, '{' an object, '0' a number, 'n' null.
func is(v []byte, kinds string) bool {
	if v == nil {
		return true
	}
	c := v[0]
	if c == '-' || '0' <= c && c <= '9' {
		c = '0'
	}
	return strings.IndexByte(kinds, c) >= 0
}

// positiveInt reports whether strconv.Atoi reads s, as json.Number holds
// it, as a number above 0: digits without a leading zero, in range.
func positiveInt(s []byte) bool {
	if len(s) == 0 || s[0] < '1' || s[0] > '9' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	_, err := strconv.Atoi(string(s))
	return err == nil
}
