package bitbucket_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/fixtures"
)

// checkKeys are the event keys every fixture is tried under: each body
// under its own key and re-labelled under every other.
var checkKeys = []string{
	"pullrequest:created", "pullrequest:updated", "pullrequest:push", "pullrequest:approved", "pullrequest:unapproved",
	"pullrequest:changes_request_created", "pullrequest:changes_request_removed", "pullrequest:fulfilled",
	"pullrequest:rejected", "pullrequest:comment_created", "pullrequest:comment_updated", "pullrequest:comment_deleted",
	"pullrequest:comment_resolved", "repo:push", "repo:commit_status_created", "repo:commit_status_updated",
	"repo:fork", "issue:created", "pullrequest:superseded", "bad key", "",
}

// agree fails t unless CheckWebhook answers body under key as ParseWebhook
// does: both accept with the same repository, or both refuse (a mismatch
// refused as a mismatch).
func agree(t *testing.T, what, key string, body []byte) {
	t.Helper()
	ev, perr := bitbucket.ParseWebhook(key, body)
	repo, cerr := bitbucket.CheckWebhook(key, body)
	switch {
	case perr == nil && cerr != nil:
		t.Errorf("%s as %q: ParseWebhook accepts, CheckWebhook refuses: %v", what, key, cerr)
	case perr != nil && cerr == nil:
		t.Errorf("%s as %q: ParseWebhook refuses (%v), CheckWebhook accepts", what, key, perr)
	case perr == nil && repo != ev.Repository:
		t.Errorf("%s as %q: repository %q, ParseWebhook says %q", what, key, repo, ev.Repository)
	case perr != nil && errors.Is(perr, bitbucket.ErrBodyMismatch) != errors.Is(cerr, bitbucket.ErrBodyMismatch):
		t.Errorf("%s as %q: ParseWebhook: %v; CheckWebhook: %v", what, key, perr, cerr)
	}
}

func TestCheckWebhookAgreesWithParseOnEveryFixture(t *testing.T) {
	accepted := 0
	for _, path := range fixtures.Glob(t, "bitbucket/webhooks/*.json") {
		body := fixtures.Read(t, "bitbucket/webhooks/"+filepath.Base(path))
		for _, key := range checkKeys {
			agree(t, filepath.Base(path), key, body)
			if _, err := bitbucket.CheckWebhook(key, body); err == nil {
				accepted++
			}
		}
	}
	if accepted < 50 {
		t.Errorf("only %d fixture and key pairs accepted: the comparison proves little", accepted)
	}
}

// Bodies edited the ways a forger or a strange sender would: each is
// answered as ParseWebhook answers it.
func TestCheckWebhookAgreesOnEditedBodies(t *testing.T) {
	edits := map[string]func(v map[string]any){
		"no repository":             func(v map[string]any) { delete(v, "repository") },
		"null repository":           func(v map[string]any) { v["repository"] = nil },
		"repository without slash":  func(v map[string]any) { v["repository"] = map[string]any{"full_name": "noslash"} },
		"repository name a number":  func(v map[string]any) { v["repository"] = map[string]any{"full_name": 5} },
		"repository upper case":     func(v map[string]any) { v["repository"] = map[string]any{"full_name": "Team/Repo"} },
		"repository name escaped":   func(v map[string]any) { v["repository"] = map[string]any{"full_name": "team/r\u00e9po\n"} },
		"repository a string":       func(v map[string]any) { v["repository"] = "team/repo" },
		"Repository capitalised":    func(v map[string]any) { v["Repository"] = v["repository"]; delete(v, "repository") },
		"no pull request":           func(v map[string]any) { delete(v, "pullrequest") },
		"pull request id zero":      func(v map[string]any) { pr(v)["id"] = 0 },
		"pull request id a string":  func(v map[string]any) { pr(v)["id"] = "12" },
		"pull request id negative":  func(v map[string]any) { pr(v)["id"] = -3 },
		"pull request id an object": func(v map[string]any) { pr(v)["id"] = map[string]any{"n": 1} },
		"pull request an array":     func(v map[string]any) { v["pullrequest"] = []any{1} },
		"someone else's approval": func(v map[string]any) {
			v["approval"] = map[string]any{"date": "2026-01-02T03:04:05Z", "user": map[string]any{"account_id": "557058:other"}}
		},
		"approval by the actor": func(v map[string]any) {
			v["approval"] = map[string]any{"date": "2026-01-02T03:04:05Z", "user": v["actor"]}
		},
		"undated approval":  func(v map[string]any) { v["approval"] = map[string]any{"user": v["actor"]} },
		"approval a number": func(v map[string]any) { v["approval"] = 1 },
		"change request too": func(v map[string]any) {
			v["changes_request"] = map[string]any{"user": v["actor"], "date": "2026-01-02"}
		},
		"a comment":        func(v map[string]any) { v["comment"] = map[string]any{"id": 7, "content": map[string]any{"raw": "hi"}} },
		"a comment, no id": func(v map[string]any) { v["comment"] = map[string]any{"content": map[string]any{"raw": "hi"}} },
		"comment raw a number": func(v map[string]any) {
			v["comment"] = map[string]any{"id": 7, "content": map[string]any{"raw": 5}}
		},
		"no actor":             func(v map[string]any) { delete(v, "actor") },
		"actor uuid a number":  func(v map[string]any) { v["actor"] = map[string]any{"uuid": 5} },
		"no push":              func(v map[string]any) { delete(v, "push") },
		"null push":            func(v map[string]any) { v["push"] = nil },
		"status without key":   func(v map[string]any) { v["commit_status"] = map[string]any{"state": "SUCCESSFUL"} },
		"status with key only": func(v map[string]any) { v["commit_status"] = map[string]any{"key": "ci"} },
		"status repository only": func(v map[string]any) {
			delete(v, "repository")
			v["commit_status"] = map[string]any{"key": "ci", "repository": map[string]any{"full_name": "A/B"}}
		},
	}
	bodies := map[string][]byte{}
	for _, name := range []string{"pullrequest_approved__b-arol-o.json", "pullrequest_created__atlantis.json",
		"pullrequest_comment_created__go-scm.json", "repo_push__go-scm.json", "repo_commit_status_created__go-scm.json"} {
		bodies[name] = fixtures.Read(t, "bitbucket/webhooks/"+name)
	}
	for file, body := range bodies {
		for what, edit := range edits {
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			edit(v)
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range checkKeys {
				agree(t, file+" with "+what, key, b)
			}
		}
	}
	// Written unusually: repeated and escaped names, cut short, not JSON.
	raw := []string{
		`{"repository":{"full_name":"a/b"},"repository":{"full_name":"c/d"},"push":{}}`,
		`{"repository":{"full_name":"a/b"},"repository":null,"push":{}}`,
		`{"repository":{"full_name":"a/b","full_name":"c/d"},"push":{}}`,
		`{"repository":{"full_name":"a/b"},"p\u0075sh":{}}`,
		`{"repository":{"full_name":"a/b"},"PUSH":{}}`,
		`{"repository":{"full_name":"a/b"},"push":{}`,
		`{"repository":{"full_name":"a/b"},"push":[]}`,
		`{"repository":{"full_name":"a\/b"},"push":{}}`,
		"{\"repository\":{\"full_name\":\"a/\xff\"},\"push\":{}}",
		`[{"repository":{"full_name":"a/b"}}]`,
		`  {"repository":{"full_name":"a/b"},"push":{}}  `,
		`{"repository":{"full_name":"a/b"},"push":{}} x`,
		`{"repository":{"full_name":"a/b"},"pullrequest":{"id":3},"actor":{"uuid":"{u}"}}`,
		`{"repository":{"full_name":"a/b"},"pullrequest":{"id":3,"id":4},"actor":{"uuid":"{u}"}}`,
		`{"repository":{"full_name":"a/b"},"pullrequest":{"ID":3},"actor":{"uuid":"{u}"}}`,
		`{"repository":{"full_name":"a/b"},"pullrequest":{"id":true}}`,
		``, `null`, `{}`,
	}
	for _, body := range raw {
		for _, key := range checkKeys {
			agree(t, body, key, []byte(body))
		}
	}
}

// The one difference, by design: a wrong JSON type inside pullrequest or
// push, fields the intake does not decode, is found by the worker's parse.
func TestCheckWebhookLeavesDeepTypesToTheWorker(t *testing.T) {
	for _, c := range []struct{ key, body string }{
		{"repo:push", `{"repository":{"full_name":"a/b"},"push":{"changes":5}}`},
		{"pullrequest:created", `{"repository":{"full_name":"a/b"},"pullrequest":{"id":3,"title":5}}`},
	} {
		var typeErr *json.UnmarshalTypeError
		if _, err := bitbucket.ParseWebhook(c.key, []byte(c.body)); !errors.As(err, &typeErr) {
			t.Errorf("ParseWebhook(%s): %v, want a type error", c.body, err)
		}
		if repo, err := bitbucket.CheckWebhook(c.key, []byte(c.body)); err != nil || repo != "a/b" {
			t.Errorf("CheckWebhook(%s) = %q, %v", c.body, repo, err)
		}
	}
}

func pr(v map[string]any) map[string]any {
	p, _ := v["pullrequest"].(map[string]any)
	if p == nil {
		p = map[string]any{}
		v["pullrequest"] = p
	}
	return p
}

// FuzzCheckWebhook holds CheckWebhook to ParseWebhook: it never refuses a
// body ParseWebhook accepts (and finds the same repository), and it refuses
// every body ParseWebhook refuses for anything but a JSON type deep in the
// payload (the fields it does not decode).
func FuzzCheckWebhook(f *testing.F) {
	for _, path := range fixtures.Glob(f, "bitbucket/webhooks/*.json") {
		name := filepath.Base(path)
		key := strings.Replace(strings.Split(name, "__")[0], "_", ":", 1)
		f.Add(key, fixtures.Read(f, "bitbucket/webhooks/"+name))
	}
	f.Add("repo:push", []byte(`{"repository":{"full_name":"a/b"},"push":{}}`))
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		ev, perr := bitbucket.ParseWebhook(key, body)
		repo, cerr := bitbucket.CheckWebhook(key, body)
		var typeErr *json.UnmarshalTypeError
		switch {
		case perr == nil && cerr != nil:
			t.Fatalf("ParseWebhook accepts, CheckWebhook refuses: %v", cerr)
		case perr == nil && repo != ev.Repository:
			t.Fatalf("repository %q, ParseWebhook says %q", repo, ev.Repository)
		case perr != nil && cerr == nil && !errors.As(perr, &typeErr):
			t.Fatalf("ParseWebhook refuses (%v), CheckWebhook accepts", perr)
		}
	})
}
