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

// routingOnly is envelope with only what routingEnvelope decodes of the
// repository, the pull request and the push, so that json.Unmarshal
// decodes the routing fields and skips the rest, as routingEnvelope does.
type routingOnly struct {
	Actor       *wireAccount `json:"actor"`
	Repository  *wireRepo    `json:"repository"`
	PullRequest *struct {
		ID wireInt `json:"id"`
	} `json:"pullrequest"`
	Approval       *wireApproval `json:"approval"`
	ChangesRequest *wireApproval `json:"changes_request"`
	Comment        *wireComment  `json:"comment"`
	Push           *struct{}     `json:"push"`
	CommitStatus   *wireStatus   `json:"commit_status"`
}

// envelopeUnmarshal is the oracle: the envelope json.Unmarshal fills with
// the routing fields, as routingEnvelope promises to fill it (the
// repository's full name, the pull request's id, an empty push); ok is
// false when json.Unmarshal refuses them.
func envelopeUnmarshal(body []byte) (*envelope, bool) {
	var r routingOnly
	if json.Unmarshal(body, &r) != nil {
		return nil, false
	}
	env := &envelope{Actor: r.Actor, Approval: r.Approval, ChangesRequest: r.ChangesRequest, Comment: r.Comment, CommitStatus: r.CommitStatus}
	if r.Repository != nil {
		env.Repository = &wireRepo{FullName: r.Repository.FullName}
	}
	if r.PullRequest != nil {
		env.PullRequest = &wirePullRequest{ID: r.PullRequest.ID}
	}
	if r.Push != nil {
		env.Push = &wirePush{}
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
	if !gotOK {
		return // written unusually: CheckWebhook leaves it to the whole parse
	}
	want, wantOK := envelopeUnmarshal(body)
	if !wantOK || !reflect.DeepEqual(got, want) {
		t.Fatalf("routingEnvelope(%s) = %+v; json.Unmarshal makes %v, %+v", body, got, wantOK, want)
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
		if _, ok := routingEnvelope(b); !ok {
			t.Errorf("%s: a captured body is written plainly, but routingEnvelope leaves it to the whole parse", path)
		}
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
