package bitbuckettest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/model"
)

// reply is an answer built under the lock and written after it.
type reply struct {
	status int
	header map[string]string
	body   any
	html   string // sent as text/html instead of body
}

func ok(body any) reply                 { return reply{status: http.StatusOK, body: body} }
func fail(status int, msg string) reply { return reply{status: status, body: errorBody(msg, nil)} }
func badRequest(msg string, field string) reply {
	fields := map[string][]string(nil)
	if field != "" {
		fields = map[string][]string{field: {msg}}
	}
	return reply{status: http.StatusBadRequest, body: errorBody(msg, fields)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		s.held.Add(1)
		select {
		case <-hold:
			s.held.Add(-1)
		case <-r.Context().Done():
			s.held.Add(-1)
			return
		}
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rep := s.handle(r, body)
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.html != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.html)
		return
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	b := mustJSON(rep.body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}

func (s *Server) handle(r *http.Request, body []byte) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	escaped := r.URL.EscapedPath()
	rel, inAPI := strings.CutPrefix(escaped, "/2.0/")
	endpoint := bitbucket.EndpointTemplate(r.Method, "/"+rel)
	s.calls[endpoint]++
	s.total++

	for _, f := range s.failures {
		if !f.match(r.Method, r.URL.Path, endpoint) {
			continue
		}
		if f.seen < f.Skip {
			f.seen++
			continue
		}
		f.Times--
		s.faulted++
		if f.HTML {
			return reply{status: f.Status, html: "<html><body><h1>Bitbucket is down for maintenance</h1></body></html>"}
		}
		msg := http.StatusText(f.Status)
		if f.Status == http.StatusTooManyRequests {
			msg = "Rate limit for this resource has been exceeded"
		}
		rep := fail(f.Status, msg)
		if f.RetryAfter != "" {
			rep.header = map[string]string{"Retry-After": f.RetryAfter}
		}
		return rep
	}
	if s.auth != nil && !s.authorized(r) {
		return fail(http.StatusUnauthorized, "Unauthorized")
	}
	if !inAPI {
		return fail(http.StatusNotFound, "Resource not found")
	}
	var segs []string
	for _, sg := range strings.Split(strings.TrimSuffix(rel, "/"), "/") {
		u, err := url.PathUnescape(sg)
		if err != nil {
			return fail(http.StatusBadRequest, "Bad request")
		}
		segs = append(segs, u)
	}
	switch {
	case len(segs) == 1 && segs[0] == "user":
		return s.only(r, http.MethodGet, func() reply { return ok(s.userJSON(s.me)) })
	case len(segs) == 2 && segs[0] == "users":
		return s.only(r, http.MethodGet, func() reply {
			a, found := s.user(segs[1])
			if !found {
				return fail(http.StatusNotFound, fmt.Sprintf("%s not found", segs[1]))
			}
			return ok(s.account(a))
		})
	case len(segs) >= 3 && segs[0] == "repositories":
		full := segs[1] + "/" + segs[2]
		rp := s.repo(full, false)
		if rp == nil {
			return fail(http.StatusNotFound, fmt.Sprintf("Repository %s not found", full))
		}
		return s.repoRoute(r, body, rp, segs[3:])
	}
	return fail(http.StatusNotFound, "Resource not found")
}

func (s *Server) authorized(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		return u == s.auth.user && p == s.auth.token
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t == s.auth.token
	}
	return false
}

func (s *Server) only(r *http.Request, method string, f func() reply) reply {
	if r.Method != method {
		return fail(http.StatusMethodNotAllowed, "Method not allowed")
	}
	return f()
}

func (s *Server) repoRoute(r *http.Request, body []byte, rp *repo, rest []string) reply {
	n := len(rest)
	switch {
	case n == 0:
		return s.only(r, http.MethodGet, func() reply { return ok(s.repoFull(rp)) })
	case rest[0] == "pullrequests" && n == 1:
		return s.only(r, http.MethodGet, func() reply { return s.listPRs(r, rp) })
	case rest[0] == "pullrequests":
		id, err := strconv.Atoi(rest[1])
		p := rp.prs[id]
		if err != nil || p == nil {
			return fail(http.StatusNotFound, fmt.Sprintf("Pull request %s not found", rest[1]))
		}
		return s.prRoute(r, body, rp, p, rest[2:])
	case rest[0] == "diffstat" && n >= 2:
		return s.only(r, http.MethodGet, func() reply { return s.diffstat(r, rp) })
	case rest[0] == "commit" && n >= 2:
		return s.commitRoute(r, body, rp, strings.ToLower(rest[1]), rest[2:])
	case rest[0] == "deployments" && n == 1:
		return s.only(r, http.MethodGet, func() reply {
			var vals []any
			for i := len(rp.deployments) - 1; i >= 0; i-- {
				vals = append(vals, s.deploymentJSON(rp, rp.deployments[i]))
			}
			return s.paged(r, vals, 10, 100)
		})
	case rest[0] == "environments" && n == 1:
		return s.only(r, http.MethodGet, func() reply {
			var vals []any
			for _, e := range rp.environments {
				vals = append(vals, s.environmentJSON(e))
			}
			return s.paged(r, vals, 10, 100)
		})
	}
	return fail(http.StatusNotFound, "Resource not found")
}

func (s *Server) prRoute(r *http.Request, body []byte, rp *repo, p *pullRequest, rest []string) reply {
	n := len(rest)
	switch {
	case n == 0 && r.Method == http.MethodGet:
		return ok(s.prJSON(rp, p, true))
	case n == 0 && r.Method == http.MethodPut:
		return s.putPR(rp, p, body)
	case n == 0:
		return fail(http.StatusMethodNotAllowed, "Method not allowed")
	case rest[0] == "diffstat" && n == 1:
		return s.only(r, http.MethodGet, func() reply {
			ws, slug, _ := strings.Cut(rp.fullName, "/")
			spec := url.PathEscape(ws) + "/" + url.PathEscape(slug) + ":" + short(p.srcCommit) + "%0D" + short(p.dstCommit)
			loc := s.apiURL("repositories", rp.fullName, "diffstat") + "/" + spec + fmt.Sprintf("?from_pullrequest_id=%d&topic=true", p.id)
			return reply{status: http.StatusFound, header: map[string]string{"Location": loc}}
		})
	case rest[0] == "activity" && n == 1:
		return s.only(r, http.MethodGet, func() reply {
			var vals []any
			for i := len(p.activity) - 1; i >= 0; i-- {
				vals = append(vals, s.activityJSON(rp, p, p.activity[i]))
			}
			return s.paged(r, vals, 10, 50)
		})
	case rest[0] == "statuses" && n == 1:
		return s.only(r, http.MethodGet, func() reply { return s.listStatuses(r, rp, p.srcCommit) })
	case rest[0] == "commits" && n == 1:
		return s.only(r, http.MethodGet, func() reply {
			var vals []any
			seen := map[string]bool{}
			for i := len(p.commits) - 1; i >= 0; i-- {
				if h := p.commits[i]; !seen[h] {
					seen[h] = true
					vals = append(vals, s.commitJSON(rp, h))
				}
			}
			return s.paged(r, vals, 10, 100)
		})
	case rest[0] == "comments" && n == 1 && r.Method == http.MethodGet:
		var vals []any
		for _, c := range p.comments {
			vals = append(vals, s.commentJSON(rp, p, c))
		}
		return s.paged(r, vals, 10, 100)
	case rest[0] == "comments" && n == 1 && r.Method == http.MethodPost:
		var in struct {
			Content struct {
				Raw string `json:"raw"`
			} `json:"content"`
		}
		if err := json.Unmarshal(body, &in); err != nil || strings.TrimSpace(in.Content.Raw) == "" {
			return badRequest("This field is required.", "content")
		}
		c := s.addComment(p, s.me, in.Content.Raw)
		return reply{status: http.StatusCreated, body: s.commentJSON(rp, p, c)}
	case rest[0] == "comments" && n == 2:
		return s.commentRoute(r, body, rp, p, rest[1])
	}
	return fail(http.StatusNotFound, "Resource not found")
}

func (s *Server) commentRoute(r *http.Request, body []byte, rp *repo, p *pullRequest, id string) reply {
	var c *comment
	for _, x := range p.comments {
		if fmt.Sprint(x.id) == id && !x.deleted {
			c = x
		}
	}
	if c == nil {
		return fail(http.StatusNotFound, "Comment not found")
	}
	switch r.Method {
	case http.MethodGet:
		return ok(s.commentJSON(rp, p, c))
	case http.MethodPut:
		if !sameActor(c.author, s.me) {
			return fail(http.StatusForbidden, "You can only edit your own comments.")
		}
		var in struct {
			Content struct {
				Raw string `json:"raw"`
			} `json:"content"`
		}
		if err := json.Unmarshal(body, &in); err != nil || strings.TrimSpace(in.Content.Raw) == "" {
			return badRequest("This field is required.", "content")
		}
		c.body, c.updated = in.Content.Raw, s.now()
		return ok(s.commentJSON(rp, p, c))
	}
	return fail(http.StatusMethodNotAllowed, "Method not allowed")
}

// putPR applies a pull request PUT as Bitbucket does: the body replaces
// the resource, so a title is required and a description or reviewer list
// left out is dropped (git-spice #1161); the author cannot be a reviewer;
// only open pull requests change.
func (s *Server) putPR(rp *repo, p *pullRequest, body []byte) reply {
	p.puts++
	p.lastPut = append([]byte(nil), body...)
	if p.state != model.PROpen {
		return badRequest(fmt.Sprintf("You can't modify a pull request that is %s.", strings.ToLower(string(p.state))), "")
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return badRequest("Bad request", "")
	}
	var title, desc string
	if raw, ok := in["title"]; !ok || json.Unmarshal(raw, &title) != nil || strings.TrimSpace(title) == "" {
		return badRequest("This field is required.", "title")
	}
	if raw, ok := in["description"]; ok {
		if json.Unmarshal(raw, &desc) != nil {
			return badRequest("Invalid description.", "description")
		}
	}
	var reviewers []model.Actor
	if raw, ok := in["reviewers"]; ok {
		var refs []struct {
			AccountID string `json:"account_id"`
			UUID      string `json:"uuid"`
		}
		if err := json.Unmarshal(raw, &refs); err != nil {
			return badRequest("Malformed reviewers list.", "reviewers")
		}
		for _, ref := range refs {
			id := ref.AccountID
			if id == "" {
				id = ref.UUID
			}
			a, found := s.user(id)
			if !found {
				return badRequest(fmt.Sprintf("%s is not a valid user.", id), "reviewers")
			}
			if sameActor(a, p.author) {
				return badRequest(fmt.Sprintf("%s is the author and cannot be included as a reviewer.", a.DisplayName), "reviewers")
			}
			dup := false
			for _, x := range reviewers {
				dup = dup || sameActor(x, a)
			}
			if !dup {
				reviewers = append(reviewers, a)
			}
		}
	}
	now := s.now()
	p.title, p.description, p.reviewers, p.updated = title, desc, reviewers, now
	p.activity = append(p.activity, activity{kind: "update", user: s.me, at: now, state: p.state, commit: p.srcCommit, dest: p.dstBranch})
	return ok(s.prJSON(rp, p, true))
}

var updatedFilter = regexp.MustCompile(`^\s*updated_on\s*(>=|>)\s*"?([^"\s]+)"?\s*$`)

func (s *Server) listPRs(r *http.Request, rp *repo) reply {
	q := r.URL.Query()
	states := map[model.PRState]bool{}
	for _, st := range q["state"] {
		states[model.PRState(strings.ToUpper(st))] = true
	}
	if len(states) == 0 {
		states[model.PROpen] = true
	}
	var since time.Time
	inclusive := false
	if f := q.Get("q"); f != "" {
		m := updatedFilter.FindStringSubmatch(f)
		if m == nil {
			return badRequest("Invalid filter query expression", "")
		}
		t, err := time.Parse(time.RFC3339Nano, m[2])
		if err != nil {
			return badRequest("Invalid filter query expression: "+m[2], "")
		}
		since, inclusive = t, m[1] == ">="
	}
	var prs []*pullRequest
	for _, p := range rp.prs {
		if !states[p.state] {
			continue
		}
		if !since.IsZero() && (p.updated.Before(since) || p.updated.Equal(since) && !inclusive) {
			continue
		}
		prs = append(prs, p)
	}
	switch q.Get("sort") {
	case "-updated_on":
		sort.Slice(prs, func(i, j int) bool { return prs[i].updated.After(prs[j].updated) })
	case "updated_on":
		sort.Slice(prs, func(i, j int) bool { return prs[i].updated.Before(prs[j].updated) })
	default:
		sort.Slice(prs, func(i, j int) bool { return prs[i].id > prs[j].id })
	}
	var vals []any
	for _, p := range prs {
		vals = append(vals, s.prJSON(rp, p, false))
	}
	return s.paged(r, vals, 10, 50)
}

// diffstat answers the repository diffstat the pull request's 302 points at.
func (s *Server) diffstat(r *http.Request, rp *repo) reply {
	id, err := strconv.Atoi(r.URL.Query().Get("from_pullrequest_id"))
	p := rp.prs[id]
	if err != nil || p == nil {
		return fail(http.StatusNotFound, "The fake answers pull request diffstats only")
	}
	var vals []any
	for _, f := range p.files {
		vals = append(vals, s.diffstatJSON(rp, p, f))
	}
	return s.paged(r, vals, 500, 500)
}

func (s *Server) commitRoute(r *http.Request, body []byte, rp *repo, hash string, rest []string) reply {
	if !isHex(hash) || len(hash) < 7 || len(hash) > 40 {
		return fail(http.StatusNotFound, fmt.Sprintf("Commit not found: %s", hash))
	}
	commit := rp.resolve(hash)
	known := rp.commits[commit]
	n := len(rest)
	if n == 0 {
		return s.only(r, http.MethodGet, func() reply {
			if !known { // unknown, or a prefix of several commits
				return fail(http.StatusNotFound, fmt.Sprintf("Commit not found: %s", hash))
			}
			return ok(s.commitJSON(rp, commit))
		})
	}
	switch {
	case rest[0] == "pullrequests" && n == 1:
		return s.only(r, http.MethodGet, func() reply {
			switch rp.linkIndex {
			case IndexBuilding:
				return reply{status: http.StatusAccepted, body: errorBody("The repository's pull requests are still being indexed.", nil)}
			case IndexMissing:
				return fail(http.StatusNotFound, "Either the repository does not exist, or pull request commit links have not yet been indexed.")
			}
			var vals []any
			ids := make([]int, 0, len(rp.prs))
			for id := range rp.prs {
				ids = append(ids, id)
			}
			sort.Sort(sort.Reverse(sort.IntSlice(ids)))
			for _, id := range ids {
				p := rp.prs[id]
				match := prefixes(p.mergeCommit, hash)
				for _, c := range p.commits {
					match = match || prefixes(c, hash)
				}
				if match {
					vals = append(vals, s.prJSON(rp, p, false))
				}
			}
			return s.paged(r, vals, 10, 50)
		})
	case rest[0] == "statuses" && n == 1:
		return s.only(r, http.MethodGet, func() reply { return s.listStatuses(r, rp, commit) })
	case rest[0] == "statuses" && n == 2 && rest[1] == "build":
		return s.only(r, http.MethodPost, func() reply {
			if !known && len(commit) < 40 {
				return fail(http.StatusNotFound, fmt.Sprintf("Commit not found: %s", hash))
			}
			st, rep, okIn := decodeStatus(body, true)
			if !okIn {
				return rep
			}
			return reply{status: http.StatusCreated, body: s.statusJSON(rp, s.putStatus(rp, commit, st))}
		})
	case rest[0] == "statuses" && n == 3 && rest[1] == "build":
		cur := rp.statuses[commit][rest[2]]
		if cur == nil {
			return fail(http.StatusNotFound, fmt.Sprintf("No status with key %q on commit %s", rest[2], hash))
		}
		switch r.Method {
		case http.MethodGet:
			return ok(s.statusJSON(rp, cur))
		case http.MethodPut:
			st, rep, okIn := decodeStatus(body, false)
			if !okIn {
				return rep
			}
			merged := cur.st
			st.Key = merged.Key
			if st.State != "" {
				merged.State = st.State
			}
			if st.URL != "" {
				merged.URL = st.URL
			}
			if st.Name != "" {
				merged.Name = st.Name
			}
			if st.Description != "" {
				merged.Description = st.Description
			}
			return ok(s.statusJSON(rp, s.putStatus(rp, commit, merged)))
		}
		return fail(http.StatusMethodNotAllowed, "Method not allowed")
	}
	return fail(http.StatusNotFound, "Resource not found")
}

// maxStatusKey is the longest build status key Bitbucket accepts.
const maxStatusKey = 40

func decodeStatus(body []byte, create bool) (model.CommitStatus, reply, bool) {
	var in struct {
		Key         string  `json:"key"`
		State       string  `json:"state"`
		URL         string  `json:"url"`
		Name        string  `json:"name"`
		Description string  `json:"description"`
		Refname     *string `json:"refname"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return model.CommitStatus{}, badRequest("Bad request", ""), false
	}
	switch {
	case create && in.Key == "":
		return model.CommitStatus{}, badRequest("This field is required.", "key"), false
	case create && in.URL == "":
		return model.CommitStatus{}, badRequest("This field is required.", "url"), false
	case utf8.RuneCountInString(in.Key) > maxStatusKey:
		return model.CommitStatus{}, badRequest(fmt.Sprintf("Ensure this value has at most %d characters (it has %d).", maxStatusKey, utf8.RuneCountInString(in.Key)), "key"), false
	case create || in.State != "":
		switch in.State {
		case "SUCCESSFUL", "FAILED", "INPROGRESS", "STOPPED":
		default:
			return model.CommitStatus{}, badRequest(fmt.Sprintf("%q is not a valid choice.", in.State), "state"), false
		}
	}
	st := model.CommitStatus{Key: in.Key, State: in.State, URL: in.URL, Name: in.Name, Description: in.Description}
	if in.Refname != nil {
		st.RefName = *in.Refname
	}
	return st, reply{}, true
}

func (s *Server) listStatuses(r *http.Request, rp *repo, commit string) reply {
	var vals []any
	for _, k := range rp.statusOrder[commit] {
		vals = append(vals, s.statusJSON(rp, rp.statuses[commit][k]))
	}
	return s.paged(r, vals, 10, 100)
}

// paged answers one page of a list as Bitbucket does: values, page,
// pagelen, size and, when more follow, an absolute next link. A pagelen
// above the endpoint's maximum is refused with 400 "Invalid pagelen".
func (s *Server) paged(r *http.Request, values []any, def, max int) reply {
	q := r.URL.Query()
	pagelen, page := def, 1
	if v := q.Get("pagelen"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return fail(http.StatusBadRequest, "Invalid pagelen")
		}
		pagelen = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fail(http.StatusBadRequest, "Invalid page")
		}
		page = n
	}
	start := min((page-1)*pagelen, len(values))
	end := min(start+pagelen, len(values))
	out := obj{"pagelen": pagelen, "values": append([]any{}, values[start:end]...), "page": page, "size": len(values)}
	if end < len(values) {
		q.Set("page", strconv.Itoa(page+1))
		out["next"] = s.srv.URL + r.URL.EscapedPath() + "?" + q.Encode()
	}
	return ok(out)
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return s != ""
}

// prefixes reports whether one hash is a prefix of the other (7+ digits).
func prefixes(a, b string) bool {
	if len(a) < 7 || len(b) < 7 {
		return false
	}
	return strings.HasPrefix(a, b) || strings.HasPrefix(b, a)
}
