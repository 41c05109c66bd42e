package rules

import "github.com/reloadly/rolekeeper/internal/roles"

// PRKind is how a registered pull-request rule kind takes part in a
// decision: which commit status its results roll up into, what the
// workflow must read for it, how it evaluates a pull request and how a
// merge is judged on it. prflow asks these questions through the Engine
// (NeedsFiles, NeedsPushTime) and never names a kind.
type PRKind struct {
	// Status is the commit status the kind's results roll up into:
	// StatusReview for kinds that ask reviewers and count approvals (they
	// decide Decision.ApprovalsMet), StatusTests for checks that pass or
	// fail on the changed files.
	Status string
	// Files: the kind reads the changed files of the head (one diffstat
	// read when a rule of the kind applies to the team).
	Files bool
	// PushTime: a rule of the kind with invalidate_on_push counts only
	// approvals given after the last push, so the workflow dates the push.
	PushTime bool
	// Promise says, for a check (not StatusReview), what a rule of the
	// kind asks of every pull request, in the explaining comment (the
	// verdict itself is in the status).
	Promise string
	// Merge judges a merged pull request on the kind's results; kinds
	// sharing a check are judged together, in one finding (nil: a merge
	// is not judged on the kind).
	Merge *MergeCheck
	// evaluate gives a rule's verdict on the pull request.
	evaluate func(ev *evaluation, p *plan) RuleResult
}

// prKinds indexes the registry's pull-request kinds (filled by init, so
// that the evaluation functions may read it without an initialisation
// cycle).
var prKinds map[roles.Kind]*PRKind

func init() {
	prKinds = map[roles.Kind]*PRKind{}
	for _, k := range Registry {
		if k.PR != nil {
			prKinds[k.Kind] = k.PR
		}
	}
}

// statusOf is the commit status a rule result of the kind rolls up into
// ("" for kinds that do not evaluate pull requests).
func statusOf(kind string) string {
	if k := prKinds[roles.Kind(kind)]; k != nil {
		return k.Status
	}
	return ""
}

// approves reports whether results of the kind count approvals (a review
// kind), as opposed to a pass/fail check.
func approves(kind string) bool { return statusOf(kind) == StatusReview }

// prStatuses are the commit statuses every decision carries, in order,
// each summarising the results of the kinds that roll up into it.
var prStatuses = []struct {
	key       string
	summarise func(rs []RuleResult, team string) Status
}{
	{StatusReview, reviewStatus},
	{StatusTests, testsStatus},
}

// NeedsFiles reports whether a pull-request rule applying to the team
// reads the changed files.
func (e *Engine) NeedsFiles(team string) bool {
	for _, p := range e.plans[team] {
		if p.kind.Files {
			return true
		}
	}
	return false
}

// NeedsPushTime reports whether a pull-request rule applying to the team
// counts only approvals given after the last push (invalidate_on_push).
func (e *Engine) NeedsPushTime(team string) bool {
	for _, p := range e.plans[team] {
		if p.kind.PushTime && p.rule.InvalidateOnPush {
			return true
		}
	}
	return false
}

// NeedsApproval reports whether a triggered rule of the decision requires
// approvals.
func (d *Decision) NeedsApproval() bool {
	for _, r := range d.Rules {
		if r.Triggered && r.Required > 0 && approves(r.Kind) {
			return true
		}
	}
	return false
}
