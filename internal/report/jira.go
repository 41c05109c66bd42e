package report

import (
	"io"
	"strings"
	"time"
)

// Link is a signed link to the HTML report and when it stops working.
type Link struct {
	URL     string
	Expires time.Time
}

// JiraWiki writes the body of the weekly report's Jira issue in Jira wiki
// markup (what Jira's REST API v2 renders): the verdict, the link to the
// full report, and what needs attention, each with who should act. Every
// upstream value is escaped so that it shows as text.
func JiraWiki(w io.Writer, r *Report, link Link) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("h2. Compliance report %s — %s\n\n", r.Week, jiraEscape(r.Organization))
	p("*%s*\n\n", jiraEscape(r.Verdict))
	if link.URL != "" {
		p("[Read the full report|%s] (works without a login until %s).\n\n", jiraURL(link.URL), link.Expires.UTC().Format("Mon 2 Jan 2006 15:04 MST"))
	}
	if !r.Empty {
		s := r.Summary
		p("%d checks: %d held, %d violated. %d break-glass use(s). %d pull requests opened, %d merged, %d deployment gates.\n\n",
			s.Checked, s.Held, s.Violated, s.BreakGlass, s.PRsOpened, s.PRsMerged, s.Gates)
	}
	if r.Evidence != nil { // the outside witness: Jira keeps what the chain said
		p("%s\n\n", jiraEscape(r.Evidence.Line()))
	}
	p("h3. Needs attention\n\n")
	if len(r.Attention) == 0 {
		p("Nothing needs attention: no violation, no break-glass use, no gate waiting.\n")
	}
	for _, it := range r.Attention {
		ref := jiraEscape(it.Ref)
		if it.URL != "" {
			ref = "[" + ref + "|" + jiraURL(it.URL) + "]"
		}
		p("* *%s* %s, open %s: %s", attentionLabel(it.Kind), ref, duration(it.OpenHours), jiraEscape(sentence(it.What)))
		if it.RuleID != "" {
			p(" Rule: %s of %s", jiraEscape(it.RoleTitle), jiraEscape(it.TeamName))
			if it.Responsibility != "" {
				p(", “%s”", jiraEscape(it.Responsibility))
			}
			p(" (%s).", jiraEscape(it.RuleID))
		}
		who := "nobody is named"
		if len(it.WhoShouldAct) > 0 {
			names := make([]string, len(it.WhoShouldAct))
			for i, n := range it.WhoShouldAct {
				names[i] = jiraEscape(n)
			}
			who = strings.Join(names, ", ")
		} else if it.RuleID != "" {
			who = "nobody holds this role in " + jiraEscape(it.TeamName)
		}
		p(" Who should act: %s. %s\n", who, jiraEscape(it.Action))
	}
	return ew.err
}

// jiraReplacer escapes every character Jira wiki markup gives a meaning:
// emphasis (*_-+^~?), macros ({}), links and mentions ([]), tables (|),
// images (!), lists and headings (#) and the escape itself.
var jiraReplacer = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "-", `\-`, "+", `\+`, "^", `\^`, "~", `\~`,
	"?", `\?`, "{", `\{`, "}", `\}`, "[", `\[`, "]", `\]`, "|", `\|`, "!", `\!`, "#", `\#`)

// jiraEscape makes upstream text one line of plain Jira text.
func jiraEscape(s string) string { return isolate(jiraReplacer.Replace(plainText(s))) }

// jiraURL keeps a URL from ending the link it is in.
func jiraURL(u string) string {
	return strings.NewReplacer("|", "%7C", "]", "%5D", "[", "%5B", " ", "%20", "\n", "", "\r", "").Replace(u)
}
