package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"strings"
)

// HTML writes a self-contained page: inline CSS and inline SVG charts, no
// external assets, so it can be mailed, attached to Jira or opened offline.
// It reads top to bottom in the order a CTO asks: the verdict, what needs
// attention, which rules held per team, the trend, review times and load,
// then coverage and bus factor.
func HTML(w io.Writer, r *Report) error {
	return pageTmpl.Execute(w, newHTMLView(r))
}

type htmlView struct {
	R        *Report
	Rows     []matrixRow
	Idle     []ruleInWords
	Manual   []manualRole
	Thin     []BusFactor // rules fewer than two people can satisfy now
	MaxTrend int         // common scale of the trend charts
	MaxLoad  int         // common scale of the reviewer load bars
	Waiting  int
}

type ruleInWords struct {
	ID, Role, Responsibility string
}

type matrixRow struct {
	ruleInWords
	Cells []RuleStats // one per team, in r.Teams order
}

type manualRole struct {
	Title string
	Items []string
}

func newHTMLView(r *Report) htmlView {
	v := htmlView{R: r}
	words := map[string]ruleInWords{}
	cells := map[string]map[string]RuleStats{} // rule → team → stats
	for _, t := range r.Teams {
		for _, rs := range t.Rules {
			words[rs.RuleID] = ruleInWords{ID: rs.RuleID, Role: roleTitle(r, rs.Role), Responsibility: rs.Responsibility}
			if cells[rs.RuleID] == nil {
				cells[rs.RuleID] = map[string]RuleStats{}
			}
			cells[rs.RuleID][t.Team] = rs
		}
	}
	for _, id := range r.Matrix.Rules {
		row := matrixRow{ruleInWords: words[id]}
		for _, t := range r.Teams {
			row.Cells = append(row.Cells, cells[id][t.Team])
		}
		v.Rows = append(v.Rows, row)
	}
	for _, id := range r.Matrix.Idle {
		v.Idle = append(v.Idle, words[id])
	}
	for _, c := range r.Coverage {
		m := manualRole{Title: c.Title}
		for _, resp := range c.Responsibilities {
			if len(resp.Kinds) == 0 {
				m.Items = append(m.Items, resp.Text)
			}
		}
		if len(m.Items) > 0 {
			v.Manual = append(v.Manual, m)
		}
	}
	for _, bf := range r.BusFactor {
		if bf.Available < 2 {
			v.Thin = append(v.Thin, bf)
		}
	}
	for _, t := range r.Teams {
		for _, tp := range t.Trend {
			v.MaxTrend = max(v.MaxTrend, tp.Checked)
		}
	}
	for _, l := range r.Reviewers {
		v.MaxLoad = max(v.MaxLoad, l.Requested)
	}
	for _, it := range r.Attention {
		if it.Kind == AttentionGate {
			v.Waiting++
		}
	}
	return v
}

func roleTitle(r *Report, role string) string {
	for _, c := range r.Coverage {
		if c.Role == role && c.Title != "" {
			return c.Title
		}
	}
	return role
}

// TrendTeams are the teams with at least one check in the five weeks.
func (v htmlView) TrendTeams() []TeamReport {
	var out []TeamReport
	for _, t := range v.R.Teams {
		for _, tp := range t.Trend {
			if tp.Checked > 0 {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// QuietTeams are the teams with no check in the five weeks, named in one
// line instead of drawing empty charts.
func (v htmlView) QuietTeams() []string {
	var out []string
	for _, t := range v.R.Teams {
		quiet := true
		for _, tp := range t.Trend {
			quiet = quiet && tp.Checked == 0
		}
		if quiet {
			out = append(out, t.Name)
		}
	}
	return out
}

// TrendChart draws one team's five weeks as stacked columns (held below,
// violated above) on the scale shared by every team.
func (v htmlView) TrendChart(t TeamReport) template.HTML {
	const w, h, left, top, bottom, colW, gap = 300, 130, 8, 18, 22, 40, 18
	scale := max(v.MaxTrend, 1)
	chartH := h - top - bottom
	var desc []string
	for _, tp := range t.Trend {
		desc = append(desc, fmt.Sprintf("%s: %d checked, %d held, %d violated", tp.Week, tp.Checked, tp.Held, tp.Violated))
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart trend" role="img" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`, w, h)
	fmt.Fprintf(&s, `<title>%s: checks per week, held and violated, last five weeks</title>`, html.EscapeString(plainText(t.Name)))
	fmt.Fprintf(&s, `<desc>%s</desc>`, html.EscapeString(strings.Join(desc, "; ")))
	base := top + chartH
	fmt.Fprintf(&s, `<line class="axis" x1="0" y1="%d" x2="%d" y2="%d"/>`, base, w, base)
	for i, tp := range t.Trend {
		x := left + i*(colW+gap)
		hh := chartH * tp.Held / scale
		hv := chartH * tp.Violated / scale
		if tp.Held > 0 && hh < 2 {
			hh = 2
		}
		if tp.Violated > 0 && hv < 2 {
			hv = 2
		}
		fmt.Fprintf(&s, `<rect class="held" x="%d" y="%d" width="%d" height="%d"/>`, x, base-hh, colW, hh)
		fmt.Fprintf(&s, `<rect class="violated" x="%d" y="%d" width="%d" height="%d"/>`, x, base-hh-hv, colW, hv)
		label, cls := fmt.Sprint(tp.Checked), "num"
		if tp.Violated > 0 {
			label, cls = fmt.Sprintf("%d (%d✗)", tp.Checked, tp.Violated), "num bad"
		}
		fmt.Fprintf(&s, `<text class="%s" x="%d" y="%d" text-anchor="middle">%s</text>`, cls, x+colW/2, base-hh-hv-4, label)
		wk := tp.Week
		if i := strings.Index(wk, "-"); i >= 0 {
			wk = wk[i+1:]
		}
		fmt.Fprintf(&s, `<text class="lbl" x="%d" y="%d" text-anchor="middle">%s</text>`, x+colW/2, base+16, html.EscapeString(wk))
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

// LoadBar draws a reviewer's load on the scale of the busiest reviewer: the
// light bar is what they were asked, the dark part what they reviewed.
func (v htmlView) LoadBar(l ReviewerLoad) template.HTML {
	scale := max(v.MaxLoad, 1)
	asked := 100 * float64(l.Requested) / float64(scale)
	done := 100 * float64(min(l.Reviewed, l.Requested)) / float64(scale)
	return template.HTML(fmt.Sprintf(`<svg class="bar" role="img" viewBox="0 0 100 10" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">`+
		`<title>%s: asked on %d, reviewed %d</title><desc>%d of %d pull requests reviewed; the longest bar is %d.</desc>`+
		`<rect class="asked" x="0" y="0" width="%.2f" height="10"/><rect class="held" x="0" y="0" width="%.2f" height="10"/></svg>`,
		html.EscapeString(plainText(l.Name)), l.Requested, l.Reviewed, l.Reviewed, l.Requested, scale, asked, done))
}

// CoverageBar draws a role's responsibilities, enforced then manual.
func (v htmlView) CoverageBar(c RoleCoverage) template.HTML {
	total := max(c.Enforced+c.Manual, 1)
	e := 100 * float64(c.Enforced) / float64(total)
	return template.HTML(fmt.Sprintf(`<svg class="bar" role="img" viewBox="0 0 100 10" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">`+
		`<title>%s: %d enforced by a rule, %d manual</title><desc>%d of %d responsibilities enforced.</desc>`+
		`<rect class="asked" x="0" y="0" width="100" height="10"/><rect class="held" x="0" y="0" width="%.2f" height="10"/></svg>`,
		html.EscapeString(plainText(c.Title)), c.Enforced, c.Manual, c.Enforced, c.Enforced+c.Manual, e))
}

func teamName(r *Report, id string) string {
	for _, t := range r.Teams {
		if t.Team == id {
			return t.Name
		}
	}
	return id
}

func cellClass(rs RuleStats) string {
	switch {
	case rs.Checked == 0:
		return "none"
	case rs.Violated > 0:
		return "bad"
	}
	return "ok"
}

func latency(l Latency) template.HTML {
	if l.Samples == 0 {
		return `<span class="muted">none</span>`
	}
	// No-break spaces keep a figure with its unit; the line may still
	// break between the median and the 90th percentile.
	nb := func(s string) string { return strings.ReplaceAll(html.EscapeString(s), " ", "&nbsp;") }
	return template.HTML(fmt.Sprintf(`median %s · p90 %s <span class="muted">(%s)</span>`,
		nb(hours(l.MedianHours, 1)), nb(hours(l.P90Hours, 1)), nb(fmt.Sprintf("%d %s", l.Samples, plural(l.Samples, "PR", "PRs")))))
}

func attentionLabel(kind string) string {
	switch kind {
	case AttentionViolation:
		return "Violation"
	case AttentionBreakGlass:
		return "Break-glass"
	case AttentionGate:
		return "Gate waiting"
	}
	return kind
}

func names(ns []string) template.HTML {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = string(htmlName(n))
	}
	return template.HTML(strings.Join(parts, ", "))
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"date":      func(t interface{ Format(string) string }) string { return t.Format("Mon 2 Jan 2006") },
	"when":      func(t interface{ Format(string) string }) string { return t.Format("Mon 2 Jan 15:04 MST") },
	"name":      htmlName,
	"text":      htmlText,
	"names":     names,
	"open":      duration,
	"latency":   latency,
	"cellClass": cellClass,
	"label":     attentionLabel,
	"short":     short,
	"plural":    plural,
	"lastIdle":  func(i int, xs []ruleInWords) bool { return i == len(xs)-1 },
	"teamAt":    func(r *Report, i int) string { return plainText(r.Teams[i].Name) },
	"teamName":  teamName,
}).Parse(pageHTML))

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>Compliance report {{.R.Week}} — {{.R.Organization}}</title>
<style>
:root{--fg:#1d1d1f;--muted:#5f6368;--bg:#f6f7f9;--card:#fff;--line:#d9dde3;--head:#eef1f5;--ok:#1b6e20;--ok-bg:#e3f2e4;--bad:#b3261e;--bad-bg:#fbe4e2;--none-bg:transparent;--asked:#c9d3df;--held:#2e7d32;--violated:#c62828;--link:#0b57a8;--wait:#8a5300}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--muted:#a8adb4;--bg:#141618;--card:#1e2124;--line:#3a3f45;--head:#262a2e;--ok:#81c995;--ok-bg:#1f3a25;--bad:#f6a39d;--bad-bg:#47201d;--asked:#4a525c;--held:#5bb974;--violated:#ee675c;--link:#8ab4f8;--wait:#f0a640}}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;overflow-wrap:normal;word-break:normal}
main{max-width:1040px;margin:0 auto;padding:20px 16px 40px}
h1{font-size:24px;line-height:1.25;margin:0 0 4px} h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px} h3{font-size:16px;margin:0 0 6px}
p{margin:6px 0} a{color:var(--link)} .nw{white-space:nowrap} .muted{color:var(--muted)} .ok{color:var(--ok)} .bad{color:var(--bad)}
.verdict{font-size:18px;font-weight:600;padding:12px 14px;border-radius:8px;border-left:6px solid var(--ok);background:var(--card);margin:14px 0}
.verdict.attn{border-left-color:var(--bad)} .verdict.empty{border-left-color:var(--muted)}
.facts{color:var(--muted);font-size:14px}
ol.attention{list-style:none;padding:0;margin:0}
ol.attention li{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--bad);border-radius:8px;padding:10px 12px;margin:0 0 10px;break-inside:avoid}
ol.attention li.gate_waiting{border-left-color:var(--wait)}
.tag{display:inline-block;font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.03em;color:var(--bad)}
li.gate_waiting .tag{color:var(--wait)}
.head{display:flex;flex-wrap:wrap;gap:4px 12px;align-items:baseline}
.head .ref{font-weight:600}
.age{margin-left:auto;font-size:13px;color:var(--muted);white-space:nowrap}
.what,.rule,.who{overflow-wrap:break-word}
.rule .id,.rid{font-size:12px;color:var(--muted)}
table{border-collapse:collapse;background:var(--card);margin:8px 0;max-width:100%}
th,td{border:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.n{text-align:right;white-space:nowrap} th.n{text-align:right}
table.matrix td.c{text-align:center;white-space:nowrap;font-variant-numeric:tabular-nums}
td.c.ok{background:var(--ok-bg);color:var(--ok)} td.c.bad{background:var(--bad-bg);color:var(--bad);font-weight:700} td.c.none{color:var(--muted)}
table.wide{width:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;break-inside:avoid}
svg.chart{display:block;width:100%;max-width:320px;height:auto}
svg .held{fill:var(--held)} svg .violated{fill:var(--violated)} svg .asked{fill:var(--asked)}
svg .axis{stroke:var(--line)} svg .lbl{font-size:12px;fill:var(--muted)} svg .num{font-size:12px;fill:var(--fg)} svg .num.bad{fill:var(--bad);font-weight:700}
svg.bar{display:block;width:100%;min-width:60px;height:12px;border-radius:2px}
td.barcell{width:45%}
details{margin:8px 0} summary{cursor:pointer;color:var(--link)}
.legend span{display:inline-block;margin-right:14px;font-size:13px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:baseline}
.legend i.held{background:var(--held)} .legend i.violated{background:var(--violated)} .legend i.asked{background:var(--asked)}
footer{margin-top:36px;font-size:12px;color:var(--muted)}
@media (max-width:560px){
 table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
 table.stack thead{display:none}
 table.stack tr{border:1px solid var(--line);border-radius:6px;margin:0 0 8px;background:var(--card)}
 table.stack td{border:0;border-top:1px solid var(--line);text-align:left}
 table.stack td:first-child{border-top:0;font-weight:600}
 table.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-weight:400}
 table.matrix.stack th{display:block;border:0;background:transparent;padding:6px 8px 2px}
 table.matrix.stack td.c{display:inline-block;width:auto;border:0;margin:0 4px 8px 8px;padding:2px 8px;border-radius:4px;white-space:normal;text-align:left}
 .age{margin-left:0}
}
@page{size:A4;margin:14mm 12mm}
@media print{
 :root{--fg:#000;--muted:#444;--bg:#fff;--card:#fff;--line:#bbb;--head:#eee;--link:#000}
 body{font-size:10.5pt;background:#fff} main{max-width:none;padding:0}
 h2{break-after:avoid} tr,li,.panel,svg{break-inside:avoid}
 a{text-decoration:none} summary{color:#000}
 .grid{grid-template-columns:repeat(3,1fr)}
}
</style></head>
<body><main>
<h1>Compliance report <span class="nw">{{.R.Week}}</span> · {{name .R.Organization}}</h1>
<p class="muted">{{date .R.Start}} to {{date .R.End}} (exclusive)</p>
<p class="verdict{{if .R.Attention}} attn{{else if .R.Empty}} empty{{end}}" id="verdict">{{.R.Verdict}}</p>
{{if not .R.Empty}}<p class="facts">{{.R.Summary.Checked}} checks: {{.R.Summary.Held}} held, {{.R.Summary.Violated}} violated · {{.R.Summary.BreakGlass}} break-glass · {{.R.Summary.PRsOpened}} pull requests opened, {{.R.Summary.PRsMerged}} merged · {{.R.Summary.Gates}} deployment gates</p>{{end}}
{{with .R.Evidence}}<p class="muted" id="evidence">{{.LineHTML}}</p>{{end}}

<h2 id="attention">Needs attention</h2>
{{if .R.Attention}}<ol class="attention">
{{range .R.Attention}}<li class="{{.Kind}}">
<div class="head"><span class="tag">{{label .Kind}}</span> <span class="ref">{{if .URL}}<a href="{{.URL}}">{{name .Ref}}</a>{{else}}{{name .Ref}}{{end}}</span> <span class="age" title="since {{when .Since}}">open {{open .OpenHours}}</span></div>
<p class="what">{{text .What}}</p>
{{if .RuleID}}<p class="rule"><b>{{name .RoleTitle}}</b> of {{name .TeamName}}{{if .Responsibility}}: “{{text .Responsibility}}”{{end}} <span class="id">({{name .RuleID}})</span></p>{{end}}
<p class="who"><b>Who should act:</b> {{if .WhoShouldAct}}{{names .WhoShouldAct}}{{else if .RuleID}}<span class="bad">nobody holds this role in {{name .TeamName}}</span>{{else}}<span class="bad">nobody is named</span>{{end}}. {{.Action}}</p>
</li>
{{end}}</ol>{{else}}<p>Nothing needs attention: no violation, no break-glass use, no gate waiting.</p>{{end}}

<h2 id="rules">Rules per team</h2>
{{if .Rows}}<p class="muted">Each cell: checks that held / checks made this week.</p>
<table class="matrix stack"><thead><tr><th>rule</th>{{range .R.Teams}}<th>{{name .Name}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr><th scope="row">{{name .Role}}: {{text .Responsibility}}<br><span class="rid">{{name .ID}}</span></th>{{range $i, $c := .Cells}}<td class="c {{cellClass $c}}" data-label="{{teamAt $.R $i}}"><span class="nw">{{if $c.Checked}}{{$c.Held}} / {{$c.Checked}}{{else}}–{{end}}</span></td>{{end}}</tr>
{{end}}</tbody></table>{{else}}<p>No rule had anything to check this week.</p>{{end}}
{{if .Idle}}<details class="idle"><summary>{{len .Idle}} {{plural (len .Idle) "rule" "rules"}} had nothing to check this week</summary><p>{{range $i, $x := .Idle}}{{name $x.ID}}{{if not (lastIdle $i $.Idle)}}, {{end}}{{end}}</p></details>{{end}}

<h2 id="trend">Trend, last five weeks</h2>
{{with .TrendTeams}}<p class="legend"><span><i class="held"></i>held</span><span><i class="violated"></i>violated</span></p>
<div class="grid">{{range .}}<div class="panel"><h3>{{name .Name}}</h3>{{$.TrendChart .}}</div>{{end}}</div>
{{with $.QuietTeams}}<p class="muted">No checks in these five weeks: {{names .}}.</p>{{end}}
{{else}}<p>No checks were recorded in these five weeks, so there is no trend to draw.</p>{{end}}

<h2 id="reviews">Review times</h2>
{{if or .R.ReviewTimes.FirstReview.Samples .R.ReviewTimes.Approval.Samples}}<p class="muted">Median · 90th percentile, from a pull request's creation to its first review (an approval or a change request by anyone but the author) and to the moment its required approvals were all in; over the pull requests reviewed or approved this week, as rolekeeper recorded them.</p>
<table class="wide"><thead><tr><th>team</th><th>to first review</th><th>to approval</th></tr></thead><tbody>
<tr><td>All teams</td><td>{{latency .R.ReviewTimes.FirstReview}}</td><td>{{latency .R.ReviewTimes.Approval}}</td></tr>
{{range .R.Teams}}{{if or .ReviewTimes.FirstReview.Samples .ReviewTimes.Approval.Samples}}<tr><td>{{name .Name}}</td><td>{{latency .ReviewTimes.FirstReview}}</td><td>{{latency .ReviewTimes.Approval}}</td></tr>
{{end}}{{end}}</tbody></table>{{else}}<p>No pull request was reviewed or approved this week, so review times are not measured.</p>{{end}}

<h2 id="load">Reviewer load</h2>
{{if .R.Reviewers}}<p class="legend"><span><i class="held"></i>reviewed</span><span><i class="asked"></i>asked, not reviewed</span></p>
<p class="muted">Pull requests of the week each person was asked to review; every bar on one scale, the longest {{.MaxLoad}}.</p>
<table class="wide"><thead><tr><th>reviewer</th><th>load</th><th class="n">done / asked</th></tr></thead><tbody>
{{range .R.Reviewers}}<tr><td>{{name .Name}}</td><td class="barcell">{{$.LoadBar .}}</td><td class="n" >{{.Reviewed}} / {{.Requested}}</td></tr>
{{end}}</tbody></table>{{else}}<p>Nobody was asked to review this week.</p>{{end}}

<h2 id="coverage">Coverage and bus factor</h2>
{{if .R.Coverage}}<table class="wide"><thead><tr><th>role</th><th>responsibilities enforced by a rule</th><th class="n">enforced / all</th></tr></thead><tbody>
{{range .R.Coverage}}<tr><td>{{name .Title}}</td><td class="barcell">{{$.CoverageBar .}}</td><td class="n">{{.Enforced}} / {{len .Responsibilities}}</td></tr>
{{end}}</tbody></table>{{end}}
{{if .R.BusFactor}}{{if .Thin}}<p><b>{{len .Thin}} of {{len .R.BusFactor}}</b> rule and team pairs have fewer than two people available now:</p>
<table class="wide"><thead><tr><th>rule, team</th><th class="n">available</th><th>away now</th></tr></thead><tbody>
{{range .Thin}}<tr><td>{{name .RuleID}}<br><span class="muted">{{name (teamName $.R .Team)}}</span></td><td class="n {{if lt .Available 1}}bad{{end}}">{{.Available}} of {{.Holders}}</td><td>{{names .Away}}</td></tr>
{{end}}</tbody></table>{{else}}<p>Every rule that needs people has at least two available in each team.</p>{{end}}
<details><summary>Bus factor of every rule ({{len .R.BusFactor}})</summary>
<table class="wide"><thead><tr><th>rule, team</th><th class="n">available</th><th>away now</th></tr></thead><tbody>
{{range .R.BusFactor}}<tr><td>{{name .RuleID}}<br><span class="muted">{{name (teamName $.R .Team)}}</span></td><td class="n">{{.Available}} of {{.Holders}}</td><td>{{names .Away}}</td></tr>
{{end}}</tbody></table></details>{{end}}
{{if .Manual}}<details><summary>Manual responsibilities: recorded, enforced by no rule</summary>
{{range .Manual}}<h3>{{name .Title}}</h3><ul>{{range .Items}}<li>{{text .}}</li>{{end}}</ul>{{end}}</details>{{end}}

<footer>Generated {{.R.GeneratedAt.Format "Mon 2 Jan 2006 15:04 MST"}} by rolekeeper · schema {{.R.SchemaVersion}}{{if .R.RolesHash}} · roles.yaml {{short .R.RolesHash}}{{end}}</footer>
</main></body></html>
`
