package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/server"
)

// width is where the narration wraps: readable in an 80–120 column
// terminal.
const width = 100

// printer writes the narration, wrapping long reasons under their bullet.
type printer struct{ w io.Writer }

// say prints one wrapped paragraph: first after lead, the rest under a
// hanging indent (as wide as a short lead, four spaces past a long one's
// indentation).
func (p printer) say(lead, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	hangWidth := utf8.RuneCountInString(lead)
	if hangWidth > 18 {
		hangWidth = len(lead) - len(strings.TrimLeft(lead, " ")) + 4
	}
	hang := strings.Repeat(" ", hangWidth)
	line, n := lead, utf8.RuneCountInString(lead)
	first := true
	for _, word := range strings.Fields(text) {
		wl := utf8.RuneCountInString(word)
		if !first && n+1+wl > width {
			fmt.Fprintln(p.w, line)
			line, n = hang+word, hangWidth+wl
			continue
		}
		if !first {
			line += " "
			n++
		}
		line += word
		n += wl
		first = false
	}
	fmt.Fprintln(p.w, line)
}

// raw prints a line as it is: commands to copy must not be wrapped.
func (p printer) raw(lead, format string, args ...any) {
	fmt.Fprintf(p.w, lead+format+"\n", args...)
}

// blank prints an empty line.
func (p printer) blank() { fmt.Fprintln(p.w) }

// headline opens a step of the week.
func (p printer) headline(when, title string) {
	head := fmt.Sprintf("── %s · %s ", when, title)
	if n := width - utf8.RuneCountInString(head); n > 0 {
		head += strings.Repeat("─", n)
	}
	p.blank()
	fmt.Fprintln(p.w, head)
}

// decision renders a stored decision the way rolekeeper explains it: the
// rules that applied and why, who was asked and why, the statuses, and
// what was done upstream. prev, when set, is the decision shown before for
// the same subject: what did not change since is summed up in one line.
func (p printer) decision(v server.DecisionView, prev *server.DecisionView) {
	p.say("  ", "rolekeeper decided (%s):", v.URL)
	switch model.SubjectKind(v.Kind) {
	case model.SubjectPullRequest:
		var d, before rules.Decision
		if json.Unmarshal(v.Decision, &d) != nil {
			p.say("    ", "%s", v.Summary)
			break
		}
		var b *rules.Decision
		if prev != nil && json.Unmarshal(prev.Decision, &before) == nil {
			b = &before
		}
		p.pullRequest(d, b)
	case model.SubjectIssue:
		var d rules.IssueDecision
		if json.Unmarshal(v.Decision, &d) != nil {
			p.say("    ", "%s", v.Summary)
			break
		}
		p.issue(d)
	default:
		p.say("    ", "%s", v.Summary)
	}
	if v.Outcome != "" {
		p.say("    did: ", "%s", v.Outcome)
	}
}

// reason is a rule's reason, which names the rule already when the engine
// wrote it so.
func reason(ruleID, why string) string {
	if strings.HasPrefix(why, ruleID) {
		return why
	}
	return ruleID + ": " + why
}

func (p printer) pullRequest(d rules.Decision, prev *rules.Decision) {
	if d.Skipped != "" {
		p.say("    ", "%s", d.Skipped)
	}
	shown := map[string]string{} // rule id → what was shown of it before
	statuses := map[string]string{}
	if prev != nil {
		for _, r := range prev.Rules {
			shown[r.RuleID] = ruleDigest(r)
		}
		for _, s := range prev.Statuses {
			statuses[s.Key] = s.State + s.Description
		}
	}
	quiet := 0
	var same []string
	for _, r := range d.Rules {
		if !r.Triggered {
			quiet++
			continue
		}
		mark := "✗"
		if r.Met {
			mark = "✓"
		}
		if prev != nil && shown[r.RuleID] == ruleDigest(r) {
			same = append(same, mark+" "+r.RuleID)
			continue
		}
		p.say("    "+mark+" ", "%s", reason(r.RuleID, r.Reason))
		for _, pk := range r.Picks {
			p.say("        → ", "%s", pk.Reason)
		}
		if r.Required > 0 && r.Kind != "unit-tests" {
			line := fmt.Sprintf("%d of %d approvals", len(r.ApprovedBy), r.Required)
			if len(r.ApprovedNames) > 0 {
				line += ": " + strings.Join(r.ApprovedNames, ", ")
			}
			p.say("        ", "%s", line)
		}
		for _, s := range r.Ignored {
			p.say("        ignored: ", "%s", s)
		}
		for _, s := range r.Notes {
			p.say("        note: ", "%s", s)
		}
	}
	if len(same) > 0 {
		p.say("    ", "unchanged: %s", strings.Join(same, ", "))
	} else if quiet > 0 && prev == nil {
		p.say("    ", "(%d other rules do not apply to this change)", quiet)
	}
	for _, s := range d.Statuses {
		if prev != nil && statuses[s.Key] == s.State+s.Description {
			continue
		}
		p.say("    status ", "%s %s: %s", s.Key, s.State, s.Description)
	}
}

// ruleDigest is what the narration shows of a rule, to tell a changed one.
func ruleDigest(r rules.RuleResult) string {
	b, _ := json.Marshal([]any{r.Triggered, r.Met, r.Reason, r.Picks, r.ApprovedBy, r.Ignored, r.Notes})
	return string(b)
}

func (p printer) issue(d rules.IssueDecision) {
	if d.Skipped != "" {
		p.say("    ", "skipped: %s", d.Skipped)
	}
	// Several roles may hold the same rule (story points): the first says
	// it, the others are named.
	said := map[string]int{}
	var also []rules.IssueRuleResult
	for _, r := range d.Rules {
		if !r.Applies {
			continue
		}
		if r.Kind == "story-points" && said[r.Kind] > 0 {
			also = append(also, r)
			continue
		}
		said[r.Kind]++
		mark := "✓"
		if r.NeedsTask || r.Violation {
			mark = "✗"
		}
		p.say("    "+mark+" ", "%s", reason(r.RuleID, r.Reason))
		for _, pk := range r.Picks {
			p.say("        → ", "%s", pk.Reason)
		}
		for _, s := range r.Notes {
			p.say("        note: ", "%s", s)
		}
	}
	for _, r := range also {
		p.say("      ", "also %s (%s: %q)", r.RuleID, r.RoleTitle, r.Responsibility)
	}
}

// files lists changed paths for the headline of a pull request.
func files(fs []model.ChangedFile) string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Path
	}
	return strings.Join(out, ", ")
}
