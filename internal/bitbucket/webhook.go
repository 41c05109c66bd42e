package bitbucket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// ErrBadEventKey is returned for an X-Event-Key that is not "namespace:event".
var ErrBadEventKey = errors.New("bitbucket: malformed event key")

// ErrBodyMismatch is returned for a body that is not what its event key
// says: X-Event-Key is not covered by the signature, so a signed comment
// body re-sent as "pullrequest:approved" must not pass as an approval.
var ErrBodyMismatch = errors.New("body does not match its event key")

// envelope is the top level of every Bitbucket Cloud webhook body.
type envelope struct {
	Actor          *wireAccount     `json:"actor"`
	Repository     *wireRepo        `json:"repository"`
	PullRequest    *wirePullRequest `json:"pullrequest"`
	Approval       *wireApproval    `json:"approval"`
	ChangesRequest *wireApproval    `json:"changes_request"`
	Comment        *wireComment     `json:"comment"`
	Push           *wirePush        `json:"push"`
	CommitStatus   *wireStatus      `json:"commit_status"`
}

// EventKind maps a Bitbucket event key to the neutral kind. ok is false for
// a key that is not of the form "namespace:event"; a well-formed key that
// rolekeeper does not act on is EventOther.
func EventKind(key string) (kind model.EventKind, ok bool) {
	if !wellFormedKey(key) {
		return "", false
	}
	switch key {
	case "pullrequest:created":
		return model.EventPRCreated, true
	case "pullrequest:updated":
		return model.EventPRUpdated, true
	case "pullrequest:push": // a push to the source branch (2025 captures)
		return model.EventPRPushed, true
	case "pullrequest:approved":
		return model.EventPRApproved, true
	case "pullrequest:unapproved":
		return model.EventPRUnapproved, true
	case "pullrequest:changes_request_created":
		return model.EventPRChangesRequested, true
	case "pullrequest:changes_request_removed":
		return model.EventPRChangesRequestRemoved, true
	case "pullrequest:fulfilled":
		return model.EventPRMerged, true
	case "pullrequest:rejected":
		return model.EventPRDeclined, true
	case "pullrequest:comment_created", "pullrequest:comment_updated":
		return model.EventPRComment, true
	case "repo:push":
		return model.EventRepoPush, true
	case "repo:commit_status_created", "repo:commit_status_updated":
		return model.EventCommitStatus, true
	}
	return model.EventOther, true
}

func wellFormedKey(key string) bool {
	ns, ev, ok := strings.Cut(key, ":")
	return ok && word(ns) && word(ev)
}

func word(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// ParseWebhook decodes a Bitbucket Cloud webhook body, delivered with the
// given X-Event-Key, into a neutral event. It fails on a malformed key, a
// body that is not a JSON object, and a body that lacks what its key needs
// (pull request events need pullrequest.id and repository.full_name); the
// intake answers those with 400. It never reads uuids strictly and keeps
// unknown pull request states as received.
func ParseWebhook(eventKey string, body []byte) (*model.Event, error) {
	kind, ok := EventKind(eventKey)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadEventKey, eventKey)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("bitbucket: %s: body is not a JSON object", eventKey)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("bitbucket: %s: decode body: %w", eventKey, err)
	}
	repo, err := route(eventKey, kind, &env)
	if err != nil {
		return nil, err
	}
	ev := &model.Event{Source: model.SourceBitbucket, Kind: kind, Key: eventKey, Actor: env.Actor.actor(), Repository: repo}

	_, name, _ := strings.Cut(eventKey, ":")
	switch {
	case prEvent(eventKey, kind):
		fillPullRequest(ev, &env, name)
	case kind == model.EventRepoPush:
		ev.Push, ev.At = env.Push.push()
	case kind == model.EventCommitStatus:
		st := env.CommitStatus.status()
		ev.CommitStatus = &st
		ev.At = st.UpdatedAt
	default:
		// Understood, nothing to do; keep what is cheaply known.
		if env.PullRequest != nil && env.PullRequest.ID > 0 && ev.Repository != "" {
			ev.PullRequest = env.PullRequest.pullRequest(ev.Repository)
		}
	}
	return ev, nil
}

// prEvent reports the keys whose body must carry a pull request.
func prEvent(eventKey string, kind model.EventKind) bool {
	return strings.HasPrefix(eventKey, "pullrequest:") && kind != model.EventOther || isPRComment(eventKey)
}

// route runs every check ParseWebhook makes of a decoded body beyond its
// JSON types: what the event key needs is there (pull request id,
// repository, push, commit status key) and the body is the kind of event
// the key says (matchBody). It returns the event's repository. CheckWebhook
// runs the same checks on the routing fields alone.
func route(eventKey string, kind model.EventKind, env *envelope) (string, error) {
	var repo string
	if env.Repository != nil {
		repo = strings.ToLower(env.Repository.FullName)
	}
	_, name, _ := strings.Cut(eventKey, ":")
	switch {
	case prEvent(eventKey, kind):
		if repo == "" || !strings.Contains(repo, "/") {
			return "", fmt.Errorf("bitbucket: %s: no repository.full_name", eventKey)
		}
		if env.PullRequest == nil || env.PullRequest.ID <= 0 {
			return "", fmt.Errorf("bitbucket: %s: no pullrequest.id", eventKey)
		}
		if err := matchBody(env, name); err != nil {
			return "", fmt.Errorf("bitbucket: %s: %w", eventKey, err)
		}
		if (name == "comment_created" || name == "comment_updated") && (env.Comment == nil || env.Comment.ID == "") {
			return "", fmt.Errorf("bitbucket: %s: no comment.id", eventKey)
		}
	case kind == model.EventRepoPush:
		if repo == "" {
			return "", fmt.Errorf("bitbucket: %s: no repository.full_name", eventKey)
		}
		if env.Push == nil {
			return "", fmt.Errorf("bitbucket: %s: %w: no push", eventKey, ErrBodyMismatch)
		}
	case kind == model.EventCommitStatus:
		cs := env.CommitStatus
		if cs == nil || cs.Key == "" {
			return "", fmt.Errorf("bitbucket: %s: no commit_status.key", eventKey)
		}
		if repo == "" && cs.Repository != nil {
			repo = strings.ToLower(cs.Repository.FullName)
		}
		if repo == "" {
			return "", fmt.Errorf("bitbucket: %s: no repository.full_name", eventKey)
		}
	}
	return repo, nil
}

// isPRComment reports the comment events that are not acted on (deleted,
// resolved, reopened) but still carry a pull request worth validating.
func isPRComment(key string) bool {
	return strings.HasPrefix(key, "pullrequest:comment_")
}

// fillPullRequest fills a pull request event whose body passed route.
func fillPullRequest(ev *model.Event, env *envelope, name string) {
	pr := env.PullRequest.pullRequest(ev.Repository)
	// The event's repository is the destination: a fork's source differs.
	pr.Repository = ev.Repository
	ev.PullRequest = pr
	ev.At = pr.UpdatedAt

	switch name {
	case "approved", "unapproved":
		ev.Approval = approval(env.Approval, ev.Actor, ev.At, model.ReviewApproved)
		if name == "unapproved" {
			ev.Approval.State = model.ReviewNone
		}
		ev.At = ev.Approval.At
	case "changes_request_created", "changes_request_removed":
		src := env.ChangesRequest
		if src == nil {
			src = env.Approval
		}
		ev.Approval = approval(src, ev.Actor, ev.At, model.ReviewChangesRequested)
		if name == "changes_request_removed" {
			ev.Approval.State = model.ReviewNone
		}
		ev.At = ev.Approval.At
	case "comment_created", "comment_updated":
		c := env.Comment.comment()
		ev.Comment = &c
		if !env.Comment.UpdatedOn.IsZero() {
			ev.At = env.Comment.UpdatedOn.Time
		} else if !c.CreatedAt.IsZero() {
			ev.At = c.CreatedAt
		}
	}
}

// matchBody checks that a pull request body carries what its event key
// says it is about, and nothing another kind of event carries: an
// approval event has approval{user, date} by the actor and no comment; a
// change request event has changes_request{user, date} by the actor; a
// comment event has a comment and no approval; no other event has a
// comment. (Real rejected bodies may carry an approval: that is allowed.)
func matchBody(env *envelope, name string) error {
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBodyMismatch, fmt.Sprintf(format, args...))
	}
	comment := strings.HasPrefix(name, "comment_")
	switch {
	case name == "approved" || name == "unapproved":
		if err := byActor(env.Approval, env.Actor, "approval"); err != nil {
			return mismatch("%v", err)
		}
		if env.ChangesRequest != nil {
			return mismatch("an approval event carries a changes_request")
		}
	case name == "changes_request_created" || name == "changes_request_removed":
		if err := byActor(env.ChangesRequest, env.Actor, "changes_request"); err != nil {
			return mismatch("%v", err)
		}
		if env.Approval != nil {
			return mismatch("a change request event carries an approval")
		}
	case comment:
		if env.Comment == nil {
			return mismatch("no comment")
		}
		if env.Approval != nil || env.ChangesRequest != nil {
			return mismatch("a comment event carries an approval or a change request")
		}
	}
	if !comment && env.Comment != nil {
		return mismatch("a %s event carries a comment", name)
	}
	return nil
}

// byActor checks an approval{user, date} object: present, dated, and given
// by the event's actor.
func byActor(w *wireApproval, actor *wireAccount, what string) error {
	switch {
	case w == nil:
		return fmt.Errorf("no %s", what)
	case w.User.empty():
		return fmt.Errorf("no %s.user", what)
	case w.Date.IsZero():
		return fmt.Errorf("no %s.date", what)
	case actor.empty():
		return errors.New("no actor")
	}
	u := w.User
	if u.AccountID != "" && actor.AccountID != "" && u.AccountID != actor.AccountID ||
		u.UUID != "" && actor.UUID != "" && !strings.EqualFold(u.UUID, actor.UUID) {
		return fmt.Errorf("%s.user is not the actor", what)
	}
	return nil
}

// approval builds the event's approval from approval{date,user}, falling
// back to the actor and the pull request's update time.
func approval(w *wireApproval, actor model.Actor, at time.Time, st model.ReviewState) *model.Approval {
	who := actor
	if w != nil && !w.User.empty() {
		who = w.User.actor()
	}
	if w != nil && !w.Date.IsZero() {
		at = w.Date.Time
	}
	return &model.Approval{AccountID: who.AccountID, Name: who.DisplayName, State: st, At: at}
}
