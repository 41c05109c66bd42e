package jiraflow

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/jira"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// storyMarker ends rolekeeper's story-points comments, so an existing one
// is recognised even if the store lost its mark.
const storyMarker = "(rolekeeper: story-points)"

// releaseMarker ends the comment on an issue released without its test
// plan.
const releaseMarker = "(rolekeeper: test-plan)"

// findComment returns the id of an issue's comment that contains every
// part ("" when none does).
func (h *Handler) findComment(ctx context.Context, key string, parts ...string) (string, error) {
	comments, err := h.client.ListComments(ctx, key)
	if err != nil {
		return "", err
	}
	for _, c := range comments {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(c.Body, p)
		}
		if all {
			return c.ID, nil
		}
	}
	return "", nil
}

// ensureTask creates the task a test-plan or design-review rule asks for,
// at most once per issue: the issue was just re-read and has none, and a
// KV mark taken before creating guards against redeliveries, concurrent
// workers and restarts. Where the project has no sub-task type the task
// is an issue linked to the parent.
func (h *Handler) ensureTask(ctx context.Context, st *projectState, is model.Issue, r rules.IssueRuleResult) (string, error) {
	mark := markTestPlan + is.Key
	switch r.Kind {
	case string(roles.KindTestPlan):
	case string(roles.KindDesignReview):
		mark = markDesignReview + is.Key
	default: // kinds of the registry
		mark = markTask + r.Kind + ":" + is.Key
	}
	assignee, who := "", "unassigned"
	if len(r.Picks) > 0 {
		assignee, who = r.Picks[0].AccountID, r.Picks[0].Name
	}
	if h.dryRun {
		h.count(r.Kind, "task", "dry_run")
		return fmt.Sprintf("would create %q for %s", r.TaskSummary, who), nil
	}
	ok, done, err := h.claim(ctx, mark)
	if err != nil {
		return "", err
	}
	if !ok {
		// Created before, not yet visible on the issue (or removed by a
		// person: never created twice). A link may be missing.
		if !st.meta.HasSubtasks {
			if err := h.client.LinkIssues(ctx, h.linkType, done, is.Key); err != nil && !isNotFound(err) {
				h.count(r.Kind, "link", "error")
				return "", err
			}
			h.count(r.Kind, "link", "done")
		}
		return "already created " + done, nil
	}

	req := jira.CreateIssueRequest{Project: st.meta.Project, IssueTypeID: h.taskTypeID(st.meta), Summary: r.TaskSummary,
		Description: h.taskDescription(is, r), AssigneeAccountID: assignee}
	if st.meta.HasSubtasks {
		req.Parent = is.Key
	}
	var created string
	if strings.HasPrefix(done, maybePrefix) {
		// The last attempt may have created it: look first.
		if created, err = h.findTask(ctx, st, is.Key, req.Summary); err != nil {
			h.failed(ctx, mark, err)
			return "", err
		}
	}
	if created != "" {
		h.log.Info("jira task found after an uncertain create", zap.String("issue", is.Key), zap.String("task", created))
		if err := h.store.Set(ctx, mark, created); err != nil {
			return "", err
		}
		return h.linkCreated(ctx, st, is, r, created, fmt.Sprintf("found %s %q", created, r.TaskSummary))
	}
	created, err = h.client.CreateIssue(ctx, req)
	if err != nil && assignee != "" && isPermanent(err) && strings.Contains(err.Error(), "assignee") {
		// The person cannot be assigned in Jira: create it unassigned
		// rather than not at all.
		h.log.Warn("assignee refused by jira", zap.String("issue", is.Key), zap.String("rule", r.RuleID), zap.Error(err))
		req.AssigneeAccountID, who = "", "unassigned (Jira refused "+who+")"
		created, err = h.client.CreateIssue(ctx, req)
	}
	if err != nil {
		h.failed(ctx, mark, err)
		h.count(r.Kind, "task", "error")
		if isPermanent(err) {
			// An issue type or field may have changed on the site.
			h.invalidate(st.meta.Project)
		}
		return "", fmt.Errorf("create %q on %s: %w", r.TaskSummary, is.Key, err)
	}
	if err := h.store.Set(ctx, mark, created); err != nil {
		return "", err
	}
	h.count(r.Kind, "task", "done")
	h.log.Info("jira task created", zap.String("issue", is.Key), zap.String("rule", r.RuleID), zap.String("task", created))
	return h.linkCreated(ctx, st, is, r, created, fmt.Sprintf("created %s %q for %s", created, r.TaskSummary, who))
}

// linkCreated links a task to its issue where the project has no
// sub-tasks.
func (h *Handler) linkCreated(ctx context.Context, st *projectState, is model.Issue, r rules.IssueRuleResult, created, out string) (string, error) {
	if st.meta.HasSubtasks {
		return out, nil
	}
	if err := h.client.LinkIssues(ctx, h.linkType, created, is.Key); err != nil {
		h.count(r.Kind, "link", "error")
		return out, fmt.Errorf("link %s to %s: %w", created, is.Key, err)
	}
	h.count(r.Kind, "link", "done")
	return out + ", linked", nil
}

// findTask looks for a task rolekeeper may have created for an issue: a
// sub-task of that summary (read from the issue itself, which Jira keeps
// current), or where there are no sub-tasks an issue of that summary whose
// description names the issue (a search: Jira's index may lag a second).
func (h *Handler) findTask(ctx context.Context, st *projectState, parent, summary string) (string, error) {
	if st.meta.HasSubtasks {
		is, err := h.client.GetIssue(ctx, parent)
		if err != nil {
			return "", err
		}
		for _, s := range is.Subtasks {
			if s.Summary == summary {
				return s.Key, nil
			}
		}
		return "", nil
	}
	jql := fmt.Sprintf("project = %s AND summary ~ %s ORDER BY created", jqlQuote(st.meta.Project), jqlQuote(summary))
	found, err := h.client.Search(ctx, jql, []string{"summary", "description"}, 1)
	if err != nil {
		return "", err
	}
	for _, f := range found {
		if f.Summary == summary && strings.Contains(f.Description, parent) {
			return f.Key, nil
		}
	}
	return "", nil
}

func (h *Handler) taskDescription(is model.Issue, r rules.IssueRuleResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Created by rolekeeper for %s (%s %q).\n\n", is.Key, is.Type, is.Summary)
	fmt.Fprintf(&b, "Responsibility of the %s: %q (rule %s).\n", r.RoleTitle, r.Responsibility, r.RuleID)
	if len(r.Picks) > 0 {
		fmt.Fprintf(&b, "%s.\n", r.Picks[0].Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "Note: %s.\n", n)
	}
	if h.publicURL != "" {
		fmt.Fprintf(&b, "\n%s\n", h.publicURL)
	}
	return b.String()
}

// storyPoints records the finding and comments once on an issue that
// breaks the story-points rule (of one role or several).
func (h *Handler) storyPoints(ctx context.Context, is model.Issue, team string, vs []rules.IssueRuleResult) (string, error) {
	f, text := rules.StoryPointsFinding(is, team, vs)
	f.URL, f.OccurredAt = h.browse(is), h.now()
	if _, err := h.store.AddFinding(ctx, f); err != nil {
		return "", err
	}
	h.count(string(roles.KindStoryPoints), "finding", "done")
	if h.dryRun {
		h.count(string(roles.KindStoryPoints), "comment", "dry_run")
		return "would comment on " + is.Key, nil
	}
	mark := markStoryPoints + is.Key
	ok, _, err := h.claim(ctx, mark)
	if err != nil {
		return "", err
	}
	if !ok {
		return "commented before", nil
	}
	// The store may have been reset: the marker says whether it was said.
	comments, err := h.client.ListComments(ctx, is.Key)
	if err != nil {
		h.release(ctx, mark)
		return "", err
	}
	for _, c := range comments {
		if strings.Contains(c.Body, storyMarker) {
			return "commented before", h.store.Set(ctx, mark, c.ID)
		}
	}
	body := text + "\n\n" + storyMarker
	id, err := h.client.AddComment(ctx, is.Key, body)
	if err != nil {
		h.release(ctx, mark)
		h.count(string(roles.KindStoryPoints), "comment", "error")
		return "", fmt.Errorf("comment on %s: %w", is.Key, err)
	}
	h.count(string(roles.KindStoryPoints), "comment", "done")
	return "commented on " + is.Key, h.store.Set(ctx, mark, id)
}

// ruleFinding records the finding of a registry kind (one key scheme:
// rules.FindingKey) and leaves its comment once: a KV mark guards
// redeliveries and workers, the comment's marker a store that lost it.
// Several rules with the same finding (two roles hold the line) make one
// finding and one comment naming every role.
func (h *Handler) ruleFinding(ctx context.Context, is model.Issue, team string, vs []rules.IssueRuleResult) (string, error) {
	first := vs[0]
	var holders []string
	for _, v := range vs {
		holders = append(holders, fmt.Sprintf("the %s (%q)", v.RoleTitle, v.Responsibility))
	}
	f := model.Finding{Key: first.FindingKey, Kind: first.Kind, RuleID: first.RuleID, Team: team,
		Subject: model.SubjectIssue, Ref: is.Key, URL: h.browse(is), Reason: first.Kind + ": " + first.Reason,
		OccurredAt: h.now(), Details: "responsibility of " + strings.Join(holders, ", ")}
	if _, err := h.store.AddFinding(ctx, f); err != nil {
		return "", err
	}
	h.count(first.Kind, "finding", "done")
	if first.Comment == "" {
		return "recorded " + first.FindingKey, nil
	}
	if h.dryRun {
		h.count(first.Kind, "comment", "dry_run")
		return "would comment on " + is.Key, nil
	}
	mark := markFinding + first.FindingKey
	ok, _, err := h.claim(ctx, mark)
	if err != nil {
		return "", err
	}
	if !ok {
		return "commented before", nil
	}
	marker := rules.IssueMarker(first.Kind)
	if marker != "" {
		id, err := h.findComment(ctx, is.Key, marker)
		if err != nil {
			h.release(ctx, mark)
			return "", err
		}
		if id != "" {
			return "commented before", h.store.Set(ctx, mark, id)
		}
	}
	body := first.Comment
	if len(vs) > 1 {
		body += "\n\nThis is the responsibility of " + strings.Join(holders, " and ") + "."
	}
	if marker != "" {
		body += "\n\n" + marker
	}
	id, err := h.client.AddComment(ctx, is.Key, body)
	if err != nil {
		h.release(ctx, mark)
		h.count(first.Kind, "comment", "error")
		return "", fmt.Errorf("comment on %s: %w", is.Key, err)
	}
	h.count(first.Kind, "comment", "done")
	return "commented on " + is.Key, h.store.Set(ctx, mark, id)
}

func (h *Handler) browse(is model.Issue) string {
	if is.URL != "" {
		return is.URL
	}
	return h.client.BrowseURL(is.Key)
}

// processRelease checks the issues of a released version: those of the
// test-plan rule's types whose test plan is missing or not done are
// findings, and each gets one comment saying so. Versions of projects no
// team owns cost no call beyond discovering the owned projects.
func (h *Handler) processRelease(ctx context.Context, org *roles.Org, v model.Version, trig trigger) error {
	// The webhook names the project by id only: match it against the
	// owned projects' discovery.
	project := strings.ToUpper(v.Project)
	var discoverErr error
	if project == "" {
		for _, p := range org.Projects() {
			st, err := h.project(ctx, p)
			if err != nil {
				discoverErr = err
				continue
			}
			if st.meta.ProjectID != "" && st.meta.ProjectID == v.ProjectID {
				project = st.meta.Project
				break
			}
		}
	}
	team := org.TeamForProject(project)
	if project == "" || team == nil {
		if discoverErr != nil {
			return discoverErr // it may be the undiscovered project's
		}
		h.log.Debug("version of a project no team owns", zap.String("version", v.ID))
		return nil
	}
	plans := rules.ReleaseRules(org, team.ID)
	typeSet := map[string]bool{}
	var types []string
	for _, r := range plans {
		for _, t := range rules.IssueTypes(r) {
			if k := strings.ToLower(t); !typeSet[k] {
				typeSet[k] = true
				types = append(types, jqlQuote(t))
			}
		}
	}
	if len(plans) == 0 {
		return nil
	}
	st, err := h.project(ctx, project)
	if err != nil {
		return err
	}
	// A version id goes unquoted: quoted, JQL would read it as a name.
	version := v.ID
	if strings.Trim(version, "0123456789") != "" || version == "" {
		version = jqlQuote(v.ID)
	}
	jql := fmt.Sprintf("project = %s AND fixVersion = %s AND issuetype in (%s)", jqlQuote(st.meta.Project), version, strings.Join(types, ", "))
	issues, err := h.client.Search(ctx, jql, []string{"summary", "issuetype", "project", "status", "subtasks", "issuelinks", "fixVersions"}, 10)
	if err != nil {
		return err
	}
	if v.Name == "" {
		for _, is := range issues {
			for _, fv := range is.FixVersions {
				if fv.ID == v.ID {
					v.Name = fv.Name
				}
			}
		}
	}
	var firstErr error
	for _, is := range issues {
		if is.Subtask {
			continue
		}
		rule := rules.ReleaseRule(plans, is.Type)
		if rule == nil {
			continue
		}
		if err := h.releaseFinding(ctx, org, team.ID, rule, v, is, trig); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func (h *Handler) releaseFinding(ctx context.Context, org *roles.Org, team string, rule *roles.Rule, v model.Version, is model.Issue, trig trigger) error {
	verdict, due := rules.ReleaseFinding(org, team, rule, v, is)
	if !due {
		return nil
	}
	f, reason := verdict.Finding, verdict.Finding.Reason
	f.URL, f.OccurredAt = h.browse(is), h.now()
	if _, err := h.store.AddFinding(ctx, f); err != nil {
		return err
	}
	h.count(string(roles.KindTestPlan), "finding", "done")
	outcome := "finding recorded"
	defer func() { h.saveRelease(ctx, team, is, v, reason, trig, outcome) }()
	if h.dryRun {
		outcome = "would comment on " + is.Key
		h.count(string(roles.KindTestPlan), "comment", "dry_run")
		return nil
	}
	mark := markReleased + v.ID + ":" + is.Key
	ok, prev, err := h.claim(ctx, mark)
	if err != nil {
		return err
	}
	if !ok {
		outcome = "commented before"
		return nil
	}
	if strings.HasPrefix(prev, maybePrefix) {
		// The last attempt may have posted it: look first.
		id, err := h.findComment(ctx, is.Key, verdict.Head, releaseMarker)
		if err != nil {
			h.failed(ctx, mark, err)
			return err
		}
		if id != "" {
			outcome = "commented before"
			return h.store.Set(ctx, mark, id)
		}
	}
	body := verdict.Comment + "\n\n" + releaseMarker
	id, err := h.client.AddComment(ctx, is.Key, body)
	if err != nil {
		h.failed(ctx, mark, err)
		h.count(string(roles.KindTestPlan), "comment", "error")
		outcome = "error: " + err.Error()
		return fmt.Errorf("comment on %s: %w", is.Key, err)
	}
	h.count(string(roles.KindTestPlan), "comment", "done")
	outcome = "commented on " + is.Key
	return h.store.Set(ctx, mark, id)
}

func (h *Handler) saveRelease(ctx context.Context, team string, is model.Issue, v model.Version, reason string, trig trigger, outcome string) {
	d := rules.IssueDecision{Issue: is.Key, Project: is.Project, Team: team, EvaluatedAt: h.now(),
		Rules: []rules.IssueRuleResult{{Kind: string(roles.KindTestPlan), Applies: true, Violation: true, Reason: reason}}}
	h.saveDecision(ctx, d, rules.IssueSnapshot{Issue: is, Now: h.now()}, trig, outcome+" (version "+v.ID+")")
}
