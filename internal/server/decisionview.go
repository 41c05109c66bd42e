package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// pageData turns a redacted record into what its page shows.
func (s *Server) pageData(rec *store.DecisionRecord) pageData {
	data := pageData{Rec: rec, Subject: subject(rec), Commit: short(rec.Commit),
		Verdict: verdict{Class: "idle", Text: rec.Summary}}
	switch rec.Kind {
	case model.SubjectPullRequest:
		data.Link = s.pullRequestURL(rec.Repository, rec.PR)
		var d rules.Decision
		if json.Unmarshal(rec.Decision, &d) == nil && (len(d.Rules) > 0 || d.Skipped != "") {
			data.PR = &d
			data.Verdict, data.Applied, data.Quiet = prView(&d)
		}
	case model.SubjectIssue:
		data.Link = s.issueURL(rec.IssueKey)
		var d rules.IssueDecision
		if json.Unmarshal(rec.Decision, &d) == nil && (len(d.Rules) > 0 || d.Skipped != "") {
			data.Verdict, data.Applied, data.Quiet = issueView(&d)
		}
	case model.SubjectGate:
		data.Gate = s.gatePageURL(rec.PublicID)
	}
	if data.PR == nil && data.Applied == nil && data.Quiet == nil && len(rec.Decision) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, rec.Decision, "", "  ") == nil {
			data.Raw = buf.String()
		}
	}
	return data
}

// prView: the verdict of a pull-request decision and its rules, those that
// applied first.
func prView(d *rules.Decision) (verdict, []ruleView, []ruleView) {
	var applied, quiet []ruleView
	var open []string
	for _, r := range d.Rules {
		v := ruleView{ID: r.RuleID, Role: r.RoleTitle(), Responsibility: r.Responsibility, Why: r.Why()}
		if !r.Triggered {
			v.Verdict, v.Class = "did not apply", "idle"
			quiet = append(quiet, v)
			continue
		}
		v.Verdict = r.Verdict()
		switch v.Verdict {
		case "met", "advisory":
			v.Class = "met"
		case "failed":
			v.Class = "unmet"
		default:
			v.Class = "wait"
		}
		for _, p := range r.Picks {
			v.Asked = append(v.Asked, askedView{Name: p.Name, Kept: p.Kept, Why: p.Why()})
		}
		if r.Kind != "unit-tests" && r.Required > 0 {
			v.Approvals = fmt.Sprintf("%d of %d", len(r.ApprovedBy), r.Required)
			names := r.ApprovedNames
			if len(names) == 0 {
				names = r.ApprovedBy // redacted: names already
			}
			if len(names) > 0 {
				v.Approvals += ": " + strings.Join(names, ", ")
			}
		}
		for _, n := range slices.Concat(prefixed("not asked: ", r.Excluded), prefixed("ignored: ", r.Ignored), r.Notes) {
			if !slices.Contains(v.Notes, n) {
				v.Notes = append(v.Notes, n)
			}
		}
		if !r.Met && r.Required > 0 || v.Verdict == "failed" {
			open = append(open, r.RuleID+cmpSuffix(r.Shortfall))
		}
		applied = append(applied, v)
	}
	vd := overall("pull request", d.Skipped, len(applied), open, "; ")
	if len(open) > 0 && slices.ContainsFunc(applied, func(r ruleView) bool { return r.Verdict == "failed" }) {
		vd.Class = "unmet"
	}
	return vd, applied, quiet
}

// issueView: the verdict of a Jira issue decision and its rules.
func issueView(d *rules.IssueDecision) (verdict, []ruleView, []ruleView) {
	var applied, quiet []ruleView
	var open []string
	for _, r := range d.Rules {
		v := ruleView{ID: r.RuleID, Role: orDefault(r.RoleTitle, r.Role), Responsibility: r.Responsibility, Why: r.Reason}
		if !r.Applies {
			v.Verdict, v.Class = "did not apply", "idle"
			quiet = append(quiet, v)
			continue
		}
		v.Verdict, v.Class = "met", "met"
		switch {
		case r.Violation:
			v.Verdict, v.Class = "violation", "unmet"
			open = append(open, r.RuleID)
		case r.NeedsTask:
			v.Verdict, v.Class = "task asked for", "wait"
			open = append(open, r.RuleID)
		}
		for _, p := range r.Picks {
			v.Asked = append(v.Asked, askedView{Name: p.Name, Why: p.Why()})
		}
		v.Notes = r.Notes
		applied = append(applied, v)
	}
	return overall("issue", d.Skipped, len(applied), open, ", "), applied, quiet
}

// overall is a decision's verdict from its rules: applied of them
// applied, open are still open (listed joined by sep); skipped says why
// none was checked.
func overall(subject, skipped string, applied int, open []string, sep string) verdict {
	switch {
	case applied == 0 && skipped != "":
		return verdict{Class: "idle", Text: "No rule was checked: " + skipped + "."}
	case applied == 0:
		return verdict{Class: "idle", Text: "No rule applied to this " + subject + "."}
	case len(open) > 0:
		return verdict{Class: "wait", Text: fmt.Sprintf("Not yet: %d of %d %s that applied %s open: %s.",
			len(open), applied, plural(applied, "rule", "rules"), plural(len(open), "is", "are"), strings.Join(open, sep))}
	}
	return verdict{Class: "met", Text: "Every rule that applied is met."}
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// cmpSuffix is what an open rule still needs, said once: in the verdict.
func cmpSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pullRequestURL is the pull request's page on Bitbucket.
func (s *Server) pullRequestURL(repo string, pr int) string {
	if repo == "" || pr <= 0 || strings.Count(repo, "/") != 1 {
		return ""
	}
	ws, slug, _ := strings.Cut(repo, "/")
	return s.bitbucketWeb() + "/" + url.PathEscape(ws) + "/" + url.PathEscape(slug) + "/pull-requests/" + strconv.Itoa(pr)
}

// issueURL is the issue's page on Jira (none without a Jira site).
func (s *Server) issueURL(key string) string {
	if key == "" || s.opt.JiraURL == "" {
		return ""
	}
	return strings.TrimRight(s.opt.JiraURL, "/") + "/browse/" + url.PathEscape(key)
}

// bitbucketWeb is Bitbucket's web root: bitbucket.org for the cloud API,
// or the API root without /2.0 (a sandbox that serves both).
func (s *Server) bitbucketWeb() string {
	api := strings.TrimRight(s.opt.BitbucketURL, "/")
	switch {
	case api == "" || strings.HasPrefix(api, "https://api.bitbucket.org"):
		return "https://bitbucket.org"
	case strings.HasSuffix(api, "/2.0"):
		return strings.TrimSuffix(api, "/2.0")
	}
	return api
}

func (s *Server) gatePageURL(publicID string) string {
	return store.GateURL(s.opt.PublicURL, publicID)
}
