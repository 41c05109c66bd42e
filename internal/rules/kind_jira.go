package rules

import (
	"fmt"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// The older Jira kinds: their rows and settings live here, their
// evaluation in issue.go (EvaluateIssue). test-plan and design-review ask
// for a sub-task assigned to a holder of the role; story-points flags
// stories of an open sprint without points or a user story.
var (
	testPlanKind = KindInfo{Kind: roles.KindTestPlan, Doc: "test-plan sub-tasks on issue_types (default Epic)", People: true,
		Action: "Finish the test plan, or record why the release went out without it.",
		Spec:   issueTypesSpec(roles.KindTestPlan, []string{"Epic"}, "has nobody to assign test plans to")}
	designReviewKind = KindInfo{Kind: roles.KindDesignReview, Doc: "review sub-tasks on issue_types (default Design)", People: true,
		Action: "Hold the design review and record its outcome.",
		Spec:   issueTypesSpec(roles.KindDesignReview, []string{"Design"}, "has nobody to assign design reviews to")}
	storyPointsKind = KindInfo{Kind: roles.KindStoryPoints, Doc: "stories without points or a user story are flagged",
		Action: "Add the story points and the user story to the issue.",
		Spec: &roles.KindSpec{
			Kind:     roles.KindStoryPoints,
			Settings: []string{"issue_types", "user_story_pattern"},
			Apply: func(s *roles.Settings, r *roles.Rule) {
				r.IssueTypes = issueTypes(s, []string{"Story"})
				r.UserStoryPattern = s.Regexp("user_story_pattern", DefaultUserStoryPattern)
			},
		}}
)

// DefaultUserStoryPattern is the story-points rule's default test for a
// user story ("As a …, I want …, so that …").
const DefaultUserStoryPattern = `(?is)\bas an? .+?\bI want\b.+?\bso that\b`

// issueTypesSpec is the spec of a sub-task kind: its only setting
// (besides teams) is the issue types it looks at, and it needs a holder
// of the role somewhere to assign the sub-tasks to (effect: what is lost
// without one).
func issueTypesSpec(k roles.Kind, def []string, effect string) *roles.KindSpec {
	return &roles.KindSpec{
		Kind:        k,
		Settings:    []string{"issue_types"},
		Apply:       func(s *roles.Settings, r *roles.Rule) { r.IssueTypes = issueTypes(s, def) },
		NeedsHolder: true,
		Effect:      effect,
	}
}

// issueTypes reads issue_types: a non-empty list, def when not written.
func issueTypes(s *roles.Settings, def []string) []string {
	return s.List("issue_types", def, false, "issue type", fmt.Sprintf("like %v", def))
}
