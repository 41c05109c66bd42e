package bitbucket

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/jsonscan"
)

// envelopeUnmarshal is routingEnvelope as it was before decodeAccount and
// decodeApproval (json.Unmarshal decoded the actor and the approvals), and
// before ValidEach (a body was checked by Valid first, then split by Each).
// It is the oracle for valid bodies.
func envelopeUnmarshal(body []byte) (*envelope, bool) {
	var raw [len(members)][]byte
	if !plainMembers(body, members[:], raw[:]) {
		return nil, false
	}
	env := &envelope{}
	ok := true
	for i, v := range raw {
		if v == nil || v[0] == 'n' {
			continue
		}
		var err error
		switch i {
		case mActor:
			env.Actor = new(wireAccount)
			err = json.Unmarshal(v, env.Actor)
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
			err = json.Unmarshal(v, env.Approval)
		case mChangesRequest:
			env.ChangesRequest = new(wireApproval)
			err = json.Unmarshal(v, env.ChangesRequest)
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

func sameEnvelope(t *testing.T, body []byte) {
	t.Helper()
	got, gotOK := routingEnvelope(body)
	if !jsonscan.Valid(body) {
		if gotOK {
			t.Fatalf("routingEnvelope(%q) accepts invalid JSON", body)
		}
		return
	}
	want, wantOK := envelopeUnmarshal(body)
	if gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Fatalf("routingEnvelope(%s) = %v, %+v; json.Unmarshal makes %v, %+v", body, gotOK, got, wantOK, want)
	}
}

// Accounts and approvals written every way that matters to decodeAccount
// and decodeApproval: plainly, with names repeated, escaped or in another
// case (U+017F folds to 's'), with values of every JSON type.
var (
	testAccounts = []string{
		`{}`, `null`,
		`{"type":"user","uuid":"{u}","account_id":"557058:x","display_name":"D","nickname":"n","username":"u","links":{"a":[1,true,{"uuid":5}]}}`,
		`{"UUID":"{u}"}`, `{"uuid":"{a}","uuid":"{b}"}`, `{"uu\u0069d":"{u}"}`, `{"di\u017fplay_name":"x"}`, "{\"diſplay_name\":\"x\"}",
		`{"uuid":5}`, `{"uuid":null}`, `{"uuid":true}`, `{"uuid":["x"]}`, `{"uuid":{"a":1}}`, `{"links":5,"x\"y":[]}`,
		`{"uuid":"caf\u00e9 \"x\" \\"}`, "{\"uuid\":\"\xff\xfe\"}", `{"nickname":"n","Nickname":"m"}`,
	}
	testApprovals = []string{
		`null`, `{}`, `{"date":null}`, `{"date":5}`, `{"date":{"x":1}}`, `{"date":true}`, `{"date":"bad"}`,
		`{"date":"2026-01-02"}`, `{"date":"2026-01-02T03:04:05+02:00"}`, `{"Date":"2026-01-02"}`,
		`{"date":"2026-01-02","date":"2027-01-02"}`, `{"d\u0061te":"2026-01-02"}`, `{"date":"\u0032026-01-02"}`,
		`{"user":"x"}`, `{"user":5}`, `{"user":[]}`, `{"user":true}`, `{"user":null}`, `{"User":{}}`,
	}
)

// testBodies are envelopes of every test account as the actor, and as the
// user of an approval or a change request given by a plain actor, and of
// every test approval.
func testBodies() []string {
	const body = `{"actor":%s,"repository":{"full_name":"a/b"},"pullrequest":{"id":1},"%s":%s}`
	var out []string
	for _, a := range testAccounts {
		for _, what := range []string{"approval", "changes_request"} {
			out = append(out, fmt.Sprintf(body, a, what, `{"date":"2026-01-02"}`),
				fmt.Sprintf(body, testAccounts[2], what, `{"date":"2026-01-02T03:04:05Z","user":`+a+`}`))
		}
	}
	for _, ap := range testApprovals {
		out = append(out, fmt.Sprintf(body, testAccounts[2], "approval", ap), fmt.Sprintf(body, testAccounts[2], "changes_request", ap))
	}
	return out
}

func TestRoutingEnvelopeDecodesAsUnmarshal(t *testing.T) {
	for _, path := range fixtures.Glob(t, "bitbucket/webhooks/*.json") {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sameEnvelope(t, b)
	}
	for _, b := range testBodies() {
		sameEnvelope(t, []byte(b))
	}
}

func FuzzRoutingEnvelope(f *testing.F) {
	for _, b := range testBodies() {
		f.Add([]byte(b))
	}
	for _, path := range fixtures.Glob(f, "bitbucket/webhooks/pullrequest_*.json") {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameEnvelope(t, body) })
}
