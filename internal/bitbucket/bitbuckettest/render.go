package bitbuckettest

import (
	"cmp"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// The renderers build Bitbucket Cloud JSON as the API and webhooks send it
// (field names and nesting from shared/fixtures/bitbucket and the OpenAPI
// spec). Links point at this server: API links under /2.0, "html" links
// under its root, standing in for bitbucket.org.

type obj = map[string]any

func href(u string) obj { return obj{"href": u} }

// apiURL joins escaped path segments under the API root.
func (s *Server) apiURL(segs ...string) string {
	return s.srv.URL + "/2.0/" + joinEscaped(segs)
}

// htmlURL is the web page of a repository path (bitbucket.org's role).
func (s *Server) htmlURL(fullName string, segs ...string) string {
	return s.srv.URL + "/" + fullName + "/" + joinEscaped(segs)
}

func joinEscaped(segs []string) string {
	out := make([]string, 0, len(segs))
	for _, sg := range segs {
		for _, part := range strings.Split(sg, "/") {
			out = append(out, url.PathEscape(part))
		}
	}
	return strings.Join(out, "/")
}

// when formats a time as Bitbucket does: microseconds and "+00:00".
func when(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000-07:00")
}

func rendered(text string) obj {
	h := ""
	if text != "" {
		h = "<p>" + html.EscapeString(text) + "</p>"
	}
	return obj{"type": "rendered", "raw": text, "markup": "markdown", "html": h}
}

func (s *Server) account(a model.Actor) obj {
	if a.UUID == "" {
		if known, ok := s.user(a.AccountID); ok && a.AccountID != "" {
			a = known
		} else {
			a.UUID = uuidFor("user:" + a.AccountID + a.Nickname + a.DisplayName)
		}
	}
	o := obj{
		"display_name": a.DisplayName,
		"links": obj{
			"self":   href(s.apiURL("users", a.UUID)),
			"avatar": href(s.srv.URL + "/avatar/" + url.PathEscape(a.UUID)),
			"html":   href(s.srv.URL + "/" + url.PathEscape(a.UUID) + "/"),
		},
		"type": "user",
		"uuid": a.UUID,
	}
	if a.IsTeam {
		o["type"] = "team"
		o["username"] = a.Nickname
		return o
	}
	if a.AccountID != "" {
		o["account_id"] = a.AccountID
	}
	o["nickname"] = a.Nickname
	return o
}

// repoShort is a repository as nested in pull requests and statuses.
func (s *Server) repoShort(r *repo) obj {
	_, slug, _ := strings.Cut(r.fullName, "/")
	return obj{
		"type":      "repository",
		"full_name": r.fullName,
		"links": obj{
			"self":   href(s.apiURL("repositories", r.fullName)),
			"html":   href(s.htmlURL(r.fullName)),
			"avatar": href(s.srv.URL + "/ravatar/" + url.PathEscape(r.uuid)),
		},
		"name": slug,
		"uuid": r.uuid,
	}
}

// repoFull is a repository as the top-level "repository" of a webhook and
// GET /repositories/{ws}/{slug}.
func (s *Server) repoFull(r *repo) obj {
	ws, _, _ := strings.Cut(r.fullName, "/")
	wsUUID := uuidFor("workspace:" + ws)
	o := s.repoShort(r)
	o["scm"] = "git"
	o["website"] = nil
	o["is_private"] = true
	o["parent"] = nil
	main := r.mainBranch
	if main == "" {
		main = "main"
	}
	o["mainbranch"] = obj{"type": "branch", "name": main}
	o["owner"] = obj{
		"display_name": ws,
		"links": obj{
			"self":   href(s.apiURL("workspaces", wsUUID)),
			"avatar": href(s.srv.URL + "/account/" + ws + "/avatar/"),
			"html":   href(s.srv.URL + "/" + url.PathEscape(wsUUID) + "/"),
		},
		"type":     "team",
		"uuid":     wsUUID,
		"username": ws,
	}
	o["workspace"] = obj{
		"type": "workspace", "uuid": wsUUID, "name": ws, "slug": ws,
		"links": obj{
			"avatar": href(s.srv.URL + "/workspaces/" + ws + "/avatar/"),
			"html":   href(s.srv.URL + "/" + ws + "/"),
			"self":   href(s.apiURL("workspaces", ws)),
		},
	}
	o["project"] = obj{
		"type": "project", "key": "PROJ", "uuid": uuidFor("project:" + ws), "name": "Project",
		"links": obj{
			"self":   href(s.apiURL("workspaces", ws, "projects", "PROJ")),
			"html":   href(s.srv.URL + "/" + ws + "/workspace/projects/PROJ"),
			"avatar": href(s.srv.URL + "/account/user/" + ws + "/projects/PROJ/avatar/32"),
		},
	}
	return o
}

func (s *Server) commitRef(r *repo, hash string) obj {
	h := short(hash)
	return obj{
		"hash": h,
		"links": obj{
			"self": href(s.apiURL("repositories", r.fullName, "commit", h)),
			"html": href(s.htmlURL(r.fullName, "commits", h)),
		},
		"type": "commit",
	}
}

func (s *Server) prLinks(r *repo, p *pullRequest) obj {
	id := fmt.Sprint(p.id)
	base := func(tail ...string) obj {
		return href(s.apiURL(append([]string{"repositories", r.fullName, "pullrequests", id}, tail...)...))
	}
	spec := r.fullName + ":" + short(p.srcCommit) + "%0D" + short(p.dstCommit) + "?from_pullrequest_id=" + id + "&topic=true"
	return obj{
		"self":            base(),
		"html":            href(s.htmlURL(r.fullName, "pull-requests", id)),
		"commits":         base("commits"),
		"approve":         base("approve"),
		"request-changes": base("request-changes"),
		"diff":            href(s.apiURL("repositories", r.fullName, "diff") + "/" + spec),
		"diffstat":        href(s.diffStatHref(r, p)),
		"comments":        base("comments"),
		"activity":        base("activity"),
		"merge":           base("merge"),
		"decline":         base("decline"),
		"statuses":        base("statuses"),
	}
}

// prRef is the short pull request object nested in comments and activity.
func (s *Server) prRef(r *repo, p *pullRequest) obj {
	id := fmt.Sprint(p.id)
	return obj{
		"type":  "pullrequest",
		"id":    p.id,
		"title": p.title,
		"links": obj{
			"self": href(s.apiURL("repositories", r.fullName, "pullrequests", id)),
			"html": href(s.htmlURL(r.fullName, "pull-requests", id)),
		},
	}
}

func (s *Server) endpoint(r *repo, branch, commit string, source bool) obj {
	b := obj{"name": branch}
	if source {
		b["links"] = obj{}
		b["sync_strategies"] = []string{"merge_commit", "rebase"}
	}
	return obj{"branch": b, "commit": s.commitRef(r, commit), "repository": s.repoShort(r)}
}

// prJSON renders a pull request; full adds what GET pullrequests/{id} and
// webhooks carry but the list endpoints leave out (reviewers, participants,
// rendered).
func (s *Server) prJSON(r *repo, p *pullRequest, full bool) obj {
	o := obj{
		"comment_count":       len(p.liveComments()),
		"task_count":          0,
		"type":                "pullrequest",
		"id":                  p.id,
		"title":               p.title,
		"description":         p.description,
		"state":               string(p.state),
		"draft":               p.draft,
		"merge_commit":        nil,
		"close_source_branch": false,
		"closed_by":           nil,
		"author":              s.account(p.author),
		"reason":              "",
		"created_on":          when(p.created),
		"updated_on":          when(p.updated),
		"destination":         s.endpoint(r, p.dstBranch, p.dstCommit, false),
		"source":              s.endpoint(r, p.srcBranch, p.srcCommit, true),
		"links":               s.prLinks(r, p),
		"summary":             rendered(p.description),
	}
	if p.mergeCommit != "" {
		o["merge_commit"] = s.commitRef(r, p.mergeCommit)
	}
	if p.closedBy != nil {
		o["closed_by"] = s.account(*p.closedBy)
	}
	if !full {
		return o
	}
	o["queued"] = false
	o["rendered"] = obj{"title": rendered(p.title), "description": rendered(p.description)}
	reviewers := []obj{}
	for _, a := range p.reviewers {
		reviewers = append(reviewers, s.account(a))
	}
	o["reviewers"] = reviewers
	parts := []obj{}
	for _, pt := range s.participants(p) {
		var st any
		if pt.State != model.ReviewNone {
			st = string(pt.State)
		}
		parts = append(parts, obj{
			"type":            "participant",
			"user":            s.account(pt.User),
			"role":            pt.Role,
			"approved":        pt.Approved,
			"state":           st,
			"participated_on": when(pt.On),
		})
	}
	o["participants"] = parts
	return o
}

func (p *pullRequest) liveComments() []*comment {
	var out []*comment
	for _, c := range p.comments {
		if !c.deleted {
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) commentJSON(r *repo, p *pullRequest, c *comment) obj {
	body := c.body
	if c.deleted {
		body = ""
	}
	return obj{
		"id":          c.id,
		"created_on":  when(c.created),
		"updated_on":  when(c.updated),
		"content":     rendered(body),
		"user":        s.account(c.author),
		"deleted":     c.deleted,
		"pending":     false,
		"type":        "pullrequest_comment",
		"pullrequest": s.prRef(r, p),
		"links": obj{
			"self": href(s.apiURL("repositories", r.fullName, "pullrequests", fmt.Sprint(p.id), "comments", fmt.Sprint(c.id))),
			"html": href(s.htmlURL(r.fullName, "pull-requests", fmt.Sprint(p.id)) + "/_/diff#comment-" + fmt.Sprint(c.id)),
		},
	}
}

func (s *Server) activityJSON(r *repo, p *pullRequest, a activity) obj {
	ref := s.prRef(r, p)
	switch a.kind {
	case "approval", "changes_request":
		return obj{a.kind: obj{"date": when(a.at), "pullrequest": ref, "user": s.account(a.user)}, "pull_request": ref}
	case "comment":
		return obj{"comment": s.commentJSON(r, p, a.comment), "pull_request": ref}
	}
	return obj{
		"update": obj{
			"description": p.description,
			"title":       p.title,
			"destination": s.endpoint(r, cmp.Or(a.dest, p.dstBranch), p.dstCommit, false),
			"source":      s.endpoint(r, p.srcBranch, a.commit, false),
			"reason":      "",
			"state":       string(a.state),
			"author":      s.account(a.user),
			"date":        when(a.at),
		},
		"pull_request": ref,
	}
}

// commitJSON renders a commit as pullrequests/{id}/commits and commit/{hash}
// do: the author's raw line always, the user only when mapped.
func (s *Server) commitJSON(r *repo, hash string) obj {
	author := obj{"type": "author", "raw": ""}
	var date any
	if ci := r.commitInfo[hash]; ci != nil {
		author["raw"] = ci.raw
		if ci.author != (model.Actor{}) {
			author["user"] = s.account(ci.author)
		}
		date = when(ci.date)
	}
	return obj{
		"type":       "commit",
		"hash":       hash,
		"date":       date,
		"author":     author,
		"message":    "",
		"repository": s.repoShort(r),
		"parents":    []obj{},
		"links": obj{
			"self":     href(s.apiURL("repositories", r.fullName, "commit", hash)),
			"html":     href(s.htmlURL(r.fullName, "commits", hash)),
			"statuses": href(s.apiURL("repositories", r.fullName, "commit", hash, "statuses")),
		},
	}
}

func (s *Server) statusJSON(r *repo, st *status) obj {
	c := st.st.Commit
	var ref any
	if st.st.RefName != "" {
		ref = st.st.RefName
	}
	return obj{
		"key":     st.st.Key,
		"type":    "build",
		"state":   st.st.State,
		"name":    st.st.Name,
		"refname": ref,
		"commit": obj{
			"hash": c,
			"links": obj{
				"self": href(s.apiURL("repositories", r.fullName, "commit", c)),
				"html": href(s.htmlURL(r.fullName, "commits", c)),
			},
			"type": "commit",
		},
		"url":         st.st.URL,
		"repository":  s.repoShort(r),
		"description": st.st.Description,
		"created_on":  when(st.created),
		"updated_on":  when(st.st.UpdatedAt),
		"links": obj{
			"self":   href(s.apiURL("repositories", r.fullName, "commit", c, "statuses", "build", st.st.Key)),
			"commit": href(s.apiURL("repositories", r.fullName, "commit", c)),
		},
	}
}

func (s *Server) diffstatJSON(r *repo, p *pullRequest, f model.ChangedFile) obj {
	side := func(path, commit string) any {
		if path == "" {
			return nil
		}
		return obj{
			"path": path, "escaped_path": path, "type": "commit_file",
			"links": obj{"self": href(s.apiURL("repositories", r.fullName, "src", commit, path))},
		}
	}
	status := string(f.Status)
	if status == "" {
		status = string(model.FileModified)
	}
	oldPath, newPath := f.Path, f.Path
	switch model.FileStatus(status) {
	case model.FileAdded:
		oldPath = ""
	case model.FileRemoved:
		newPath = ""
	case model.FileRenamed:
		oldPath = f.OldPath
	}
	return obj{
		"type": "diffstat", "status": status, "lines_added": 0, "lines_removed": 0,
		"old": side(oldPath, p.dstCommit), "new": side(newPath, p.srcCommit),
	}
}

func (s *Server) environmentJSON(e *environment) obj {
	return obj{
		"type": "deployment_environment", "uuid": e.uuid, "name": e.name, "slug": strings.ToLower(e.name),
		"rank": e.rank, "hidden": false, "environment_lock_enabled": true,
		"environment_type": obj{"type": "deployment_environment_type", "name": e.typ, "rank": e.rank},
		"lock":             obj{"type": "deployment_environment_lock_open", "name": "OPEN"},
		"restrictions":     obj{"type": "deployment_restrictions_configuration", "admin_only": false},
	}
}

// deploymentJSON renders a deployment as GET deployments/ sends it without
// a fields parameter: the environment is named by uuid only.
func (s *Server) deploymentJSON(r *repo, d *deployment) obj {
	pipeURL := s.htmlURL(r.fullName, "addon/pipelines/home") + fmt.Sprintf("#!/results/%d", d.build)
	var state obj
	switch d.state {
	case "IN_PROGRESS", "INPROGRESS":
		state = obj{"type": "deployment_state_in_progress", "name": "IN_PROGRESS", "url": pipeURL, "start_date": when(d.at)}
	case "UNDEPLOYED":
		state = obj{"type": "deployment_state_undeployed", "name": "UNDEPLOYED", "trigger_url": pipeURL}
	default:
		st := d.state
		if st == "" || st == "COMPLETED" {
			st = "SUCCESSFUL"
		}
		state = obj{
			"type": "deployment_state_completed", "name": "COMPLETED", "url": pipeURL,
			"status":     obj{"type": "deployment_state_completed_status_" + strings.ToLower(st), "name": st},
			"start_date": when(d.at.Add(-time.Minute)), "completion_date": when(d.at),
		}
	}
	return obj{
		"type":        "deployment",
		"uuid":        d.uuid,
		"state":       state,
		"environment": obj{"type": "deployment_environment", "uuid": d.envUUID},
		"release": obj{
			"type": "deployment_release", "uuid": uuidFor("release:" + d.uuid), "name": fmt.Sprintf("#%d", d.build),
			"url":        pipeURL,
			"commit":     obj{"type": "commit", "hash": d.commit, "links": obj{"html": href(s.htmlURL(r.fullName, "commits", d.commit))}},
			"created_on": when(d.at.Add(-2 * time.Minute)),
			"pipeline":   obj{"type": "pipeline", "uuid": d.pipelineUUID},
		},
		"step":             obj{"type": "pipeline_step", "uuid": uuidFor("step:" + d.uuid)},
		"last_update_time": when(d.at),
	}
}

func (s *Server) userJSON(a model.Actor) obj {
	o := s.account(a)
	o["created_on"] = when(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	o["has_2fa_enabled"] = nil
	o["username"] = a.Nickname
	o["is_staff"] = false
	o["account_status"] = "active"
	o["location"] = nil
	return o
}

func errorBody(message string, fields map[string][]string) obj {
	e := obj{"message": message}
	if len(fields) > 0 {
		e["fields"] = fields
	}
	return obj{"type": "error", "error": e}
}

// diffStatHref is a pull request's links.diffstat: the repository diffstat
// of its revspec, where its diffstat endpoint redirects.
func (s *Server) diffStatHref(r *repo, p *pullRequest) string {
	spec := r.fullName + ":" + short(p.srcCommit) + "%0D" + short(p.dstCommit) + "?from_pullrequest_id=" + fmt.Sprint(p.id) + "&topic=true"
	return s.apiURL("repositories", r.fullName, "diffstat") + "/" + spec
}
