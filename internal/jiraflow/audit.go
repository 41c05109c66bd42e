package jiraflow

import (
	"context"
	"fmt"
	"strings"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
)

// searchFields are what the audit's searches return: enough to evaluate
// without reading each issue again.
func searchFields(st *projectState) []string {
	f := []string{"summary", "description", "issuetype", "project", "status", "reporter", "fixVersions", "subtasks", "issuelinks", "labels", "created"}
	if st.meta.HasPriority {
		f = append(f, "priority")
	}
	if st.meta.StoryPointsField != "" {
		f = append(f, st.meta.StoryPointsField)
	}
	if st.meta.SprintField != "" {
		f = append(f, st.meta.SprintField)
	}
	return f
}

// AuditIssues is the scheduled net for what webhooks missed: in every
// owned project, issues of the test-plan and design-review types still
// open without their task get one (through the same idempotent path as
// events), stories in open sprints without points or user story are
// commented and reported, and versions released within the window are
// checked for test plans not done. Budget, when set, may stop it early.
func (h *Handler) AuditIssues(ctx context.Context) error {
	org := h.roles.Get()
	if org == nil {
		return nil
	}
	trig := trigger{kind: "audit"}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, project := range org.Projects() {
		team := org.TeamForProject(project)
		rs := rules.JiraRules(org, team.ID)
		if len(rs) == 0 {
			continue
		}
		if !h.spend(3) {
			return firstErr
		}
		st, err := h.project(ctx, project)
		if err != nil {
			keep(err)
			continue
		}
		byKind := map[roles.Kind][]string{}
		for _, r := range rs {
			for _, t := range rules.IssueTypes(r) {
				byKind[r.Kind] = appendType(byKind[r.Kind], t)
			}
		}
		for _, kind := range auditKinds(rs) {
			types := byKind[kind]
			if len(types) == 0 && !auditsEveryType(kind) {
				continue
			}
			if !h.spend(10) {
				return firstErr
			}
			jql := fmt.Sprintf("project = %s AND issuetype in (%s) AND statusCategory != Done", jqlQuote(st.meta.Project), strings.Join(types, ", "))
			if len(types) == 0 {
				jql = fmt.Sprintf("project = %s AND statusCategory != Done", jqlQuote(st.meta.Project))
			}
			if kind == rules.KindRequirements {
				// Only stories in progress can break it.
				jql = fmt.Sprintf("project = %s AND issuetype in (%s) AND statusCategory = \"In Progress\"", jqlQuote(st.meta.Project), strings.Join(types, ", "))
			}
			if kind == roles.KindStoryPoints {
				if st.meta.SprintField == "" {
					continue // no Jira Software: no sprints
				}
				jql = fmt.Sprintf("project = %s AND issuetype in (%s) AND sprint in openSprints()", jqlQuote(st.meta.Project), strings.Join(types, ", "))
			}
			issues, err := h.client.Search(ctx, jql, searchFields(st), 10)
			if err != nil {
				keep(err)
				continue
			}
			for _, is := range issues {
				keep(h.auditIssue(ctx, org, st, is, trig))
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		keep(h.auditReleases(ctx, org, st, trig))
	}
	return firstErr
}

// auditKinds are the Jira kinds the audit searches for, in a fixed order:
// the older kinds, then the registry's Jira kinds the team's rules use.
func auditKinds(rs []*roles.Rule) []roles.Kind {
	out := []roles.Kind{roles.KindTestPlan, roles.KindDesignReview, roles.KindStoryPoints}
	for _, k := range rules.IssueKinds() {
		for _, r := range rs {
			if r.Kind == k {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// auditsEveryType: a kind whose rules name no issue type looks at every
// type (none of the shipped kinds leaves it empty, but a file may).
func auditsEveryType(k roles.Kind) bool {
	switch k {
	case roles.KindTestPlan, roles.KindDesignReview, roles.KindStoryPoints:
		return false
	}
	return true
}

// processSprint checks the stories of a sprint that started or changed at
// once, instead of waiting for the hourly audit: per owned project with a
// story-points rule, one search for the sprint's stories, then the same
// path as the audit. The payload's state is a hint: a sprint it says is
// future or closed is not read (the rule judges active sprints only, and
// sprint_started follows when it starts); the stories' own sprint states,
// read from Jira, decide.
func (h *Handler) processSprint(ctx context.Context, org *roles.Org, sp model.Sprint, trig trigger) error {
	if sp.State == "future" || sp.State == "closed" {
		return nil
	}
	var firstErr error
	for _, project := range org.Projects() {
		team := org.TeamForProject(project)
		var types []string
		for _, r := range rules.JiraRules(org, team.ID) {
			if r.Kind != roles.KindStoryPoints {
				continue
			}
			for _, t := range rules.IssueTypes(r) {
				types = appendType(types, t)
			}
		}
		if len(types) == 0 {
			continue
		}
		st, err := h.project(ctx, project)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if st.meta.SprintField == "" {
			continue // no Jira Software on this project: no sprints
		}
		jql := fmt.Sprintf("project = %s AND issuetype in (%s) AND sprint = %d", jqlQuote(st.meta.Project), strings.Join(types, ", "), sp.ID)
		issues, err := h.client.Search(ctx, jql, searchFields(st), 10)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, is := range issues {
			d := rules.EvaluateIssue(org, h.snapshot(st, is))
			if !d.Acting() {
				continue
			}
			if err := h.actOnFound(ctx, org, st, is, d, trig); err != nil && firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return firstErr
}

// auditIssue evaluates a search result and acts only when it asks for
// something: task creation re-reads the issue first, as events do.
func (h *Handler) auditIssue(ctx context.Context, org *roles.Org, st *projectState, is model.Issue, trig trigger) error {
	d := rules.EvaluateIssue(org, h.snapshot(st, is))
	if !d.Acting() {
		return nil
	}
	if !h.spend(5) {
		return nil
	}
	return h.actOnFound(ctx, org, st, is, d, trig)
}

// actOnFound acts on a search result whose decision asks for something:
// task creation re-reads the issue first, as events do.
func (h *Handler) actOnFound(ctx context.Context, org *roles.Org, st *projectState, is model.Issue, d rules.IssueDecision, trig trigger) error {
	if d.NeedsAssignment() {
		return h.processIssue(ctx, org, st.meta.Project, is.Key, trig)
	}
	return h.act(ctx, org, st, is, trig)
}

func (h *Handler) auditReleases(ctx context.Context, org *roles.Org, st *projectState, trig trigger) error {
	if !h.spend(1) {
		return nil
	}
	versions, err := h.client.ProjectVersions(ctx, st.meta.Project)
	if err != nil {
		return err
	}
	since := h.now().Add(-h.window)
	var firstErr error
	for _, v := range versions {
		if !v.Released || v.ReleaseDate.IsZero() || v.ReleaseDate.Before(since) {
			continue
		}
		if !h.spend(3) {
			return firstErr
		}
		v.Project = st.meta.Project
		if err := h.processRelease(ctx, org, v, trig); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// spend asks the budget for calls; without a budget everything is allowed.
func (h *Handler) spend(calls int) bool {
	if h.budget == nil || h.budget(calls) {
		return true
	}
	h.log.Info("jira audit stopped: call budget spent")
	return false
}

func appendType(list []string, t string) []string {
	q := jqlQuote(t)
	for _, x := range list {
		if strings.EqualFold(x, q) {
			return list
		}
	}
	return append(list, q)
}
