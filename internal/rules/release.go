package rules

import (
	"fmt"
	"strings"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// ReleaseRules are the test-plan rules of a team: a released version's
// issues of their types must have a test plan done.
func ReleaseRules(org *roles.Org, team string) []*roles.Rule {
	var out []*roles.Rule
	for _, r := range JiraRules(org, team) {
		if r.Kind == roles.KindTestPlan {
			out = append(out, r)
		}
	}
	return out
}

// ReleaseRule is the first of the test-plan rules looking at the issue
// type (nil: none does).
func ReleaseRule(plans []*roles.Rule, issueType string) *roles.Rule {
	for _, r := range plans {
		if TypeMatches(r, issueType) {
			return r
		}
	}
	return nil
}

// ReleaseVerdict is a released issue's finding and the comment saying so.
type ReleaseVerdict struct {
	Finding model.Finding // the workflow sets URL and OccurredAt
	// Head starts the comment (how a comment already posted is found);
	// Comment is the whole text, without the workflow's marker.
	Head, Comment string
}

// ReleaseFinding judges an issue of a released version on a test-plan
// rule: a finding when its test plan is missing or not done (ok false
// when it is done).
func ReleaseFinding(org *roles.Org, team string, rule *roles.Rule, v model.Version, is model.Issue) (ReleaseVerdict, bool) {
	ref, has := FindTask(is, TestPlanPrefix)
	if has && ref.StatusDone {
		return ReleaseVerdict{}, false
	}
	state := "has no test plan"
	if has {
		state = fmt.Sprintf("has its test plan %s not done (%s)", ref.Key, ref.Status)
	}
	title := rule.Role
	if role := org.Role(rule.Role); role != nil && role.Title != "" {
		title = role.Title
	}
	versionName := v.Name
	if versionName == "" {
		versionName = v.ID
	}
	reason := fmt.Sprintf("test-plan: version %s was released while %s %s %s; responsibility of the %s (%q)",
		versionName, is.Type, is.Key, state, title, rule.Responsibility)
	f := model.Finding{Key: FindingKey(TopicTestPlanNotDone, v.ID, is.Key), Kind: string(roles.KindTestPlan), RuleID: rule.ID, Team: team,
		Subject: model.SubjectIssue, Ref: is.Key, Reason: reason, Details: "version " + versionName}
	head := fmt.Sprintf("Version %s was released while this %s", versionName, strings.ToLower(orDefault(is.Type, "issue")))
	body := fmt.Sprintf("%s %s.\n\nCreating the test plan is the responsibility of the %s (%q). "+
		"This is listed in the weekly report.", head, state, title, rule.Responsibility)
	return ReleaseVerdict{Finding: f, Head: head, Comment: body}, true
}

// StoryPointsFinding is the finding of an issue of an open sprint that
// breaks the story-points rules vs (of one role or several; at least
// one), and the comment saying so (without the workflow's marker). The
// workflow sets the finding's URL and OccurredAt.
func StoryPointsFinding(is model.Issue, team string, vs []IssueRuleResult) (model.Finding, string) {
	var holders []string
	for _, v := range vs {
		holders = append(holders, fmt.Sprintf("the %s (%q)", v.RoleTitle, v.Responsibility))
	}
	first := vs[0]
	reason := fmt.Sprintf("story-points: %s in open sprint %q has no %s; responsibility of %s",
		is.Key, first.Sprint, StoryPointsMissing(first), strings.Join(holders, ", "))
	f := model.Finding{Key: FindingKey(string(roles.KindStoryPoints), is.Key), Kind: string(roles.KindStoryPoints), RuleID: first.RuleID, Team: team,
		Subject: model.SubjectIssue, Ref: is.Key, Reason: reason, Details: "sprint " + first.Sprint}
	body := fmt.Sprintf("%s is in the open sprint %q without %s.\n\nEstimating and writing user stories is the responsibility of %s. "+
		"Please add what is missing; this is listed in the weekly report.",
		is.Key, first.Sprint, StoryPointsMissing(first), strings.Join(holders, " and "))
	return f, body
}

// StoryPointsMissing says what a story-points result misses: "story
// points and without a user story (…)".
func StoryPointsMissing(r IssueRuleResult) string {
	var m []string
	if r.MissingPoints {
		m = append(m, "story points")
	}
	if r.MissingUserStory {
		m = append(m, `a user story ("As a …, I want …, so that …")`)
	}
	return strings.Join(m, " and without ")
}
