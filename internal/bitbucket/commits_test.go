package bitbucket_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/upstream"
)

func TestPullRequestCommitsAllPagesWithAuthors(t *testing.T) {
	// Two real pages: jenkins-bbs (two commits by a mapped account), then
	// go-scm's (its next link points at the web host, so it is cut here).
	var first, second map[string]any
	if err := json.Unmarshal(fixtures.Read(t, "bitbucket/api/commits_list__jenkins-bbs.json"), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(fixtures.Read(t, "bitbucket/api/commits_list__go-scm.json"), &second); err != nil {
		t.Fatal(err)
	}
	delete(second, "next")
	a := newAPI(t)
	a.on("GET /repositories/ws/repo/pullrequests/7/commits", func(w http.ResponseWriter, r *http.Request) {
		out := first
		if r.URL.Query().Get("page") == "2" {
			out = second
		} else {
			out["next"] = a.base() + "/repositories/ws/repo/pullrequests/7/commits?pagelen=50&page=2"
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	c := a.client(t, nil)
	got, err := c.PullRequestCommits(context.Background(), "ws/repo", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d commits, want 3: %+v", len(got), got)
	}
	if got[0].Hash != "251fce291f086cdde68ae2a896148abb5b58033e" || got[0].Author.AccountID != "557058:270a1f96-cd27-4013-ade6-85df2ab9820c" ||
		got[0].AuthorRaw != "Nikolas Falco <amuniz@acme.com>" || !got[0].Date.Equal(ts("2025-04-26T09:50:59+00:00")) {
		t.Errorf("first %+v", got[0])
	}
	if got[2].Hash != "a6e5e7d797edf751cbd839d6bd4aef86c941eec9" || got[2].Author.AccountID != "557057:74dc5efb-ffe7-49af-b427-6abc299bb3b9" {
		t.Errorf("third %+v", got[2])
	}
	if q := a.requests()[0].URL.Query(); q.Get("pagelen") != "50" {
		t.Errorf("pagelen %q, want an explicit 50", q.Get("pagelen"))
	}
}

func TestPullRequestCommitsUnmappedAuthor(t *testing.T) {
	a := newAPI(t)
	a.on("GET /repositories/ws/repo/pullrequests/7/commits", status(200, nil,
		`{"values":[{"hash":"ABCDEF0123456789abcdef0123456789abcdef01","date":"2026-01-02T03:04:05+00:00","author":{"type":"author","raw":"Ghost <ghost@example.com>"}}]}`))
	got, err := a.client(t, nil).PullRequestCommits(context.Background(), "ws/repo", 7)
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if got[0].Author != (model.Actor{}) || got[0].AuthorRaw != "Ghost <ghost@example.com>" || got[0].Hash != strings.ToLower("ABCDEF0123456789abcdef0123456789abcdef01") {
		t.Errorf("%+v", got[0])
	}
}

func TestGetCommitResolvesShortHash(t *testing.T) {
	a := newAPI(t)
	a.on("GET /repositories/ws/repo/commit/a6e5e7d797ed", fixture(t, "commit_get__go-scm.json"))
	a.on("GET /repositories/ws/repo/commit/0123456789ab", status(404, nil, string(fixtures.Read(t, "bitbucket/api/error_not_found__go-scm.json"))))
	a.on("GET /repositories/ws/repo/commit/bbbbbbbbbbbb", fixture(t, "commit_get__go-scm.json")) // answers another commit
	c := a.client(t, nil)
	full, err := c.ResolveCommit(context.Background(), "ws/repo", "a6e5e7d797ed")
	if err != nil || full != "a6e5e7d797edf751cbd839d6bd4aef86c941eec9" {
		t.Fatalf("%q %v", full, err)
	}
	if _, err := c.ResolveCommit(context.Background(), "ws/repo", "0123456789ab"); !upstream.IsNotFound(err) || !upstream.IsPermanent(err) {
		t.Errorf("unknown commit: %v", err)
	}
	if _, err := c.ResolveCommit(context.Background(), "ws/repo", "bbbbbbbbbbbb"); err == nil {
		t.Error("an answer naming another commit was accepted")
	}
	if _, err := c.ResolveCommit(context.Background(), "ws/repo", "a6e5e7"); err == nil {
		t.Error("6 hex accepted")
	}
}

func TestActivityUpdateNamesItsSourceCommit(t *testing.T) {
	a := newAPI(t)
	a.on("GET /repositories/ws/repo/pullrequests/3/activity", status(200, nil, `{"values":[
		{"approval":{"date":"2026-03-01T10:00:00+00:00","user":{"account_id":"acc-lead","display_name":"Lead"}}},
		{"update":{"date":"2026-03-01T09:00:00+00:00","state":"OPEN","author":{"account_id":"acc-dev"},"source":{"commit":{"hash":"BBBBBBBBBBBB"}}}},
		{"update":{"date":"2026-03-01T08:00:00+00:00","state":"OPEN","author":{"account_id":"acc-dev"},"source":{"commit":{"hash":"aaaaaaaaaaaa"}}}}]}`))
	acts, err := a.client(t, nil).PullRequestActivity(context.Background(), "ws/repo", 3)
	if err != nil || len(acts) != 3 {
		t.Fatalf("%+v %v", acts, err)
	}
	if acts[1].Kind != model.ActivityUpdate || acts[1].SourceCommit != "bbbbbbbbbbbb" || acts[0].User.AccountID != "acc-lead" {
		t.Errorf("%+v", acts)
	}
	at, ok := model.LastPush(acts, strings.Repeat("b", 40), false)
	if !ok || !at.Equal(ts("2026-03-01T09:00:00+00:00")) {
		t.Errorf("last push %v %v", at, ok)
	}
}
