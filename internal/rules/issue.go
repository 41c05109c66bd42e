package rules

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Summary prefixes of the sub-tasks (or linked issues) the Jira rules
// create; an existing one is recognised by them, case-insensitively.
const (
	TestPlanPrefix     = "Test plan:"
	DesignReviewPrefix = "Design review:"
)

// IssueSnapshot is what EvaluateIssue needs about a Jira issue, read from
// Jira just before (never from a webhook payload alone).
type IssueSnapshot struct {
	Issue model.Issue `json:"issue"`
	// StoryPointsField says the site has a story-points field. Without
	// one, the story-points rule checks the user story only.
	StoryPointsField bool `json:"story_points_field"`
	// PriorityField says the site shows priorities. Without one, the
	// backlog rule checks untriaged bugs only.
	PriorityField bool `json:"priority_field,omitempty"`
	// Load is the number of open sub-tasks assigned per account id; only
	// needed when a task is to be assigned.
	Load map[string]int `json:"load,omitempty"`
	Now  time.Time      `json:"now"`
}

// IssueDecision is what the Jira rules say about one issue.
type IssueDecision struct {
	Issue   string `json:"issue"`
	Project string `json:"project"`
	Team    string `json:"team,omitempty"`
	// Skipped says why no rule applies ("project X is owned by no team",
	// "PAY-3 is a sub-task"); empty otherwise.
	Skipped     string            `json:"skipped,omitempty"`
	Rules       []IssueRuleResult `json:"rules"`
	EvaluatedAt time.Time         `json:"evaluated_at"`
}

// IssueRuleResult is one Jira rule's verdict on an issue.
type IssueRuleResult struct {
	RuleID         string `json:"rule_id"`
	Kind           string `json:"kind"`
	Role           string `json:"role"`
	RoleTitle      string `json:"role_title"`
	Responsibility string `json:"responsibility"`

	Applies bool   `json:"applies"` // the rule concerns this issue
	Reason  string `json:"reason"`  // why it does or does not, and what is needed

	// test-plan and design-review: the task the rule asks for.
	TaskSummary  string   `json:"task_summary,omitempty"` // "Test plan: <issue summary>"
	Existing     string   `json:"existing,omitempty"`     // key of the task found
	ExistingDone bool     `json:"existing_done,omitempty"`
	NeedsTask    bool     `json:"needs_task,omitempty"` // none found: create one
	Picks        []Pick   `json:"picks,omitempty"`      // assignee for a new task
	Notes        []string `json:"notes,omitempty"`

	// story-points
	Sprint           string `json:"sprint,omitempty"` // the open sprint
	MissingPoints    bool   `json:"missing_points,omitempty"`
	MissingUserStory bool   `json:"missing_user_story,omitempty"`
	Violation        bool   `json:"violation,omitempty"` // comment and report

	// Kinds of the registry (kinds.go): the finding's key, the comment to
	// leave once (without its marker), and the role a task goes to when it
	// is not the rule's own.
	FindingKey string `json:"finding_key,omitempty"`
	Comment    string `json:"comment,omitempty"`
	AssignRole string `json:"assign_role,omitempty"`
}

// NeedsAssignment reports whether a task is to be created, so the caller
// knows to read the load before evaluating again.
func (d IssueDecision) NeedsAssignment() bool {
	for _, r := range d.Rules {
		if r.NeedsTask {
			return true
		}
	}
	return false
}

// Acting reports whether any rule asks for an action (a task or a comment).
func (d IssueDecision) Acting() bool {
	for _, r := range d.Rules {
		if r.NeedsTask || r.Violation {
			return true
		}
	}
	return false
}

// TaskPrefix returns the summary prefix of the task a rule kind creates
// ("" for kinds without one).
func TaskPrefix(k roles.Kind) string {
	if i, ok := kindInfo(k); ok && i.Issue != nil {
		return i.Issue.TaskPrefix
	}
	switch k {
	case roles.KindTestPlan:
		return TestPlanPrefix
	case roles.KindDesignReview:
		return DesignReviewPrefix
	}
	return ""
}

// IssueTypes returns the issue types a Jira rule applies to, defaults
// filled in.
func IssueTypes(r *roles.Rule) []string {
	if i, ok := kindInfo(r.Kind); ok && i.Issue != nil {
		return i.Issue.Types(r)
	}
	if len(r.IssueTypes) > 0 {
		return r.IssueTypes
	}
	switch r.Kind { // the contract's defaults
	case roles.KindTestPlan:
		return []string{"Epic"}
	case roles.KindDesignReview:
		return []string{"Design"}
	case roles.KindStoryPoints:
		return []string{"Story"}
	}
	return nil
}

// TypeMatches reports whether an issue type is among the rule's types,
// case-insensitively.
func TypeMatches(r *roles.Rule, issueType string) bool {
	for _, t := range IssueTypes(r) {
		if strings.EqualFold(strings.TrimSpace(t), strings.TrimSpace(issueType)) {
			return true
		}
	}
	return false
}

// FindTask returns the sub-task or linked issue whose summary starts with
// the prefix; sub-tasks first.
func FindTask(is model.Issue, prefix string) (model.IssueRef, bool) {
	for _, list := range [][]model.IssueRef{is.Subtasks, is.Links} {
		for _, r := range list {
			if hasPrefixFold(strings.TrimSpace(r.Summary), prefix) {
				return r, true
			}
		}
	}
	return model.IssueRef{}, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// OpenSprint returns the issue's active sprint.
func OpenSprint(is model.Issue) (model.Sprint, bool) {
	for _, s := range is.Sprints {
		if strings.EqualFold(s.State, "active") {
			return s, true
		}
	}
	return model.Sprint{}, false
}

// JiraRules returns the test-plan, design-review and story-points rules
// applying to a team, in file order.
func JiraRules(org *roles.Org, team string) []*roles.Rule {
	var out []*roles.Rule
	for _, r := range org.Rules {
		switch r.Kind {
		case roles.KindTestPlan, roles.KindDesignReview, roles.KindStoryPoints:
			if r.AppliesToTeam(team) {
				out = append(out, r)
			}
		default:
			if i, ok := kindInfo(r.Kind); ok && i.Issue != nil && r.AppliesToTeam(team) {
				out = append(out, r)
			}
		}
	}
	return out
}

// EvaluateIssue decides which Jira rules apply to an issue and what they
// need: the team is the owner of the issue's project; test-plan and
// design-review need a task (sub-task or linked issue named with their
// prefix) assigned to a holder of the rule's role, least loaded and not
// away; story-points wants an issue in an open sprint to have story points
// (when the site has the field) and a user story in its description. It
// does no I/O and the same snapshot always gives the same decision.
func EvaluateIssue(org *roles.Org, s IssueSnapshot) IssueDecision {
	is := s.Issue
	d := IssueDecision{Issue: is.Key, Project: is.Project, EvaluatedAt: s.Now, Rules: []IssueRuleResult{}}
	if org == nil {
		d.Skipped = "no roles loaded"
		return d
	}
	team := org.TeamForProject(is.Project)
	if team == nil {
		d.Skipped = "project " + is.Project + " is owned by no team"
		return d
	}
	d.Team = team.ID
	if is.Subtask {
		d.Skipped = is.Key + " is a sub-task"
		return d
	}
	claimed := map[string]string{} // task prefix → rule id that asks for it
	for _, r := range JiraRules(org, team.ID) {
		res := IssueRuleResult{RuleID: r.ID, Kind: string(r.Kind), Role: r.Role, RoleTitle: r.Role, Responsibility: r.Responsibility}
		role := org.Role(r.Role)
		if role != nil && role.Title != "" {
			res.RoleTitle = role.Title
		}
		if types := IssueTypes(r); len(types) > 0 && !TypeMatches(r, is.Type) {
			res.Reason = fmt.Sprintf("%s is a %s, not one of %s", is.Key, orDefault(is.Type, "issue of unknown type"), strings.Join(IssueTypes(r), ", "))
			d.Rules = append(d.Rules, res)
			continue
		}
		res.Applies = true
		switch r.Kind {
		case roles.KindTestPlan, roles.KindDesignReview:
			evaluateTask(org, team, role, r, s, &res, claimed)
		case roles.KindStoryPoints:
			evaluateStoryPoints(r, s, &res)
		default:
			if i, ok := kindInfo(r.Kind); ok && i.Issue != nil {
				i.Issue.Evaluate(issueCtx{org: org, team: team, role: role, rule: r, snap: s, claimed: claimed}, &res)
			}
		}
		d.Rules = append(d.Rules, res)
	}
	return d
}

func evaluateTask(org *roles.Org, team *roles.Team, role *roles.Role, r *roles.Rule, s IssueSnapshot, res *IssueRuleResult, claimed map[string]string) {
	evaluateTaskFor(org, team, role, r.Role, r, TaskPrefix(r.Kind), s, res, claimed)
}

// evaluateTaskFor asks for a task named with prefix, assigned to a holder
// of roleID (the rule's role, or the one it assigns to).
func evaluateTaskFor(org *roles.Org, team *roles.Team, role *roles.Role, roleID string, r *roles.Rule, prefix string, s IssueSnapshot, res *IssueRuleResult, claimed map[string]string) {
	is := s.Issue
	what := strings.ToLower(strings.TrimSuffix(prefix, ":"))
	res.TaskSummary = prefix + " " + strings.TrimSpace(is.Summary)
	if ref, ok := FindTask(is, prefix); ok {
		res.Existing, res.ExistingDone = ref.Key, ref.StatusDone
		state := orDefault(ref.Status, "status unknown")
		res.Reason = fmt.Sprintf("%s %s exists (%s)", what, ref.Key, state)
		return
	}
	if other, ok := claimed[prefix]; ok {
		res.Reason = fmt.Sprintf("%s without %s %s: asked for by rule %s", is.Key, article(what), what, other)
		return
	}
	claimed[prefix] = r.ID
	res.NeedsTask = true
	opt := ChooseOptions{Load: s.Load, LoadNoun: "open tasks", Now: s.Now, Seed: is.Key + "/" + r.ID, Why: issueRoleWhy(role, roleID, team)}
	if r.Kind == roles.KindDesignReview && is.Reporter != nil && is.Reporter.AccountID != "" {
		opt.Exclude, opt.ExcludeWhy = []string{is.Reporter.AccountID}, "reported the design"
	}
	res.Picks, res.Notes = Choose(org.Holders(roleID, team.ID), 1, opt)
	who := "unassigned: nobody can take it"
	if len(res.Picks) > 0 {
		who = "for " + res.Picks[0].Name
	}
	res.Reason = fmt.Sprintf("%s %s has no %s: %q is needed, %s (%s: %q)",
		orDefault(is.Type, "issue"), is.Key, what, truncateText(res.TaskSummary, 80), who, res.RoleTitle, r.Responsibility)
}

func evaluateStoryPoints(r *roles.Rule, s IssueSnapshot, res *IssueRuleResult) {
	is := s.Issue
	sp, ok := OpenSprint(is)
	if !ok {
		res.Applies = false
		res.Reason = is.Key + " is in no open sprint"
		return
	}
	res.Sprint = sp.Name
	res.MissingPoints = s.StoryPointsField && is.StoryPoints == nil
	pattern := r.UserStoryPattern
	if pattern == "" {
		pattern = DefaultUserStoryPattern
	}
	var notes []string
	if re, err := regexp.Compile(pattern); err != nil {
		notes = append(notes, "user_story_pattern does not compile: "+err.Error())
	} else {
		res.MissingUserStory = !re.MatchString(is.Description)
	}
	if !s.StoryPointsField {
		notes = append(notes, "the site has no story-points field: only the user story is checked")
	}
	res.Notes = notes
	var missing []string
	if res.MissingPoints {
		missing = append(missing, "story points")
	}
	if res.MissingUserStory {
		missing = append(missing, `user story ("As a …, I want …, so that …")`)
	}
	if len(missing) == 0 {
		res.Reason = fmt.Sprintf("%s in open sprint %q is estimated and has a user story", is.Key, sp.Name)
		return
	}
	res.Violation = true
	res.Reason = fmt.Sprintf("%s in open sprint %q has no %s (%s: %q)",
		is.Key, sp.Name, strings.Join(missing, " and no "), res.RoleTitle, r.Responsibility)
}

// article is "an" before a vowel, "a" otherwise.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

func issueRoleWhy(role *roles.Role, id string, team *roles.Team) string {
	teamName := "team " + orDefault(team.Name, team.ID)
	if role == nil {
		return id + " of " + teamName
	}
	title := orDefault(role.Title, role.ID)
	if role.Scope == roles.ScopeOrganization {
		return title + " (organisation-wide)"
	}
	return title + " of " + teamName
}

func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
