package server

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// pageData is what the decision page shows, in the order a reader needs
// it: the verdict, the rules that applied (who was asked and why), the
// rest folded into one line, and the record's bookkeeping last.
type pageData struct {
	Rec     *store.DecisionRecord
	PR      *rules.Decision
	Raw     string
	Subject string
	Commit  string
	Link    string // the pull request or Jira issue, when its address is known
	Verdict verdict
	Applied []ruleView
	Quiet   []ruleView // rules that did not apply: folded
	Gate    string     // a gate decision: the gate's public page
}

// verdict is the page's first line.
type verdict struct {
	Class string // met, unmet, wait, idle: the colour
	Text  string
}

// ruleView is one rule as the page shows it: its name once, then why, who
// was asked, where approvals stand.
type ruleView struct {
	ID             string
	Role           string
	Responsibility string
	Verdict        string // met, waiting, failed, advisory, task asked, …
	Class          string
	Why            string
	Asked          []askedView
	Approvals      string
	Notes          []string // excluded, ignored, notes: each once
}

type askedView struct {
	Name string
	Kept bool
	Why  string
}

// decisionPage: GET /decisions/{id}, public and read-only, by the
// decision's public id. ?format=text (or Accept: text/plain) gives plain
// text, ?format=json PublicDecisionView. Every format shows the redacted
// record (publicRecord): names, never account ids; no break-glass reason.
func (s *Server) decisionPage(w http.ResponseWriter, r *http.Request) {
	// Only public ids are served: a numeric id, like any unknown id, is
	// 404, so the pages cannot be walked.
	id := r.PathValue("id")
	if !store.ValidPublicID(id) {
		http.Error(w, "no such decision", http.StatusNotFound)
		return
	}
	if s.opt.Store == nil {
		http.Error(w, "no store", http.StatusServiceUnavailable)
		return
	}
	full, err := s.opt.Store.GetDecisionByPublicID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no such decision", http.StatusNotFound)
		return
	}
	if err != nil {
		s.opt.Logger.Error("decision page", zap.Error(err)) // the id is the page's key: not logged
		http.Error(w, "could not read the decision", http.StatusServiceUnavailable)
		return
	}
	var people map[string]string
	if s.opt.People != nil {
		people = s.opt.People()
	}
	rec := publicRecord(full, people)
	data := s.pageData(rec)

	format := r.URL.Query().Get("format")
	if format == "" && strings.HasPrefix(r.Header.Get("Accept"), "text/plain") {
		format = "text"
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	switch format {
	case "json":
		writeJSON(w, http.StatusOK, s.publicView(rec))
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeText(w, data)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, data); err != nil {
			s.opt.Logger.Error("decision page template", zap.Int64("decision", rec.ID), zap.Error(err))
			http.Error(w, "could not render the decision", http.StatusInternalServerError)
			return
		}
		_, _ = buf.WriteTo(w)
	}
}

func subject(rec *store.DecisionRecord) string {
	switch {
	case rec.Repository != "" && rec.PR > 0:
		return fmt.Sprintf("%s#%d", rec.Repository, rec.PR)
	case rec.IssueKey != "":
		return rec.IssueKey
	case rec.Repository != "" && rec.Commit != "":
		return rec.Repository + "@" + short(rec.Commit)
	}
	return string(rec.Kind)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func writeText(w io.Writer, p pageData) {
	rec := p.Rec
	fmt.Fprintf(w, "%s\n\n", p.Verdict.Text)
	fmt.Fprintf(w, "subject:  %s (%s)\n", p.Subject, rec.Kind)
	if p.Link != "" {
		fmt.Fprintf(w, "link:     %s\n", p.Link)
	}
	if p.Gate != "" {
		fmt.Fprintf(w, "gate:     %s\n", p.Gate)
	}
	if rec.Team != "" {
		fmt.Fprintf(w, "team:     %s\n", rec.Team)
	}
	if rec.Commit != "" {
		fmt.Fprintf(w, "commit:   %s\n", rec.Commit)
	}
	fmt.Fprintf(w, "decided:  %s\n", rec.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	if len(p.Applied) > 0 {
		fmt.Fprintf(w, "\nrules that applied:\n")
	}
	for _, r := range p.Applied {
		fmt.Fprintf(w, "\n[%s] %s (role %s: %q)\n  %s\n", r.Verdict, r.ID, r.Role, r.Responsibility, r.Why)
		for _, a := range r.Asked {
			fmt.Fprintf(w, "  reviewer %s: %s\n", a.Name, a.Why)
		}
		if r.Approvals != "" {
			fmt.Fprintf(w, "  approvals: %s\n", r.Approvals)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	if len(p.Quiet) > 0 {
		ids := make([]string, len(p.Quiet))
		for i, r := range p.Quiet {
			ids[i] = r.ID
		}
		fmt.Fprintf(w, "\ndid not apply: %s\n", strings.Join(ids, ", "))
	}
	if p.PR != nil && len(p.PR.Statuses) > 0 {
		fmt.Fprintln(w)
		for _, st := range p.PR.Statuses {
			fmt.Fprintf(w, "status %s = %s: %s\n", st.Key, st.State, st.Description)
		}
	}
	if p.Raw != "" {
		fmt.Fprintf(w, "\n%s\n", p.Raw)
	}
	fmt.Fprintf(w, "\ntrigger:  %s\noutcome:  %s\n", rec.Trigger, rec.Outcome)
}

// pageStyle is shared by the decision and gate pages: one column that
// fits a phone, long names wrapping at '/' and '-' (never mid-word), dark
// colours that keep their contrast, and user text isolated (<bdi>) so that
// right-to-left names do not turn the line around.
const pageStyle = `<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>
:root{--fg:#172b4d;--muted:#505f79;--bg:#fff;--line:#dfe1e6;--code:#f4f5f7;--met:#006644;--metbg:#e3fcef;--unmet:#bf2600;--unmetbg:#ffebe6;--wait:#7a4d00;--waitbg:#fff7d6;--idle:#505f79;--idlebg:#f4f5f7;--link:#0052cc}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a9b4c2;--bg:#161a1d;--line:#3b444c;--code:#22272b;--met:#7ee2b8;--metbg:#0f2e22;--unmet:#ffb3a3;--unmetbg:#3d1a12;--wait:#f8d87a;--waitbg:#3a2e05;--idle:#a9b4c2;--idlebg:#22272b;--link:#85b8ff}}
body{font-family:system-ui,sans-serif;max-width:48rem;margin:1.5rem auto;padding:0 1rem;color:var(--fg);background:var(--bg);line-height:1.45}
a{color:var(--link)}h1{font-size:1.35rem;margin:.2rem 0 .6rem}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
.verdict{padding:.7rem 1rem;border-radius:6px;font-size:1.1rem;font-weight:600}
.met{color:var(--met);background:var(--metbg)}.unmet{color:var(--unmet);background:var(--unmetbg)}.wait{color:var(--wait);background:var(--waitbg)}.idle{color:var(--idle);background:var(--idlebg)}
.facts{color:var(--muted);margin:.4rem 0}.facts span{white-space:nowrap}
.rule{border:1px solid var(--line);border-radius:6px;padding:.5rem .9rem;margin:.7rem 0}
.tag{display:inline-block;border-radius:3px;padding:0 .4rem;font-size:.85em;font-weight:600}
.muted{color:var(--muted)}ul{padding-left:1.2rem;margin:.3rem 0}
code{background:var(--code);padding:0 .2rem}
table{border-collapse:collapse;width:100%}td,th{padding:.25rem .5rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{font-weight:600}td.when{white-space:nowrap}
h1,p,li,td,summary,.facts{overflow-wrap:break-word}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--code);padding:.5rem}
details{margin:.8rem 0}summary{cursor:pointer}
ul.history{list-style:none;padding:0}ul.history li{padding:.35rem 0;border-bottom:1px solid var(--line)}
@media print{body{max-width:none;margin:0}a{color:inherit}}
</style>`

var pageTmpl = template.Must(template.New("decision").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>rolekeeper: {{.Subject}}</title>
` + pageStyle + `</head><body>
<h1>{{if .Link}}<a href="{{.Link}}">{{.Subject}}</a>{{else}}{{.Subject}}{{end}}</h1>
<p class="verdict {{.Verdict.Class}}"><bdi>{{.Verdict.Text}}</bdi></p>
<p class="facts">{{if .Rec.Team}}<span>team <bdi>{{.Rec.Team}}</bdi></span> · {{end}}{{if .Commit}}<span>commit <code>{{.Commit}}</code></span> · {{end}}<span>decided {{.Rec.CreatedAt.UTC.Format "2 Jan 2006 15:04 MST"}}</span></p>
{{if .Gate}}<p><a href="{{.Gate}}">The gate as it is now: who may approve, how, until when, its history</a></p>{{end}}
{{if .Applied}}<h2>Rules that applied</h2>
{{range .Applied}}<div class="rule">
<div><span class="tag {{.Class}}">{{.Verdict}}</span> <strong>{{.ID}}</strong></div>
<div class="muted">{{.Role}}: “<bdi>{{.Responsibility}}</bdi>”</div>
<p><bdi>{{.Why}}</bdi></p>
{{if .Asked}}<ul>{{range .Asked}}<li>asked <strong><bdi>{{.Name}}</bdi></strong>{{if .Kept}} (already a reviewer){{end}}: <bdi>{{.Why}}</bdi></li>{{end}}</ul>{{end}}
{{if .Approvals}}<p>Approvals: <bdi>{{.Approvals}}</bdi></p>{{end}}
{{range .Notes}}<p class="muted"><bdi>{{.}}</bdi></p>{{end}}
</div>{{end}}{{end}}
{{if .Quiet}}<details><summary>{{if eq (len .Quiet) 1}}1 rule did not apply: {{(index .Quiet 0).ID}}{{else}}{{len .Quiet}} other rules did not apply{{end}}</summary>
<ul>{{range .Quiet}}<li><strong>{{.ID}}</strong>: <bdi>{{.Why}}</bdi></li>{{end}}</ul></details>{{end}}
{{with .PR}}{{if .Statuses}}<details><summary>Commit statuses posted ({{len .Statuses}})</summary><table>{{range .Statuses}}<tr><td><code>{{.Key}}</code></td><td>{{.State}}</td><td><bdi>{{.Description}}</bdi></td></tr>{{end}}</table></details>{{end}}{{end}}
{{if .Raw}}<details><summary>The whole decision (JSON)</summary><pre>{{.Raw}}</pre></details>{{end}}
<p class="muted">Recorded from trigger <code>{{.Rec.Trigger}}</code>, outcome <bdi>{{.Rec.Outcome}}</bdi>. rolekeeper · <a href="?format=text">text</a> · <a href="?format=json">json</a></p>
</body></html>
`))
