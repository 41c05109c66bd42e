package bitbucket_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/model"
)

// relabel re-sends a real body under another event key, as someone holding
// a signed body can (the signature does not cover X-Event-Key).
func TestParseWebhookRefusesRelabelledBodies(t *testing.T) {
	body := func(name string) []byte { return fixtures.Read(t, "bitbucket/webhooks/"+name) }
	tests := []struct {
		name, key, file string
	}{
		{"comment as approval", "pullrequest:approved", "pullrequest_comment_created__go-scm.json"},
		{"comment as unapproval", "pullrequest:unapproved", "pullrequest_comment_created__atlantis.json"},
		{"comment as change request", "pullrequest:changes_request_created", "pullrequest_comment_created__jenkins-bbpr.json"},
		{"update as approval", "pullrequest:approved", "pullrequest_updated__go-scm.json"},
		{"merge as approval", "pullrequest:approved", "pullrequest_fulfilled__go-scm.json"},
		{"approval as change request", "pullrequest:changes_request_created", "pullrequest_approved__b-arol-o.json"},
		{"approval as comment", "pullrequest:comment_created", "pullrequest_approved__b-arol-o.json"},
		{"update as comment", "pullrequest:comment_created", "pullrequest_updated__atlantis.json"},
		{"comment as update", "pullrequest:updated", "pullrequest_comment_created__go-scm.json"},
		{"comment as merge", "pullrequest:fulfilled", "pullrequest_comment_created__go-scm.json"},
		{"push as created", "pullrequest:created", "repo_push__go-scm.json"},
		{"status as push", "repo:push", "repo_commit_status_created__go-scm.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := bitbucket.ParseWebhook(tt.key, body(tt.file))
			if err == nil {
				t.Fatalf("%s accepted as %s: %+v", tt.file, tt.key, ev)
			}
		})
	}

	// An approval body whose approval is someone else's than the actor's.
	var v map[string]any
	if err := json.Unmarshal(body("pullrequest_approved__b-arol-o.json"), &v); err != nil {
		t.Fatal(err)
	}
	v["approval"].(map[string]any)["user"] = map[string]any{"account_id": "557058:someone-else", "display_name": "Lead"}
	forged, _ := json.Marshal(v)
	if _, err := bitbucket.ParseWebhook("pullrequest:approved", forged); !errors.Is(err, bitbucket.ErrBodyMismatch) {
		t.Errorf("approval by someone other than the actor: %v", err)
	}
	delete(v["approval"].(map[string]any), "date")
	v["approval"].(map[string]any)["user"] = v["actor"]
	undated, _ := json.Marshal(v)
	if _, err := bitbucket.ParseWebhook("pullrequest:approved", undated); !errors.Is(err, bitbucket.ErrBodyMismatch) {
		t.Errorf("undated approval: %v", err)
	}
}

// Every real pull request body still passes under its own key.
func TestParseWebhookHonestBodiesPass(t *testing.T) {
	for _, path := range fixtures.Glob(t, "bitbucket/webhooks/pullrequest_*.json") {
		name := filepath.Base(path)
		key := "pullrequest:" + strings.TrimPrefix(strings.Split(name, "__")[0], "pullrequest_")
		ev, err := bitbucket.ParseWebhook(key, fixtures.Read(t, "bitbucket/webhooks/"+name))
		if err != nil {
			t.Errorf("%s as %s: %v", name, key, err)
			continue
		}
		if ev.PullRequest == nil {
			t.Errorf("%s: no pull request", name)
		}
		if ev.Kind == model.EventPRApproved && (ev.Approval == nil || ev.Approval.AccountID == "" || ev.Approval.At.IsZero()) {
			t.Errorf("%s: approval %+v", name, ev.Approval)
		}
	}
}
