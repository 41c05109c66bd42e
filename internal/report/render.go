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

// CSVHeader is the header row of the CSV rendering. The first ten columns
// are schema version 1's, one row per violation; version 2 appended the
// section column and those after it, and rows for the other sections
// (docs/report-schema.md). The last three columns (evidence) repeat the
// week's evidence span on every row.
var CSVHeader = []string{"week", "team", "rule_id", "kind", "subject", "ref", "url", "occurred_at", "actor", "reason",
	"section", "role", "responsibility", "who_should_act", "open_hours", "checked", "held", "violated", "metric", "value",
	"evidence_first_seq", "evidence_last_seq", "evidence_head"}

// csvRow is one CSV row by column name.
type csvRow map[string]string

// CSV writes the violations first (as version 1 did), then one row per
// fact of the other sections: verdict, attention items that are not
// violations, matrix cells, trend points, review times, reviewer load,
// coverage, manual responsibilities and bus factor.
func CSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	ev := r.Evidence.csvColumns()
	write := func(row csvRow) error {
		row["week"] = r.Week
		row["evidence_first_seq"], row["evidence_last_seq"], row["evidence_head"] = ev[0], ev[1], ev[2]
		out := make([]string, len(CSVHeader))
		for i, c := range CSVHeader {
			out[i] = csvSafe(row[c])
		}
		return cw.Write(out)
	}
	itoa := strconv.Itoa
	ftoa := func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
	var rows []csvRow
	attention := map[string]AttentionItem{}
	for _, it := range r.Attention {
		if it.Kind == AttentionViolation {
			attention[it.Ref+"|"+it.RuleID+"|"+it.Since.Format(time.RFC3339)] = it
		}
	}
	for _, v := range r.Violations {
		row := csvRow{"team": v.Team, "rule_id": v.RuleID, "kind": v.Kind, "subject": string(v.Subject), "ref": v.Ref, "url": v.URL,
			"occurred_at": v.OccurredAt.Format(time.RFC3339), "actor": v.Actor, "reason": v.Reason, "section": "violation"}
		if it, ok := attention[v.Ref+"|"+v.RuleID+"|"+v.OccurredAt.Format(time.RFC3339)]; ok {
			row["role"], row["responsibility"] = it.Role, it.Responsibility
			row["who_should_act"], row["open_hours"] = strings.Join(it.WhoShouldAct, "; "), ftoa(it.OpenHours)
		}
		rows = append(rows, row)
	}
	rows = append(rows, csvRow{"section": "verdict", "reason": r.Verdict})
	for _, it := range r.Attention {
		if it.Kind == AttentionViolation {
			continue
		}
		rows = append(rows, csvRow{"section": it.Kind, "team": it.Team, "rule_id": it.RuleID, "ref": it.Ref, "url": it.URL,
			"occurred_at": it.Since.Format(time.RFC3339), "reason": it.What, "role": it.Role, "responsibility": it.Responsibility,
			"who_should_act": strings.Join(it.WhoShouldAct, "; "), "open_hours": ftoa(it.OpenHours)})
	}
	for _, t := range r.Teams {
		for _, rs := range t.Rules {
			rows = append(rows, csvRow{"section": "rule", "team": t.Team, "rule_id": rs.RuleID, "kind": rs.Kind, "role": rs.Role,
				"responsibility": rs.Responsibility, "checked": itoa(rs.Checked), "held": itoa(rs.Held), "violated": itoa(rs.Violated)})
		}
	}
	trend := func(team string, tps []TrendPoint) {
		for _, tp := range tps {
			rows = append(rows, csvRow{"section": "trend", "team": team, "ref": tp.Week,
				"checked": itoa(tp.Checked), "held": itoa(tp.Held), "violated": itoa(tp.Violated)})
		}
	}
	trend("", r.Trend)
	for _, t := range r.Teams {
		trend(t.Team, t.Trend)
	}
	times := func(team string, rt ReviewTimes) {
		for _, m := range []struct {
			name string
			l    Latency
		}{{"first_review", rt.FirstReview}, {"approval", rt.Approval}} {
			rows = append(rows,
				csvRow{"section": "review_time", "team": team, "metric": m.name + "_median_hours", "value": ftoa(m.l.MedianHours)},
				csvRow{"section": "review_time", "team": team, "metric": m.name + "_p90_hours", "value": ftoa(m.l.P90Hours)},
				csvRow{"section": "review_time", "team": team, "metric": m.name + "_samples", "value": itoa(m.l.Samples)})
		}
	}
	times("", r.ReviewTimes)
	for _, t := range r.Teams {
		times(t.Team, t.ReviewTimes)
	}
	for _, l := range r.Reviewers {
		rows = append(rows,
			csvRow{"section": "reviewer", "actor": l.AccountID, "ref": l.Name, "metric": "requested", "value": itoa(l.Requested)},
			csvRow{"section": "reviewer", "actor": l.AccountID, "ref": l.Name, "metric": "reviewed", "value": itoa(l.Reviewed)})
	}
	for _, c := range r.Coverage {
		rows = append(rows,
			csvRow{"section": "coverage", "role": c.Role, "ref": c.Title, "metric": "enforced", "value": itoa(c.Enforced)},
			csvRow{"section": "coverage", "role": c.Role, "ref": c.Title, "metric": "manual", "value": itoa(c.Manual)})
		for _, resp := range c.Responsibilities {
			if len(resp.Kinds) == 0 {
				rows = append(rows, csvRow{"section": "manual_responsibility", "role": c.Role, "responsibility": resp.Text})
			}
		}
	}
	for _, bf := range r.BusFactor {
		rows = append(rows,
			csvRow{"section": "bus_factor", "team": bf.Team, "rule_id": bf.RuleID, "role": bf.Role, "metric": "available", "value": itoa(bf.Available)},
			csvRow{"section": "bus_factor", "team": bf.Team, "rule_id": bf.RuleID, "role": bf.Role, "metric": "holders", "value": itoa(bf.Holders)})
	}
	for _, row := range rows {
		if err := write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a cell text when a spreadsheet opens the file: a leading
// =, +, - or @ would make it a formula.
func csvSafe(s string) string {
	s = plainText(s)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Markdown writes the report for a person to read, in the order of the
// HTML page, with the same facts.
func Markdown(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("# Compliance report %s — %s\n\n", r.Week, mdEscape(r.Organization))
	p("%s to %s. Generated %s.\n\n", r.Start.Format("Mon 2 Jan 2006"), r.End.AddDate(0, 0, -1).Format("Mon 2 Jan 2006"),
		r.GeneratedAt.Format("2 Jan 2006 15:04 MST"))
	p("**%s**\n\n", mdEscape(r.Verdict))
	s := r.Summary
	if !r.Empty {
		p("%d checks: %d held, %d violated. %d break-glass use(s). %d pull requests opened, %d merged, %d deployment gates.\n\n",
			s.Checked, s.Held, s.Violated, s.BreakGlass, s.PRsOpened, s.PRsMerged, s.Gates)
	}
	if r.Evidence != nil { // evidence: the outside witness
		p("%s\n\n", r.Evidence.Line())
	}

	p("## Needs attention\n\n")
	if len(r.Attention) == 0 {
		p("Nothing needs attention: no violation, no break-glass use, no gate waiting.\n\n")
	}
	for _, it := range r.Attention {
		p("- **%s** %s, open %s: %s", attentionLabel(it.Kind), mdLink(it.Ref, it.URL), duration(it.OpenHours), mdEscape(sentence(it.What)))
		if it.RuleID != "" {
			p(" Rule: %s of %s", mdEscape(it.RoleTitle), mdEscape(it.TeamName))
			if it.Responsibility != "" {
				p(", “%s”", mdEscape(it.Responsibility))
			}
			p(" (%s).", mdEscape(it.RuleID))
		}
		p(" Who should act: %s. %s\n", mdNames(it), mdEscape(it.Action))
	}
	if len(r.Attention) > 0 {
		p("\n")
	}

	p("## Rules per team (held / checked)\n\n")
	if len(r.Matrix.Rules) == 0 {
		p("No rule had anything to check this week.\n\n")
	} else {
		p("| rule |")
		for _, t := range r.Teams {
			p(" %s |", mdEscape(t.Name))
		}
		p("\n|---|%s\n", strings.Repeat("---:|", len(r.Teams)))
		v := newHTMLView(r)
		for _, row := range v.Rows {
			p("| %s: %s (%s) |", mdEscape(row.Role), mdEscape(row.Responsibility), mdEscape(row.ID))
			for _, c := range row.Cells {
				if c.Checked == 0 {
					p(" – |")
				} else if c.Violated > 0 {
					p(" **%d / %d** |", c.Held, c.Checked)
				} else {
					p(" %d / %d |", c.Held, c.Checked)
				}
			}
			p("\n")
		}
		p("\n")
	}
	if len(r.Matrix.Idle) > 0 {
		ids := make([]string, len(r.Matrix.Idle))
		for i, id := range r.Matrix.Idle {
			ids[i] = mdEscape(id)
		}
		p("Nothing to check this week: %s.\n\n", strings.Join(ids, ", "))
	}

	p("## Trend, last five weeks (held / checked)\n\n")
	if !hasTrend(r) {
		p("No checks were recorded in these five weeks.\n\n")
	} else {
		p("| team |")
		for _, tp := range r.Trend {
			p(" %s |", tp.Week)
		}
		p("\n|---|%s\n", strings.Repeat("---:|", len(r.Trend)))
		p("| all teams |")
		for _, tp := range r.Trend {
			p(" %d / %d |", tp.Held, tp.Checked)
		}
		p("\n")
		for _, t := range r.Teams {
			p("| %s |", mdEscape(t.Name))
			for _, tp := range t.Trend {
				p(" %d / %d |", tp.Held, tp.Checked)
			}
			p("\n")
		}
		p("\n")
	}

	p("## Review times (median · 90th percentile)\n\n")
	if r.ReviewTimes.FirstReview.Samples == 0 && r.ReviewTimes.Approval.Samples == 0 {
		p("No pull request was reviewed or approved this week, so review times are not measured.\n\n")
	} else {
		p("From a pull request's creation to its first review (an approval or a change request by anyone but the author) and to the moment its required approvals were all in.\n\n")
		p("| team | to first review | to approval |\n|---|---|---|\n")
		p("| all teams | %s | %s |\n", mdLatency(r.ReviewTimes.FirstReview), mdLatency(r.ReviewTimes.Approval))
		for _, t := range r.Teams {
			if t.ReviewTimes.FirstReview.Samples+t.ReviewTimes.Approval.Samples > 0 {
				p("| %s | %s | %s |\n", mdEscape(t.Name), mdLatency(t.ReviewTimes.FirstReview), mdLatency(t.ReviewTimes.Approval))
			}
		}
		p("\n")
	}
	p("Median time to first review: %s (%d PRs). Median time to approval: %s (%d PRs).\n\n",
		hours(r.Timing.MedianFirstReviewHours, r.Timing.FirstReviewSamples), r.Timing.FirstReviewSamples,
		hours(r.Timing.MedianApprovalHours, r.Timing.ApprovalSamples), r.Timing.ApprovalSamples)

	p("## Reviewer load\n\n")
	if len(r.Reviewers) == 0 {
		p("Nobody was asked to review this week.\n\n")
	} else {
		p("| reviewer | reviewed | asked |\n|---|---:|---:|\n")
		for _, l := range r.Reviewers {
			p("| %s | %d | %d |\n", mdEscape(l.Name), l.Reviewed, l.Requested)
		}
		p("\n")
	}

	p("## Coverage and bus factor\n\n| role | enforced | manual |\n|---|---:|---:|\n")
	for _, c := range r.Coverage {
		p("| %s | %d | %d |\n", mdEscape(c.Title), c.Enforced, c.Manual)
	}
	p("\nPeople available now per enforced rule:\n\n| rule | team | available | holders | away |\n|---|---|---:|---:|---|\n")
	for _, bf := range r.BusFactor {
		away := make([]string, len(bf.Away))
		for i, a := range bf.Away {
			away[i] = mdEscape(a)
		}
		p("| %s | %s | %d | %d | %s |\n", mdEscape(bf.RuleID), mdEscape(bf.Team), bf.Available, bf.Holders, strings.Join(away, ", "))
	}
	p("\n")
	if v := newHTMLView(r); len(v.Manual) > 0 {
		p("<details><summary>Manual responsibilities: recorded, enforced by no rule</summary>\n\n")
		for _, m := range v.Manual {
			p("**%s**\n\n", mdEscape(m.Title))
			for _, it := range m.Items {
				p("- %s\n", mdEscape(it))
			}
			p("\n")
		}
		p("</details>\n")
	}
	return ew.err
}

func hasTrend(r *Report) bool {
	for _, tp := range r.Trend {
		if tp.Checked > 0 {
			return true
		}
	}
	return false
}

func mdLatency(l Latency) string {
	if l.Samples == 0 {
		return "none"
	}
	return fmt.Sprintf("%s · %s (%d PRs)", hours(l.MedianHours, 1), hours(l.P90Hours, 1), l.Samples)
}

func mdNames(it AttentionItem) string {
	if len(it.WhoShouldAct) == 0 {
		if it.RuleID != "" {
			return "nobody holds this role in " + mdEscape(it.TeamName)
		}
		return "nobody is named"
	}
	out := make([]string, len(it.WhoShouldAct))
	for i, n := range it.WhoShouldAct {
		out[i] = mdEscape(n)
	}
	return strings.Join(out, ", ")
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

// mdReplacer neutralises Markdown: emphasis, code, links, tables, HTML and
// entities show as the characters they are.
var mdReplacer = strings.NewReplacer(`\`, `\\`, "|", `\|`, "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "&", "&amp;",
	"*", `\*`, "_", `\_`, "`", "\\`", "~", `\~`)

// mdEscape makes upstream text one line of plain Markdown text.
func mdEscape(s string) string { return isolate(mdReplacer.Replace(plainText(s))) }

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
