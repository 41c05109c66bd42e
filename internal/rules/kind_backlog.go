package rules

import (
	"fmt"
	"strings"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// KindBacklog: the product owner "Manages and prioritizes the backlog".
// Jira shows both signals: an open issue without a priority, and an open
// bug still in a to-do status (status category "new") more than
// untriaged_days after it was created. Each is a finding, and the product
// owner gets one comment per issue.
const KindBacklog roles.Kind = "backlog"

// BacklogSettings are a backlog rule's settings.
type BacklogSettings struct {
	IssueTypes    []string // issues looked at (default Story, Task, Bug)
	BugTypes      []string // types that are bugs (default Bug)
	UntriagedDays int      // 1..365, default 14
}

var backlogKind = KindInfo{
	Kind:   KindBacklog,
	Doc:    "open issues without a priority, and bugs untriaged for untriaged_days, are flagged to the role",
	Action: "Set a priority on the issue, or triage the bug (move it on or close it).",
	Spec: &roles.KindSpec{
		Kind:     KindBacklog,
		Settings: []string{"issue_types", "bug_types", "untriaged_days"},
		Decode: func(s *roles.Settings) any {
			return BacklogSettings{
				IssueTypes:    s.List("issue_types", []string{"Story", "Task", "Bug"}, false, "issue type", "like [Story, Bug]"),
				BugTypes:      s.List("bug_types", []string{"Bug"}, false, "issue type", "like [Bug]"),
				UntriagedDays: s.Int("untriaged_days", 14, 1, 365),
			}
		},
		NeedsHolder: true,
		Effect:      "has nobody to tell about the backlog",
	},
	Issue: &IssueKind{
		Types:    func(r *roles.Rule) []string { return settingsOf[BacklogSettings](r).IssueTypes },
		Marker:   "(rolekeeper: backlog)",
		Evaluate: evaluateBacklog,
	},
}

func evaluateBacklog(c issueCtx, res *IssueRuleResult) {
	is, set := c.snap.Issue, settingsOf[BacklogSettings](c.rule)
	if is.StatusDone {
		res.Applies = false
		res.Reason = is.Key + " is done"
		return
	}
	var missing []string
	if !c.snap.PriorityField {
		res.Notes = append(res.Notes, "the site has no priority field: only untriaged bugs are checked")
	} else if strings.TrimSpace(is.Priority) == "" {
		missing = append(missing, "has no priority")
	}
	if hasFold(set.BugTypes, is.Type) && strings.EqualFold(is.StatusCategory, "new") && !is.Created.IsZero() {
		if days := int(c.snap.Now.Sub(is.Created).Hours() / 24); days > set.UntriagedDays {
			missing = append(missing, fmt.Sprintf("is a bug still %q %d days after it was reported (more than %d)", orDefault(is.Status, "to do"), days, set.UntriagedDays))
		}
	}
	if len(missing) == 0 {
		res.Reason = is.Key + " is prioritised and triaged"
		return
	}
	what := strings.Join(missing, " and ")
	res.Violation, res.FindingKey = true, FindingKey(string(KindBacklog), is.Key)
	res.Reason = fmt.Sprintf("%s %s (%s: %q)", is.Key, what, res.RoleTitle, c.rule.Responsibility)
	res.Comment = fmt.Sprintf("%s %s.\n\nManaging and prioritising the backlog is the responsibility of the %s. "+
		"Please set a priority or triage it; this is listed in the weekly report.", is.Key, what, res.RoleTitle)
}

// settingsOf returns a registered kind's compiled settings (the zero
// value for a rule built by hand without them).
func settingsOf[T any](r *roles.Rule) T {
	v, _ := r.Settings.(T)
	return v
}
