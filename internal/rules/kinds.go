package rules

import "github.com/reloadly/rolekeeper/internal/roles"

// KindInfo is one row of the registry of rule kinds: every kind
// rolekeeper knows, with the line that documents it in the README and in
// the guide at the top of roles.yaml. Kinds added since the registry
// exists carry their settings spec (decoded by package roles through it)
// and, for Jira kinds, their issue evaluation; the older kinds are still
// decoded in package roles and evaluated by engine.go, deploy.go and
// issue.go (see docs/architecture.md).
type KindInfo struct {
	Kind roles.Kind
	Doc  string // one line: what a rule of the kind does
	// Action says what to do about a finding of the kind, in the weekly
	// report's "needs attention" list.
	Action string
	// Spec decodes the kind's settings (nil: decoded by package roles).
	Spec *roles.KindSpec
	// Issue evaluates a Jira issue (nil: not a Jira kind, or an older one
	// evaluated in issue.go).
	Issue *IssueKind
}

// Registry lists every rule kind, older kinds first in the contract's
// order. Adding a kind is adding a row here and a kind_<name>.go file.
var Registry = []KindInfo{
	{Kind: roles.KindCodeReview, Doc: "reviewers of the role on every pull request of the team"},
	{Kind: roles.KindPathReview, Doc: "the same, only when a changed file matches paths"},
	{Kind: roles.KindUnitTests, Doc: "source changed without a test changed fails rolekeeper-tests"},
	{Kind: roles.KindDeployApproval, Doc: "deployments to environments wait for an approval of the role"},
	{Kind: roles.KindTestPlan, Doc: "test-plan sub-tasks on issue_types (default Epic)"},
	{Kind: roles.KindDesignReview, Doc: "review sub-tasks on issue_types (default Design)"},
	{Kind: roles.KindStoryPoints, Doc: "stories without points or a user story are flagged"},
	{Kind: roles.KindReport, Doc: "people of the role receive the weekly report"},
	breakGlassKind,
	backlogKind,
	analysisKind,
	requirementsKind,
}

func init() {
	for _, k := range Registry {
		if k.Spec != nil {
			roles.RegisterKind(*k.Spec)
		}
	}
}

// Action returns what to do about a finding of a registered kind ("" for
// kinds without one here).
func Action(kind string) string {
	if i, ok := kindInfo(roles.Kind(kind)); ok {
		return i.Action
	}
	return ""
}

// kindInfo returns a kind's registry row.
func kindInfo(k roles.Kind) (KindInfo, bool) {
	for _, i := range Registry {
		if i.Kind == k {
			return i, true
		}
	}
	return KindInfo{}, false
}
