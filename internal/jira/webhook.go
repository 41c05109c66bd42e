// Package jira turns Jira Cloud webhook bodies into model events and talks
// to the Jira Cloud REST API (v2) over go-jira, with its own requests where
// go-jira lacks an endpoint or mishandles it.
package jira

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// Webhook event names (the body's webhookEvent).
const (
	WebhookIssueCreated    = "jira:issue_created"
	WebhookIssueUpdated    = "jira:issue_updated"
	WebhookIssueDeleted    = "jira:issue_deleted"
	WebhookCommentCreated  = "comment_created"
	WebhookCommentUpdated  = "comment_updated"
	WebhookCommentDeleted  = "comment_deleted"
	WebhookVersionReleased = "jira:version_released"
	WebhookSprintStarted   = "sprint_started"
	WebhookSprintUpdated   = "sprint_updated"
)

// ErrMalformed is wrapped by ParseWebhook's errors: the body is not a Jira
// webhook it can read. Such a delivery will never parse: dead-letter it.
var ErrMalformed = errors.New("malformed jira webhook")

type webhookBody struct {
	Timestamp json.RawMessage `json:"timestamp"` // ms; proxies send it as a string

	WebhookEvent       string    `json:"webhookEvent"`
	IssueEventTypeName string    `json:"issue_event_type_name"`
	User               *rawUser  `json:"user"`
	Issue              *rawIssue `json:"issue"`
	Changelog          *struct {
		Items []rawChangeItem `json:"items"`
	} `json:"changelog"`
	Comment *struct {
		ID           string   `json:"id"`
		Body         any      `json:"body"` // a string in v2 payloads
		Author       *rawUser `json:"author"`
		UpdateAuthor *rawUser `json:"updateAuthor"`
		Created      string   `json:"created"`
	} `json:"comment"`
	Version *rawVersion `json:"version"`
	Sprint  *struct {
		ID    json.Number `json:"id"`
		Name  string      `json:"name"`
		State string      `json:"state"`
	} `json:"sprint"`
}

// rawChangeItem tolerates null and numbers where strings are usual.
type rawChangeItem struct {
	Field      flexString `json:"field"`
	FieldID    flexString `json:"fieldId"`
	From       flexString `json:"from"`
	FromString flexString `json:"fromString"`
	To         flexString `json:"to"`
	ToString   flexString `json:"toString"`
}

func sprintID(wb webhookBody) json.Number {
	if wb.Sprint == nil {
		return ""
	}
	return wb.Sprint.ID
}

// eventTime reads the timestamp as Jira sends it (a number of
// milliseconds) or as proxies forward it (the same number in a string, or
// an RFC 3339 time). Anything else, or none, is the zero time: the
// timestamp is only a hint, never a reason to refuse a delivery.
func eventTime(raw json.RawMessage) time.Time {
	v := strings.TrimSpace(string(raw))
	if s, err := strconv.Unquote(v); err == nil {
		v = strings.TrimSpace(s)
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 1e15 {
		return time.UnixMilli(int64(f)).UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		*f = flexString(b) // a number or bool as written
	}
	return nil
}

// ParseWebhook decodes a Jira Cloud webhook body into an event. Issue
// events carry the issue as the payload had it (custom fields such as story
// points are not read: their ids are site-specific) and the changelog
// items; handlers re-read the issue, since deliveries may be late,
// duplicated or out of order. Users with only the deprecated name/key (2018-2019
// payloads) become Actors with Nickname set and no AccountID. Unknown
// events parse as EventOther. DeliveryID is not in the body: the intake
// sets it from X-Atlassian-Webhook-Identifier.
func ParseWebhook(body []byte) (*model.Event, error) {
	var wb webhookBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&wb); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// One JSON value and nothing after it, as the intake requires
	// (CheckWebhook): a Decoder alone stops after the first value.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	if wb.WebhookEvent == "" {
		return nil, fmt.Errorf("%w: no webhookEvent", ErrMalformed)
	}
	ev := &model.Event{Source: model.SourceJira, Key: wb.WebhookEvent, Kind: model.EventOther}
	ev.At = eventTime(wb.Timestamp)
	if a := wb.User.actor(); a != nil {
		ev.Actor = *a
	}

	switch wb.WebhookEvent {
	case WebhookIssueCreated:
		ev.Kind = model.EventIssueCreated
	case WebhookIssueUpdated:
		ev.Kind = model.EventIssueUpdated
	case WebhookIssueDeleted:
		ev.Kind = model.EventIssueDeleted
	case WebhookCommentCreated, WebhookCommentUpdated:
		ev.Kind = model.EventIssueComment
	case WebhookVersionReleased:
		if wb.Version == nil || wb.Version.ID == "" {
			return nil, fmt.Errorf("%w: %s without version id", ErrMalformed, wb.WebhookEvent)
		}
		v := wb.Version.model("")
		v.Released = true
		ev.Kind, ev.Version = model.EventVersionReleased, &v
		return ev, nil
	case WebhookSprintStarted, WebhookSprintUpdated:
		id, err := strconv.Atoi(string(sprintID(wb)))
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%w: %s without sprint id", ErrMalformed, wb.WebhookEvent)
		}
		ev.Kind = model.EventSprintChanged
		ev.Sprint = &model.Sprint{ID: id, Name: wb.Sprint.Name, State: strings.ToLower(wb.Sprint.State)}
		return ev, nil
	}

	if wb.Issue != nil {
		is, err := decodeIssue(wb.Issue, fieldIDs{}, "")
		if err != nil {
			return nil, fmt.Errorf("%w: issue: %w", ErrMalformed, err)
		}
		ev.Issue = &is
	}
	if ev.Kind != model.EventOther && (ev.Issue == nil || ev.Issue.Key == "") {
		return nil, fmt.Errorf("%w: %s without issue key", ErrMalformed, wb.WebhookEvent)
	}
	if wb.Changelog != nil {
		for _, it := range wb.Changelog.Items {
			ev.Changelog = append(ev.Changelog, model.ChangeItem{
				Field: string(it.Field), FieldID: string(it.FieldID),
				From: string(it.From), FromString: string(it.FromString),
				To: string(it.To), ToString: string(it.ToString),
			})
		}
	}
	if c := wb.Comment; c != nil {
		cm := &model.Comment{ID: c.ID, CreatedAt: parseTime(c.Created)}
		if s, ok := c.Body.(string); ok {
			cm.Body = s
		}
		author := c.Author
		if wb.WebhookEvent == WebhookCommentUpdated && c.UpdateAuthor != nil {
			author = c.UpdateAuthor
		}
		if a := author.actor(); a != nil {
			cm.Author = *a
			// Comment events carry no user: the comment's author acted.
			if ev.Actor == (model.Actor{}) {
				ev.Actor = *a
			}
		}
		ev.Comment = cm
	}
	return ev, nil
}
