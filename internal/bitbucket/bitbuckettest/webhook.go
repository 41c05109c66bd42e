package bitbuckettest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// Sign is the X-Hub-Signature Bitbucket sends with a webhook secret:
// "sha256=" and the lowercase hex HMAC-SHA256 of the raw body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookBody renders the body Bitbucket would deliver for a pull request
// event key ("pullrequest:approved", …) from the pull request's current
// state, with actor as the one who acted: approval events carry
// approval{date,user}, change-request events changes_request{date,user}.
// For comment events use WebhookCommentBody. It returns nil when there is no
// such pull request.
func (s *Server) WebhookBody(eventKey, fullName string, id int, actor model.Actor) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p, err := s.pr(fullName, id)
	if err != nil {
		return nil
	}
	actor = s.addUser(actor)
	body := obj{"repository": s.repoFull(r), "actor": s.account(actor), "pullrequest": s.prJSON(r, p, true)}
	switch strings.TrimPrefix(eventKey, "pullrequest:") {
	case "approved", "unapproved":
		body["approval"] = obj{"date": when(s.reviewTime(p, actor)), "user": s.account(actor)}
	case "changes_request_created", "changes_request_removed":
		body["changes_request"] = obj{"date": when(s.reviewTime(p, actor)), "user": s.account(actor)}
	}
	return mustJSON(body)
}

// reviewTime is when actor last reviewed, or now.
func (s *Server) reviewTime(p *pullRequest, actor model.Actor) time.Time {
	for _, pt := range p.acted {
		if sameActor(pt.user, actor) && !pt.on.IsZero() {
			return pt.on
		}
	}
	return s.now()
}

// WebhookCommentBody renders a pullrequest:comment_created (or _updated)
// body for an existing comment; the actor is the comment's author. It
// returns nil when there is no such comment.
func (s *Server) WebhookCommentBody(fullName string, id int, commentID string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p, err := s.pr(fullName, id)
	if err != nil {
		return nil
	}
	for _, c := range p.comments {
		if fmt.Sprint(c.id) == commentID {
			return mustJSON(obj{
				"repository":  s.repoFull(r),
				"actor":       s.account(c.author),
				"pullrequest": s.prJSON(r, p, true),
				"comment":     s.commentJSON(r, p, c),
			})
		}
	}
	return nil
}

// WebhookPushBody renders a repo:push body moving branch from oldHash to
// newHash ("" for a created or deleted branch), shaped like the 2023
// captures (commits list left empty).
func (s *Server) WebhookPushBody(fullName, branch, oldHash, newHash string, actor model.Actor) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName, true)
	actor = s.addUser(actor)
	ref := func(hash string) any {
		if hash == "" {
			return nil
		}
		hash = strings.ToLower(hash)
		r.commits[hash] = true
		return obj{
			"name": branch, "type": "branch",
			"links": obj{
				"commits": href(s.apiURL("repositories", r.fullName, "commits", branch)),
				"self":    href(s.apiURL("repositories", r.fullName, "refs", "branches", branch)),
				"html":    href(s.htmlURL(r.fullName, "branch", branch)),
			},
			"default_merge_strategy": "merge_commit",
			"merge_strategies":       []string{"merge_commit", "squash", "fast_forward"},
			"sync_strategies":        []string{"merge_commit", "rebase"},
			"target": obj{
				"type": "commit", "hash": hash, "date": when(s.now()),
				"author":  obj{"type": "author", "raw": actor.DisplayName, "user": s.account(actor)},
				"message": "", "parents": []any{}, "properties": obj{},
				"links": obj{
					"self": href(s.apiURL("repositories", r.fullName, "commit", hash)),
					"html": href(s.htmlURL(r.fullName, "commits", hash)),
				},
			},
		}
	}
	pushed, known := s.pushedCommits(r, branch, strings.ToLower(oldHash), strings.ToLower(newHash))
	commits := []any{}
	for i := len(pushed) - 1; i >= 0 && len(commits) < pushListMax; i-- { // newest first
		commits = append(commits, s.commitJSON(r, pushed[i]))
	}
	change := obj{
		"old": ref(oldHash), "new": ref(newHash),
		// Bitbucket lists the new commits, newest first, and truncates
		// long lists; a range the fake cannot tell is said truncated.
		"truncated": !known || len(pushed) > pushListMax, "created": oldHash == "", "forced": false, "closed": newHash == "",
		"commits": commits, "links": obj{},
	}
	return mustJSON(obj{
		"push":       obj{"changes": []any{change}},
		"repository": s.repoFull(r),
		"actor":      s.account(actor),
	})
}

// WebhookCommitStatusBody renders a repo:commit_status_created (or
// _updated) body for a status already on the commit, nil when there is
// none. As with Pipelines, actor may be a team (IsTeam).
func (s *Server) WebhookCommitStatusBody(fullName, commit, key string, actor model.Actor) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(fullName, false)
	if r == nil {
		return nil
	}
	st := r.statuses[r.resolve(commit)][key]
	if st == nil {
		return nil
	}
	if !actor.IsTeam {
		actor = s.addUser(actor)
	}
	return mustJSON(obj{"repository": s.repoFull(r), "actor": s.account(actor), "commit_status": s.statusJSON(r, st)})
}

// mustJSON encodes like Bitbucket: compact, "<" and "&" left as they are.
func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps, slices, strings, numbers, nil: cannot fail
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// pushListMax is how many commits a push payload lists before it says
// truncated (Bitbucket lists a handful).
const pushListMax = 5

// pushedCommits are the commits a push of branch from oldHash to newHash
// brought, oldest first, as the pull request on that branch recorded them
// (Push); known is false when no pull request tells.
func (s *Server) pushedCommits(r *repo, branch, oldHash, newHash string) ([]string, bool) {
	if oldHash == "" || newHash == "" {
		return nil, false
	}
	for _, p := range r.prs {
		if p.srcBranch != branch {
			continue
		}
		from, to := -1, -1
		for i, h := range p.commits {
			if h == oldHash && from < 0 {
				from = i
			}
			if h == newHash {
				to = i
			}
		}
		if from >= 0 && to > from {
			return append([]string(nil), p.commits[from+1:to+1]...), true
		}
	}
	return nil, false
}
