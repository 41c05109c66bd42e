package rules

import "github.com/reloadly/rolekeeper/internal/roles"

// IssueKind is how a registered Jira rule kind evaluates an issue.
type IssueKind struct {
	// Types are the issue types it looks at when the rule names none
	// (empty: every type).
	Types func(r *roles.Rule) []string
	// TaskPrefix: the kind asks for a sub-task named with it ("" for
	// kinds that comment instead).
	TaskPrefix string
	// Marker ends the kind's comments, so an existing one is recognised
	// even when the store lost its mark.
	Marker string
	// Evaluate fills res for an issue of one of the types: a task to
	// create (NeedsTask, through evaluateTask) or a finding with its
	// comment (Violation, FindingKey, Comment).
	Evaluate func(c issueCtx, res *IssueRuleResult)
}

// issueCtx is what an issue kind's Evaluate reads.
type issueCtx struct {
	org     *roles.Org
	team    *roles.Team
	role    *roles.Role
	rule    *roles.Rule
	snap    IssueSnapshot
	claimed map[string]string
}

// IssueMarker returns the marker ending the comments of a Jira kind
// ("(rolekeeper: backlog)"); "" for kinds that do not comment.
func IssueMarker(kind string) string {
	if k, ok := kindInfo(roles.Kind(kind)); ok && k.Issue != nil {
		return k.Issue.Marker
	}
	return ""
}

// IssueKinds are the registered kinds that evaluate Jira issues through an
// IssueKind, in registry order (the Jira audit searches for them).
func IssueKinds() []roles.Kind {
	var out []roles.Kind
	for _, k := range Registry {
		if k.Issue != nil {
			out = append(out, k.Kind)
		}
	}
	return out
}
