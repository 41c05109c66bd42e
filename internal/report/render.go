package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Formats the renderers produce.
var Formats = []string{"md", "html", "json", "csv"}

// ContentType returns the MIME type of a format.
func ContentType(format string) string {
	switch format {
	case "md":
		return "text/markdown; charset=utf-8"
	case "html":
		return "text/html; charset=utf-8"
	case "json":
		return "application/json"
	case "csv":
		return "text/csv; charset=utf-8"
	}
	return "application/octet-stream"
}

// Render writes the report in a format: md, html, json or csv.
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "md":
		return Markdown(w, r)
	case "html":
		return HTML(w, r)
	case "json":
		return JSON(w, r)
	case "csv":
		return CSV(w, r)
	}
	return fmt.Errorf("unknown report format %q (want md, html, json or csv)", format)
}

// JSON writes the report as indented JSON (schema in docs/report-schema.md).
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// CSVHeader is the header row of the CSV rendering: one row per violation.
// The last three columns (evidence (h6)) repeat the week's evidence span on every row.
var CSVHeader = []string{"week", "team", "rule_id", "kind", "subject", "ref", "url", "occurred_at", "actor", "reason",
	"evidence_first_seq", "evidence_last_seq", "evidence_head"}

// CSV writes one row per violation.
func CSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, v := range r.Violations {
		row := []string{r.Week, v.Team, v.RuleID, v.Kind, string(v.Subject), v.Ref, v.URL,
			v.OccurredAt.Format(time.RFC3339), v.Actor, v.Reason}
		row = append(row, r.Evidence.csvColumns()...) // evidence (h6)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Markdown writes the report for a person to read (and for a Jira issue).
func Markdown(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("# Compliance report %s — %s\n\n", r.Week, r.Organization)
	p("%s to %s. Generated %s.\n\n", r.Start.Format("Mon 2 Jan 2006"), r.End.AddDate(0, 0, -1).Format("Mon 2 Jan 2006"),
		r.GeneratedAt.Format("2 Jan 2006 15:04 MST"))
	s := r.Summary
	p("**%d checks: %d held, %d violated.** %d break-glass use(s). %d pull requests opened, %d merged, %d deployment gates.\n\n",
		s.Checked, s.Held, s.Violated, s.BreakGlass, s.PRsOpened, s.PRsMerged, s.Gates)
	if r.Evidence != nil { // evidence (h6)
		p("%s\n\n", r.Evidence.Line())
	}

	p("## Per team and rule\n\n")
	for _, t := range r.Teams {
		p("### %s\n\n", mdEscape(t.Name))
		p("%d checked, %d held, %d violated; %d PRs opened, %d merged.\n\n", t.Checked, t.Held, t.Violated, t.PRsOpened, t.PRsMerged)
		p("| rule | role | responsibility | checked | held | violated |\n|---|---|---|---:|---:|---:|\n")
		for _, rs := range t.Rules {
			p("| %s | %s | %s | %d | %d | %d |\n", mdEscape(rs.RuleID), mdEscape(rs.Role), mdEscape(rs.Responsibility), rs.Checked, rs.Held, rs.Violated)
		}
		p("\n")
		if len(t.Violations) > 0 {
			p("Violations:\n\n")
			for _, v := range t.Violations {
				p("- %s %s — %s (%s)\n", v.OccurredAt.Format("Mon 2 Jan 15:04"), mdLink(v.Ref, v.URL), mdEscape(v.Reason), mdEscape(v.RuleID))
			}
			p("\n")
		}
	}

	p("## Break-glass\n\n")
	if len(r.BreakGlass) == 0 {
		p("None this week.\n\n")
	}
	for _, b := range r.BreakGlass {
		who := b.ByName
		if who == "" {
			who = b.By
		}
		p("- %s: %s opened the %s gate of %s at %s: %s", b.At.Format("Mon 2 Jan 15:04"), mdEscape(who), mdEscape(b.Environment),
			mdLink(b.Repository+"@"+short(b.Commit), b.URL), short(b.Commit), mdEscape(b.Reason))
		if b.FollowUp != "" {
			p(" (follow-up %s)", b.FollowUp)
		}
		p("\n")
	}
	if len(r.BreakGlass) > 0 {
		p("\n")
	}

	p("## Reviews\n\n")
	p("Median time to first review: %s (%d PRs). Median time to approval: %s (%d PRs).\n\n",
		hours(r.Timing.MedianFirstReviewHours, r.Timing.FirstReviewSamples), r.Timing.FirstReviewSamples,
		hours(r.Timing.MedianApprovalHours, r.Timing.ApprovalSamples), r.Timing.ApprovalSamples)
	if len(r.Reviewers) > 0 {
		p("| reviewer | asked | reviewed |\n|---|---:|---:|\n")
		for _, l := range r.Reviewers {
			p("| %s | %d | %d |\n", mdEscape(l.Name), l.Requested, l.Reviewed)
		}
		p("\n")
	}

	p("## Responsibility coverage\n\n| role | enforced | manual |\n|---|---:|---:|\n")
	for _, c := range r.Coverage {
		p("| %s | %d | %d |\n", mdEscape(c.Title), c.Enforced, c.Manual)
	}
	p("\n## Bus factor (people available now per enforced rule)\n\n| rule | team | available | holders | away |\n|---|---|---:|---:|---|\n")
	for _, bf := range r.BusFactor {
		p("| %s | %s | %d | %d | %s |\n", mdEscape(bf.RuleID), mdEscape(bf.Team), bf.Available, bf.Holders, mdEscape(strings.Join(bf.Away, ", ")))
	}
	p("\n## Trend\n\n| week | checked | held | violated |\n|---|---:|---:|---:|\n")
	for _, tp := range r.Trend {
		p("| %s | %d | %d | %d |\n", tp.Week, tp.Checked, tp.Held, tp.Violated)
	}
	return ew.err
}

func hours(h float64, n int) string {
	if n == 0 {
		return "n/a"
	}
	if h < 1 {
		return strconv.Itoa(int(h*60+0.5)) + " min"
	}
	return strconv.FormatFloat(h, 'f', 1, 64) + " h"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

var mdReplacer = strings.NewReplacer("|", `\|`, "\n", " ", "\r", "", "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;")

func mdEscape(s string) string { return mdReplacer.Replace(s) }

func mdLink(text, url string) string {
	if url == "" {
		return mdEscape(text)
	}
	return "[" + mdEscape(text) + "](" + strings.NewReplacer(" ", "%20", ")", "%29", "(", "%28").Replace(url) + ")"
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
