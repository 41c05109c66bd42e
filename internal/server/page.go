package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// pageData is what the decision page shows: the record, and the engine's
// decision when it is a pull-request decision (otherwise its JSON).
type pageData struct {
	Rec      *store.DecisionRecord
	PR       *rules.Decision
	Raw      string
	Subject  string
	Commit   string
	Triggers int
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
	data := pageData{Rec: rec, Subject: subject(rec), Commit: short(rec.Commit)}
	if rec.Kind == model.SubjectPullRequest {
		var d rules.Decision
		if json.Unmarshal(rec.Decision, &d) == nil && (len(d.Rules) > 0 || d.Skipped != "") {
			data.PR = &d
			for _, rr := range d.Rules {
				if rr.Triggered {
					data.Triggers++
				}
			}
		}
	}
	if data.PR == nil && len(rec.Decision) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, rec.Decision, "", "  ") == nil {
			data.Raw = buf.String()
		}
	}

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
	fmt.Fprintf(w, "Decision: %s\n", rec.Summary)
	fmt.Fprintf(w, "subject:  %s (%s)\n", p.Subject, rec.Kind)
	if rec.Team != "" {
		fmt.Fprintf(w, "team:     %s\n", rec.Team)
	}
	if rec.Commit != "" {
		fmt.Fprintf(w, "commit:   %s\n", rec.Commit)
	}
	fmt.Fprintf(w, "trigger:  %s\n", rec.Trigger)
	fmt.Fprintf(w, "decided:  %s\n", rec.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(w, "outcome:  %s\n", rec.Outcome)
	if p.PR != nil {
		d := p.PR
		if d.Skipped != "" {
			fmt.Fprintf(w, "skipped:  %s\n", d.Skipped)
		}
		for _, rr := range d.Rules {
			mark := "-"
			if rr.Triggered {
				mark = "✗"
				if rr.Met {
					mark = "✓"
				}
			}
			fmt.Fprintf(w, "\n%s %s (%s, role %s)\n  %s\n  %s\n", mark, rr.RuleID, rr.Kind, rr.Role, rr.Responsibility, rr.Reason)
			for _, pk := range rr.Picks {
				fmt.Fprintf(w, "  reviewer %s: %s\n", pk.Name, pk.Reason)
			}
			if rr.Triggered && rr.Required > 0 {
				fmt.Fprintf(w, "  approvals: %d of %d\n", len(rr.ApprovedBy), rr.Required)
			}
			for _, n := range append(append([]string{}, rr.Ignored...), rr.Notes...) {
				fmt.Fprintf(w, "  note: %s\n", n)
			}
			if rr.Shortfall != "" {
				fmt.Fprintf(w, "  missing: %s\n", rr.Shortfall)
			}
		}
		if len(d.Statuses) > 0 {
			fmt.Fprintln(w)
		}
		for _, st := range d.Statuses {
			fmt.Fprintf(w, "status %s = %s: %s\n", st.Key, st.State, st.Description)
		}
	} else if p.Raw != "" {
		fmt.Fprintf(w, "\n%s\n", p.Raw)
	}
}

var pageTmpl = template.Must(template.New("decision").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>rolekeeper decision: {{.Subject}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#172b4d}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;vertical-align:top}
.rule{border:1px solid #dfe1e6;border-radius:4px;padding:.6rem 1rem;margin:.8rem 0}
.met{border-left:4px solid #36b37e}.unmet{border-left:4px solid #de350b}.idle{border-left:4px solid #c1c7d0;color:#5e6c84}
.small{color:#5e6c84;font-size:.9em}code{background:#f4f5f7;padding:0 .2rem}
</style></head><body>
<h1>Decision: {{.Subject}}</h1>
<p>{{.Rec.Summary}}</p>
<table>
<tr><th>Kind</th><td>{{.Rec.Kind}}</td></tr>
{{if .Rec.Team}}<tr><th>Team</th><td>{{.Rec.Team}}</td></tr>{{end}}
{{if .Rec.Commit}}<tr><th>Commit</th><td><code>{{.Commit}}</code></td></tr>{{end}}
<tr><th>Trigger</th><td>{{.Rec.Trigger}}</td></tr>
<tr><th>Decided</th><td>{{.Rec.CreatedAt.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><th>Outcome</th><td>{{.Rec.Outcome}}</td></tr>
</table>
{{with .PR}}
{{if .Skipped}}<p><strong>Skipped:</strong> {{.Skipped}}</p>{{end}}
<h2>Rules ({{$.Triggers}} triggered)</h2>
{{range .Rules}}
<div class="rule {{if not .Triggered}}idle{{else if .Met}}met{{else}}unmet{{end}}">
<div><strong>{{.RuleID}}</strong> <span class="small">{{.Kind}} · role {{.Role}}</span></div>
<div class="small">“{{.Responsibility}}”</div>
<p>{{.Reason}}</p>
{{if .Picks}}<ul>{{range .Picks}}<li>{{.Name}}{{if .Kept}} (kept){{end}}: {{.Reason}}</li>{{end}}</ul>{{end}}
{{if and .Triggered .Required}}<p>Approvals: {{len .ApprovedBy}} of {{.Required}}{{if .Met}} ✓{{end}}</p>{{end}}
{{range .Ignored}}<p class="small">{{.}}</p>{{end}}
{{range .Notes}}<p class="small">{{.}}</p>{{end}}
{{if .Shortfall}}<p><strong>Missing:</strong> {{.Shortfall}}</p>{{end}}
</div>
{{end}}
{{if .Statuses}}<h2>Statuses</h2><table>{{range .Statuses}}<tr><td><code>{{.Key}}</code></td><td>{{.State}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{end}}
{{if .Raw}}<h2>Decision</h2><pre>{{.Raw}}</pre>{{end}}
<p class="small">rolekeeper · <a href="?format=text">text</a> · <a href="?format=json">json</a></p>
</body></html>
`))
