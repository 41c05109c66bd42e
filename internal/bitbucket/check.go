package bitbucket

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/reloadly/rolekeeper/internal/jsonscan"
)

// CheckWebhook is what the intake needs of ParseWebhook before it answers,
// at a fraction of its cost: the event key well formed, the body valid
// JSON, and everything ParseWebhook checks of the routing fields (route):
// repository, pull request id, push, commit status key, and that the body
// is the kind of event its key says. It returns the event's repository.
//
// It decodes only those fields (the actor, approval, change request,
// comment and commit status objects, repository.full_name and
// pullrequest.id), so a wrong JSON type deeper in pullrequest or push
// (ParseWebhook would refuse "title": 5) passes here and fails when the
// worker parses the stored delivery. A body written in a way the fast path
// does not read (escaped or repeated member names, names matching only
// case-insensitively, a routing member that is neither an object nor null)
// is handed to ParseWebhook whole, so such bodies get its answer exactly.
func CheckWebhook(eventKey string, body []byte) (repo string, err error) {
	kind, ok := EventKind(eventKey)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrBadEventKey, eventKey)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return "", fmt.Errorf("bitbucket: %s: body is not a JSON object", eventKey)
	}
	env, ok := routingEnvelope(body)
	if !ok {
		return parseRepo(eventKey, body) // for invalid JSON, the decoder's own message
	}
	return route(eventKey, kind, env)
}

func parseRepo(eventKey string, body []byte) (string, error) {
	ev, err := ParseWebhook(eventKey, body)
	if err != nil {
		return "", err
	}
	return ev.Repository, nil
}

// The envelope's members, in the order of members below.
const (
	mActor = iota
	mRepository
	mPullRequest
	mApproval
	mChangesRequest
	mComment
	mPush
	mCommitStatus
)

var members = [...]string{"actor", "repository", "pullrequest", "approval", "changes_request", "comment", "push", "commit_status"}

// routingEnvelope decodes the routing fields of a body into an envelope as
// json.Unmarshal would fill it; pullrequest holds only its id and push is
// empty. ok is false when the body is not valid JSON, or not written
// plainly enough to be sure of that (see CheckWebhook). One pass checks the
// body and splits it into members (jsonscan.ValidEach).
func routingEnvelope(body []byte) (*envelope, bool) {
	var raw [len(members)][]byte
	top := jsonscan.Members{Names: members[:], Out: raw[:]}
	if valid, isObject := jsonscan.ValidEach(body, top.Add); !valid || !plainTypes(&top, isObject) {
		return nil, false
	}
	env := &envelope{}
	ok := true
	for i, v := range raw {
		if v == nil || v[0] == 'n' { // absent or null: a nil pointer
			continue
		}
		var err error
		switch i {
		case mActor:
			env.Actor = new(wireAccount)
			err = decodeAccount(v, env.Actor)
		case mRepository:
			env.Repository = new(wireRepo)
			var sub [2][]byte
			if !plainMembers(v, []string{"full_name", "uuid"}, sub[:]) {
				return nil, false
			}
			if env.Repository.FullName, ok = jsonscan.String(sub[0]); !ok {
				return nil, false
			}
			if _, ok = jsonscan.String(sub[1]); !ok {
				return nil, false
			}
		case mPullRequest:
			env.PullRequest = new(wirePullRequest)
			var sub [1][]byte
			if !plainMembers(v, []string{"id"}, sub[:]) {
				return nil, false
			}
			if sub[0] != nil {
				err = env.PullRequest.ID.UnmarshalJSON(sub[0])
			}
		case mApproval:
			env.Approval = new(wireApproval)
			err = decodeApproval(v, env.Approval)
		case mChangesRequest:
			env.ChangesRequest = new(wireApproval)
			err = decodeApproval(v, env.ChangesRequest)
		case mComment:
			env.Comment = new(wireComment)
			err = json.Unmarshal(v, env.Comment)
		case mPush:
			env.Push = new(wirePush)
		case mCommitStatus:
			env.CommitStatus = new(wireStatus)
			err = json.Unmarshal(v, env.CommitStatus)
		}
		if err != nil {
			return nil, false
		}
	}
	return env, true
}

var accountNames = [...]string{"type", "uuid", "account_id", "display_name", "nickname", "username"}

// decodeAccount decodes the object v into a as json.Unmarshal does: by
// plainMembers when v is written plainly and its fields are strings or
// null, else by json.Unmarshal itself (which may then refuse it). It is
// the actor of every pull request event, so the saving counts.
func decodeAccount(v []byte, a *wireAccount) error {
	var raw [len(accountNames)][]byte
	if plainMembers(v, accountNames[:], raw[:]) {
		fields := [...]*string{&a.Type, &a.UUID, &a.AccountID, &a.DisplayName, &a.Nickname, &a.Username}
		ok := true
		for i, r := range raw {
			if *fields[i], ok = jsonscan.String(r); !ok {
				break
			}
		}
		if ok {
			return nil
		}
		*a = wireAccount{}
	}
	return json.Unmarshal(v, a)
}

// decodeApproval decodes the object v into w as json.Unmarshal does, as
// decodeAccount does. A date is handed to wireTime whatever its type, as
// json.Unmarshal hands it (null leaves it zero either way).
func decodeApproval(v []byte, w *wireApproval) error {
	var raw [2][]byte
	if !plainMembers(v, []string{"date", "user"}, raw[:]) || raw[1] != nil && raw[1][0] != '{' && raw[1][0] != 'n' {
		return json.Unmarshal(v, w)
	}
	if d := raw[0]; d != nil && d[0] != 'n' {
		if err := w.Date.UnmarshalJSON(d); err != nil {
			return err
		}
	}
	if u := raw[1]; u != nil && u[0] == '{' {
		w.User = new(wireAccount)
		return decodeAccount(u, w.User)
	}
	return nil
}

// plainMembers puts the raw value of each member of the valid object obj
// named in names into out (nil when absent). It is false when a name is
// repeated, escaped, or matches one of names only case-insensitively (as
// encoding/json would match it), or when a value of names is neither an
// object nor null at the top level of the envelope, nor a string, number
// or null below it: json.Unmarshal's rules for those are left to it.
func plainMembers(obj []byte, names []string, out [][]byte) bool {
	m := jsonscan.Members{Names: names, Out: out}
	return plainTypes(&m, jsonscan.Each(obj, m.Add))
}

// plainTypes answers plainMembers once every member was added to m;
// isObject is whether the walk found an object.
func plainTypes(m *jsonscan.Members, isObject bool) bool {
	if !isObject || !m.Plain() {
		return false
	}
	for _, v := range m.Out {
		if v == nil {
			continue
		}
		switch v[0] {
		case '{', 'n':
		case '[', 't', 'f':
			return false
		default: // strings and numbers: the scalar members below the top
			if len(m.Names) == len(members) {
				return false
			}
		}
	}
	return true
}
