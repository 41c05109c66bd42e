package rules

import "github.com/reloadly/rolekeeper/internal/roles"

// KindInfo is one row of the registry of rule kinds: every kind
// rolekeeper knows, with the line that documents it in the README and in
// the guide at the top of roles.yaml, what to do about its findings, and
// how it evaluates what it applies to: a pull request (PR), a Jira issue
// (Issue). Every kind carries its settings spec (package roles decodes a
// rule's settings through it, with FILE:LINE:COL errors); the older Jira
// kinds (test-plan, design-review, story-points) are still evaluated in
// issue.go (see docs/architecture.md).
type KindInfo struct {
	Kind roles.Kind
	Doc  string // one line: what a rule of the kind does
	// Action says what to do about a finding of the kind, in the weekly
	// report's "needs attention" list.
	Action string
	// People: a rule of the kind needs a holder of its role to act (a
	// review, an approval, a sub-task), so the report counts its bus
	// factor.
	People bool
	// PR evaluates a pull request (nil: not a pull-request kind).
	PR *PRKind
	// Spec declares the kind's settings: the keys, their defaults and
	// checks (registered with package roles, which decodes through it).
	Spec *roles.KindSpec
	// Issue evaluates a Jira issue (nil: not a Jira kind, or an older one
	// evaluated in issue.go).
	Issue *IssueKind
}

// Registry lists every rule kind, older kinds first in the contract's
// order. Adding a kind is adding a row here and a kind_<name>.go file.
var Registry = []KindInfo{
	codeReviewKind,
	pathReviewKind,
	unitTestsKind,
	deployApprovalKind,
	testPlanKind,
	designReviewKind,
	storyPointsKind,
	reportKind,
	breakGlassKind,
	backlogKind,
	analysisKind,
	requirementsKind,
}

// init registers every kind's spec with package roles, in Registry order
// (the order roles.Kinds and its "allowed kinds" list keep). A row without
// a spec is a programming error: roles.yaml could not name the kind.
func init() {
	for _, k := range Registry {
		if k.Spec == nil || k.Spec.Kind != k.Kind {
			panic("rules: rule kind " + string(k.Kind) + " has no settings spec of its own")
		}
		roles.RegisterKind(*k.Spec)
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

// NeedsPeople reports whether a rule of the kind needs a holder of its
// role to act (the report's bus factor).
func NeedsPeople(k roles.Kind) bool {
	i, ok := kindInfo(k)
	return ok && i.People
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
