package bitbucket

import (
	"strings"
)

// EndpointTemplate names a request for metrics, errors and call accounting
// without its ids, e.g. "GET /repositories/{ws}/{repo}/pullrequests/{id}/diffstat".
// rel is the escaped URL path below the API root (below ".../2.0"). Unknown
// segments become "{param}", so the label set stays bounded whatever the
// path.
func EndpointTemplate(method, rel string) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte(' ')
	segs := strings.Split(strings.Trim(rel, "/"), "/")
	prev := ""
	n := 0
	add := func(s string) {
		b.WriteByte('/')
		b.WriteString(s)
		n++
	}
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		if s == "" {
			continue
		}
		switch prev {
		case "repositories":
			add("{ws}")
			if i+1 < len(segs) && segs[i+1] != "" {
				add("{repo}")
				i++
			}
			prev = "{repo}"
			continue
		case "workspaces":
			add("{ws}")
		case "users":
			add("{user}")
		case "pullrequests":
			if isLiteral(s) {
				add(s)
				prev = s
				continue
			}
			add("{id}")
		case "comments":
			add("{comment_id}")
		case "tasks":
			add("{task_id}")
		case "commit":
			add("{hash}")
		case "build":
			add("{key}")
		case "deployments", "environments", "pipelines", "steps", "hooks", "default-reviewers", "variables":
			add("{uuid}")
		case "diffstat", "diff", "patch", "src", "commits", "filehistory", "branches", "tags":
			add("{spec}") // the rest is one revision spec or ref name, slashes included
			return b.String()
		default:
			if isLiteral(s) {
				add(s)
				prev = s
				continue
			}
			add("{param}")
		}
		prev = ""
	}
	if n == 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// isLiteral reports the path words of the Bitbucket Cloud API that name
// resources rather than identify them.
func isLiteral(s string) bool {
	switch s {
	case "repositories", "workspaces", "users", "user", "pullrequests", "activity", "comments",
		"diffstat", "diff", "patch", "statuses", "build", "commit", "commits", "approve",
		"request-changes", "merge", "decline", "participants", "tasks", "default-reviewers",
		"effective-default-reviewers", "deployments", "environments", "pipelines", "steps", "hooks",
		"refs", "branches", "tags", "src", "emails", "permissions", "members", "projects",
		"filehistory", "deployments_config", "variables", "log":
		return true
	}
	return false
}
