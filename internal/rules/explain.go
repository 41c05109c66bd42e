package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// Explain renders a decision as plain text for a person: the team, each
// triggered rule with its reason, who is asked and why, notes, approvals
// and the statuses posted. `rolekeeper explain` prints it.
func Explain(d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s#%d", d.Repository, d.Number)
	if d.Commit != "" {
		fmt.Fprintf(&b, " at %s", shortCommit(d.Commit))
	}
	if d.Team != "" {
		fmt.Fprintf(&b, ": team %s", d.Team)
	}
	b.WriteString("\n")
	if !d.EvaluatedAt.IsZero() {
		fmt.Fprintf(&b, "evaluated at %s\n", d.EvaluatedAt.UTC().Format(time.RFC3339))
	}
	if d.Skipped != "" {
		fmt.Fprintf(&b, "no reviewers requested: %s\n", d.Skipped)
	}
	if d.Team == "" {
		return b.String()
	}

	triggered, quiet := splitRules(d.Rules)
	if len(triggered) > 0 {
		b.WriteString("\nrules triggered:\n")
		for _, r := range triggered {
			fmt.Fprintf(&b, "  [%s] %s\n", verdict(r), r.Reason)
			if line := approvalLine(r); line != "" {
				fmt.Fprintf(&b, "      %s\n", line)
			}
			for _, p := range r.Picks {
				fmt.Fprintf(&b, "      %s\n", p.Reason)
			}
			for _, s := range r.Excluded {
				fmt.Fprintf(&b, "      excluded: %s\n", s)
			}
			for _, s := range r.Ignored {
				fmt.Fprintf(&b, "      ignored: %s\n", s)
			}
			for _, s := range r.Notes {
				fmt.Fprintf(&b, "      note: %s\n", s)
			}
		}
	}
	if len(quiet) > 0 {
		b.WriteString("\nrules not triggered:\n")
		for _, r := range quiet {
			fmt.Fprintf(&b, "  %s\n", r.Reason)
		}
	}

	b.WriteString("\nreviewers to request:\n")
	if len(d.Request) == 0 {
		b.WriteString("  nobody\n")
	}
	for _, p := range d.Request {
		fmt.Fprintf(&b, "  %s (%s, %s): %s\n", p.Name, p.Person, p.AccountID, p.Why())
	}

	if d.ApprovalsMet {
		b.WriteString("\napprovals: every required approval is in\n")
	} else {
		b.WriteString("\napprovals: waiting\n")
	}
	if len(d.Statuses) > 0 {
		b.WriteString("\nstatuses:\n")
		for _, s := range d.Statuses {
			fmt.Fprintf(&b, "  %-18s %-11s %s\n", s.Key, s.State, s.Description)
		}
	}
	return b.String()
}

// Comment renders a decision as the single explaining pull-request comment,
// in Bitbucket markdown. decisionURL, when set, links to the full decision.
//
// The comment says what applies and why: the rules triggered, who is asked,
// whom separation of duties excludes. Where things stand (status states,
// approvals counted, the tests verdict) changes with every approval and
// push: that lives in the commit statuses, which link to the decision, so
// the comment is edited only when its explanation changes (each edit is a
// Bitbucket request and a notification).
func Comment(d Decision, decisionURL string) string {
	var b strings.Builder
	b.WriteString("**rolekeeper**\n\n")
	if d.Team == "" {
		b.WriteString(mdEscape(d.Skipped) + "\n\n")
		writeLink(&b, decisionURL)
		return strings.TrimRight(b.String(), "\n") + "\n"
	}
	fmt.Fprintf(&b, "Team **%s**", mdEscape(d.Team))
	if len(d.Statuses) > 0 {
		keys := make([]string, len(d.Statuses))
		for i, s := range d.Statuses {
			keys[i] = "`" + s.Key + "`"
		}
		fmt.Fprintf(&b, " · where each rule stands: the statuses %s on the latest commit", strings.Join(keys, ", "))
	}
	b.WriteString("\n\n")
	if d.Skipped != "" {
		fmt.Fprintf(&b, "_No reviewers requested: %s_\n\n", mdEscape(d.Skipped))
	}

	triggered, quiet := splitRules(d.Rules)
	if len(triggered) > 0 {
		b.WriteString("**Rules**\n\n")
		var shown []string
		for _, r := range triggered {
			fmt.Fprintf(&b, "* %s\n", mdEscape(commentReason(r)))
			if line := requirementLine(r); line != "" {
				fmt.Fprintf(&b, "    * %s\n", mdEscape(line))
			}
			// A person excluded or an approval ignored for several rules
			// is said once.
			for _, s := range r.Excluded {
				if !containsString(shown, s) {
					shown = append(shown, s)
					fmt.Fprintf(&b, "    * excluded: %s\n", mdEscape(s))
				}
			}
			for _, s := range r.Ignored {
				if !containsString(shown, s) {
					shown = append(shown, s)
					fmt.Fprintf(&b, "    * ignored: %s\n", mdEscape(s))
				}
			}
		}
		b.WriteString("\n")
	}
	if len(d.Request) > 0 {
		b.WriteString("**Reviewers**\n\n")
		for _, p := range d.Request {
			fmt.Fprintf(&b, "* %s\n", mdEscape(p.Reason))
		}
		b.WriteString("\n")
	}
	if notes := allNotes(d.Rules); len(notes) > 0 {
		b.WriteString("**Notes**\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "* %s\n", mdEscape(n))
		}
		b.WriteString("\n")
	}
	if len(quiet) > 0 {
		ids := make([]string, len(quiet))
		for i, r := range quiet {
			ids[i] = "`" + r.RuleID + "`"
		}
		fmt.Fprintf(&b, "Not triggered: %s\n\n", strings.Join(ids, ", "))
	}
	writeLink(&b, decisionURL)
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// Why is the reason a person was picked without its opening "asked
// <name>: " (or "kept <name>: "), for a line that already names them, so
// that no line reads "Amara Okafor: asked Amara Okafor: …".
func (p Pick) Why() string {
	verb, rest, ok := strings.Cut(p.Reason, " ")
	if !ok || p.Name == "" || verb == "" {
		return p.Reason
	}
	if why, ok := strings.CutPrefix(rest, p.Name+": "); ok {
		return why
	}
	if rest == p.Name {
		return verb
	}
	return p.Reason
}

// RoleTitle is the title of the rule's role as its reason's label gives
// it (`id (Title: "responsibility")`), or the role's id.
func (r RuleResult) RoleTitle() string {
	rest, ok := strings.CutPrefix(r.Reason, r.RuleID+" (")
	if !ok || r.RuleID == "" {
		return r.Role
	}
	if j := strings.Index(rest, `: "`); j > 0 {
		return rest[:j]
	}
	return r.Role
}

// Why is the rule's reason without its opening label (the rule's id, role
// and responsibility), for a page that shows those once on their own.
// A reason that does not start with the rule's id is returned whole.
func (r RuleResult) Why() string {
	rest, ok := strings.CutPrefix(r.Reason, r.RuleID)
	if !ok || r.RuleID == "" {
		return r.Reason
	}
	// ` (Title: "responsibility"): why`, the responsibility quoted by %q
	// (ruleLabel).
	if strings.HasPrefix(rest, " (") {
		if j := strings.Index(rest, `: "`); j >= 0 {
			if q, err := strconv.QuotedPrefix(rest[j+2:]); err == nil {
				if why, ok := strings.CutPrefix(rest[j+2+len(q):], "): "); ok {
					return why
				}
			}
		}
	}
	if why, ok := strings.CutPrefix(rest, ": "); ok {
		return why
	}
	return r.Reason
}

func writeLink(b *strings.Builder, url string) {
	if url != "" {
		fmt.Fprintf(b, "[Why: the full decision](%s)\n", url)
	}
}

func splitRules(rs []RuleResult) (triggered, quiet []RuleResult) {
	for _, r := range rs {
		if r.Triggered {
			triggered = append(triggered, r)
		} else {
			quiet = append(quiet, r)
		}
	}
	return triggered, quiet
}

func verdict(r RuleResult) string {
	switch {
	case !approves(r.Kind) && r.Met:
		return "met"
	case !approves(r.Kind):
		return "failed"
	case r.Required == 0:
		return "advisory"
	case r.Met:
		return "met"
	}
	return "waiting"
}

// approvalLine says where a review rule stands on approvals.
func approvalLine(r RuleResult) string {
	if !approves(r.Kind) {
		return r.Shortfall
	}
	var parts []string
	if len(r.ApprovedNames) > 0 {
		parts = append(parts, "approved by "+strings.Join(r.ApprovedNames, ", "))
	}
	switch {
	case r.Shortfall != "":
		parts = append(parts, r.Shortfall)
	case r.Required == 0:
		parts = append(parts, "no approval required")
	default:
		parts = append(parts, fmt.Sprintf("%s of %d required", countNoun(len(r.ApprovedBy), "approval"), r.Required))
	}
	return strings.Join(parts, "; ")
}

// commentReason is why a rule applies. A check's own reason is its verdict
// (which files, tests or not): the comment names the rule and what it
// promises (PRKind.Promise), and leaves the verdict to the status.
func commentReason(r RuleResult) string {
	if approves(r.Kind) {
		return r.Reason
	}
	promise := ""
	if k := prKinds[roles.Kind(r.Kind)]; k != nil {
		promise = k.Promise
	}
	end := fmt.Sprintf(": %q)", r.Responsibility)
	i := strings.Index(r.Reason, end)
	if i < 0 {
		return r.RuleID + ": " + promise
	}
	return r.Reason[:i+len(end)] + ": " + promise
}

// requirementLine says what a review rule asks for, not how far it got
// (the comment's stable counterpart of approvalLine).
func requirementLine(r RuleResult) string {
	switch {
	case !approves(r.Kind):
		return ""
	case r.Required == 0:
		return "advisory: no approval required"
	}
	return "requires " + countNoun(r.Required, "approval")
}

// allNotes gathers the rules' notes, each once, in order.
func allNotes(rs []RuleResult) []string {
	var out []string
	for _, r := range rs {
		for _, n := range r.Notes {
			if !containsString(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// mdEscape quotes the characters Bitbucket's markdown would treat as markup
// in free text (names, paths, reasons).
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '#', '|':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Verdict is one word for where a rule that applied stands: met, waiting,
// failed (tests) or advisory.
func (r RuleResult) Verdict() string { return verdict(r) }
