package rules

import (
	"fmt"
	"strings"
	"time"
)

// ExplainIssue renders a Jira issue's decision as plain text for a person:
// the team, the rules that ask for something (a task and for whom, a
// finding and the comment it leaves), then those that do not and why.
// `rolekeeper explain --issue` prints it.
func ExplainIssue(d IssueDecision) string {
	var b strings.Builder
	b.WriteString(d.Issue)
	if d.Team != "" {
		fmt.Fprintf(&b, ": team %s", d.Team)
	}
	b.WriteString("\n")
	if !d.EvaluatedAt.IsZero() {
		fmt.Fprintf(&b, "evaluated at %s\n", d.EvaluatedAt.UTC().Format(time.RFC3339))
	}
	if d.Skipped != "" {
		fmt.Fprintf(&b, "nothing to do: %s\n", d.Skipped)
		return b.String()
	}
	var acting, quiet []IssueRuleResult
	for _, r := range d.Rules {
		if r.NeedsTask || r.Violation {
			acting = append(acting, r)
		} else {
			quiet = append(quiet, r)
		}
	}
	if len(acting) > 0 {
		b.WriteString("\nrules asking for something:\n")
		for _, r := range acting {
			fmt.Fprintf(&b, "  [%s] %s: %s\n", issueVerdict(r), r.RuleID, r.Reason)
			for _, p := range r.Picks {
				fmt.Fprintf(&b, "      %s\n", p.Reason)
			}
			if r.FindingKey != "" {
				fmt.Fprintf(&b, "      finding %s, one comment on the issue\n", r.FindingKey)
			}
			for _, n := range r.Notes {
				fmt.Fprintf(&b, "      note: %s\n", n)
			}
		}
	}
	if len(quiet) > 0 {
		b.WriteString("\nrules with nothing to ask:\n")
		for _, r := range quiet {
			fmt.Fprintf(&b, "  %s: %s\n", r.RuleID, r.Reason)
			for _, n := range r.Notes {
				fmt.Fprintf(&b, "      note: %s\n", n)
			}
		}
	}
	if len(d.Rules) == 0 {
		b.WriteString("\nno Jira rule applies to the team\n")
	}
	return b.String()
}

func issueVerdict(r IssueRuleResult) string {
	if r.NeedsTask {
		return "task"
	}
	return "finding"
}
