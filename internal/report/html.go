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
func HTML(w io.Writer, r *Report) error {
	return pageTmpl.Execute(w, htmlView{R: r})
}

type htmlView struct{ R *Report }

func (v htmlView) TeamChart() template.HTML {
	var bars []bar
	for _, t := range v.R.Teams {
		bars = append(bars, bar{Label: t.Name, A: t.Held, B: t.Violated})
	}
	return stackedBars("Checks per team: held and violated", bars, "held", "violated")
}

func (v htmlView) TrendChart() template.HTML {
	var bars []bar
	for _, tp := range v.R.Trend {
		bars = append(bars, bar{Label: tp.Week, A: tp.Held, B: tp.Violated})
	}
	return columns("Trend: held and violated per week", bars, "held", "violated")
}

func (v htmlView) ReviewerChart() template.HTML {
	var bars []bar
	for i, l := range v.R.Reviewers {
		if i == 15 {
			break
		}
		bars = append(bars, bar{Label: l.Name, A: l.Reviewed, B: l.Requested - l.Reviewed})
	}
	return stackedBars("Reviewer load (top 15): reviewed and still waiting", bars, "reviewed", "waiting")
}

func (v htmlView) CoverageChart() template.HTML {
	var bars []bar
	for _, c := range v.R.Coverage {
		bars = append(bars, bar{Label: c.Title, A: c.Enforced, B: c.Manual})
	}
	return stackedBars("Responsibilities per role: enforced by a rule and manual", bars, "enforced", "manual")
}

type bar struct {
	Label string
	A, B  int
}

const (
	colorA = "#2e7d32" // green: held, reviewed, enforced
	colorB = "#c62828" // red: violated, waiting, manual
)

// stackedBars draws horizontal bars, A then B, with labels on the left.
func stackedBars(title string, bars []bar, nameA, nameB string) template.HTML {
	if len(bars) == 0 {
		return template.HTML(`<p class="muted">No data.</p>`)
	}
	const labelW, chartW, rowH, top = 220, 440, 26, 28
	max := 1
	for _, b := range bars {
		if b.A+b.B > max {
			max = b.A + b.B
		}
	}
	height := top + len(bars)*rowH + 10
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="100%%" style="max-width:%dpx" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">`, labelW+chartW+60, height, labelW+chartW+60)
	fmt.Fprintf(&s, `<title>%s</title>`, html.EscapeString(title))
	legend(&s, labelW, nameA, nameB)
	for i, b := range bars {
		y := top + i*rowH
		wa := chartW * b.A / max
		wb := chartW * b.B / max
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end" class="lbl">%s</text>`, labelW-8, y+16, html.EscapeString(truncate(b.Label, 30)))
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="18" fill="%s"><title>%s: %d %s</title></rect>`, labelW, y+3, wa, colorA, html.EscapeString(b.Label), b.A, nameA)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="18" fill="%s"><title>%s: %d %s</title></rect>`, labelW+wa, y+3, wb, colorB, html.EscapeString(b.Label), b.B, nameB)
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="num">%d / %d</text>`, labelW+wa+wb+6, y+16, b.A, b.B)
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

// columns draws vertical paired columns, one pair per label.
func columns(title string, bars []bar, nameA, nameB string) template.HTML {
	if len(bars) == 0 {
		return template.HTML(`<p class="muted">No data.</p>`)
	}
	const chartH, colW, gap, left, top = 160, 26, 34, 40, 28
	max := 1
	for _, b := range bars {
		if b.A > max {
			max = b.A
		}
		if b.B > max {
			max = b.B
		}
	}
	width := left + len(bars)*(2*colW+gap) + 20
	if width < 420 {
		width = 420
	}
	height := top + chartH + 40
	var s strings.Builder
	fmt.Fprintf(&s, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="100%%" style="max-width:%dpx" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">`, width, height, width)
	fmt.Fprintf(&s, `<title>%s</title>`, html.EscapeString(title))
	legend(&s, left, nameA, nameB)
	base := top + chartH
	fmt.Fprintf(&s, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, left-4, base, width-10, base)
	for i, b := range bars {
		x := left + i*(2*colW+gap)
		ha := chartH * b.A / max
		hb := chartH * b.B / max
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d %s</title></rect>`, x, base-ha, colW, ha, colorA, html.EscapeString(b.Label), b.A, nameA)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d %s</title></rect>`, x+colW, base-hb, colW, hb, colorB, html.EscapeString(b.Label), b.B, nameB)
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="num" text-anchor="middle">%d</text>`, x+colW/2, base-ha-4, b.A)
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="num" text-anchor="middle">%d</text>`, x+colW+colW/2, base-hb-4, b.B)
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="lbl" text-anchor="middle">%s</text>`, x+colW, base+18, html.EscapeString(b.Label))
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String())
}

func legend(s *strings.Builder, x int, nameA, nameB string) {
	fmt.Fprintf(s, `<rect x="%d" y="6" width="12" height="12" fill="%s"/><text x="%d" y="16" class="lbl">%s</text>`, x, colorA, x+16, html.EscapeString(nameA))
	fmt.Fprintf(s, `<rect x="%d" y="6" width="12" height="12" fill="%s"/><text x="%d" y="16" class="lbl">%s</text>`, x+110, colorB, x+126, html.EscapeString(nameB))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"date":  func(t interface{ Format(string) string }) string { return t.Format("Mon 2 Jan 2006") },
	"when":  func(t interface{ Format(string) string }) string { return t.Format("Mon 2 Jan 15:04") },
	"short": short,
	"hours": hours,
	"join":  strings.Join,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Compliance report {{.R.Week}} — {{.R.Organization}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px} h3{font-size:17px;margin:20px 0 6px}
.muted{color:#666} .cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:12px 16px;min-width:120px}
.card b{display:block;font-size:24px} .ok{color:#2e7d32} .bad{color:#c62828}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0;table-layout:auto}
th,td{border:1px solid #e1e4e8;padding:6px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f2f5;white-space:nowrap} td.n{text-align:right;white-space:nowrap} td.w{white-space:nowrap}
.chart{background:#fff;border:1px solid #e1e4e8;border-radius:8px;max-width:100%;height:auto;margin:8px 0}
.chart .lbl{font-size:12px;fill:#333} .chart .num{font-size:11px;fill:#555}
a{color:#0b5cad}
</style></head>
<body><main>
<h1>Compliance report {{.R.Week}}</h1>
<p class="muted">{{.R.Organization}} · {{date .R.Start}} to {{date .R.End}} (exclusive) · generated {{.R.GeneratedAt.Format "2 Jan 2006 15:04 MST"}}</p>
<div class="cards">
<div class="card">checks<b>{{.R.Summary.Checked}}</b></div>
<div class="card">held<b class="ok">{{.R.Summary.Held}}</b></div>
<div class="card">violated<b class="bad">{{.R.Summary.Violated}}</b></div>
<div class="card">break-glass<b class="bad">{{.R.Summary.BreakGlass}}</b></div>
<div class="card">PRs opened / merged<b>{{.R.Summary.PRsOpened}} / {{.R.Summary.PRsMerged}}</b></div>
<div class="card">deployment gates<b>{{.R.Summary.Gates}}</b></div>
</div>
{{with .R.Evidence}}<p class="muted" id="evidence">{{.Line}}</p>{{end}}
{{.TeamChart}}
{{.TrendChart}}

<h2>Per team and rule</h2>
{{range .R.Teams}}
<h3>{{.Name}}</h3>
<p class="muted">{{.Checked}} checked, {{.Held}} held, {{.Violated}} violated · {{.PRsOpened}} PRs opened, {{.PRsMerged}} merged</p>
<table><tr><th>rule</th><th>role</th><th>responsibility</th><th>checked</th><th>held</th><th>violated</th></tr>
{{range .Rules}}<tr><td>{{.RuleID}}</td><td>{{.Role}}</td><td>{{.Responsibility}}</td><td class="n">{{.Checked}}</td><td class="n">{{.Held}}</td><td class="n">{{.Violated}}</td></tr>
{{end}}</table>
{{if .Violations}}<table><tr><th>when</th><th>case</th><th>rule</th><th>reason</th></tr>
{{range .Violations}}<tr><td class="w">{{when .OccurredAt}}</td><td>{{if .URL}}<a href="{{.URL}}">{{.Ref}}</a>{{else}}{{.Ref}}{{end}}</td><td>{{.RuleID}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
{{end}}

<h2>Break-glass</h2>
{{if .R.BreakGlass}}<table><tr><th>when</th><th>who</th><th>gate</th><th>reason</th><th>follow-up</th></tr>
{{range .R.BreakGlass}}<tr><td class="w">{{when .At}}</td><td>{{if .ByName}}{{.ByName}}{{else}}{{.By}}{{end}}</td><td>{{if .URL}}<a href="{{.URL}}">{{.Repository}}@{{short .Commit}} → {{.Environment}}</a>{{else}}{{.Repository}}@{{short .Commit}} → {{.Environment}}{{end}}</td><td>{{.Reason}}</td><td>{{.FollowUp}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None this week.</p>{{end}}

<h2>Reviews</h2>
<p>Median time to first review: <b>{{hours .R.Timing.MedianFirstReviewHours .R.Timing.FirstReviewSamples}}</b> ({{.R.Timing.FirstReviewSamples}} PRs) · median time to approval: <b>{{hours .R.Timing.MedianApprovalHours .R.Timing.ApprovalSamples}}</b> ({{.R.Timing.ApprovalSamples}} PRs)</p>
{{.ReviewerChart}}

<h2>Responsibility coverage</h2>
{{.CoverageChart}}
<table><tr><th>role</th><th>responsibility</th><th>enforced by</th></tr>
{{range .R.Coverage}}{{$t := .Title}}{{range .Responsibilities}}<tr><td>{{$t}}</td><td>{{.Text}}</td><td>{{if .Kinds}}{{join .Kinds ", "}}{{else}}<span class="muted">manual</span>{{end}}</td></tr>
{{end}}{{end}}</table>

<h2>Bus factor</h2>
<table><tr><th>rule</th><th>team</th><th>available now</th><th>holders</th><th>away</th></tr>
{{range .R.BusFactor}}<tr><td>{{.RuleID}}</td><td>{{.Team}}</td><td class="n {{if lt .Available 2}}bad{{end}}">{{.Available}}</td><td class="n">{{.Holders}}</td><td>{{join .Away ", "}}</td></tr>
{{end}}</table>
</main></body></html>
`))
