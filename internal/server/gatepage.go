package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/gate"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// A gate's own id carries 72 random bits, too few for a public address, so
// its public page is reached through the public id (128 bits) of any of
// its decisions: GET /gates/{decision public id}. The page shows the gate
// as it is now, redacted as decision pages are: names, never account ids;
// no break-glass reason.

// gateDetails is the part of store.Gate.Data (the gate package's details)
// the page reads.
type gateDetails struct {
	History          []gate.Entry       `json:"history"`
	Authorship       []rules.Authorship `json:"authorship"`
	Via              string             `json:"via"`
	DecisionPublicID string             `json:"decision_public_id"`
}

// gateRecordDoc is the part of a gate decision's document the page reads: the
// gate's id and the policy it was decided under.
type gateRecordDoc struct {
	Gate   string             `json:"gate"`
	Policy rules.DeployResult `json:"policy"`
}

type gatePageData struct {
	Title       string
	Verdict     verdict
	Repository  string
	Commit      string
	Environment string
	Team        string
	Rule        string
	Pending     bool
	Approvers   []string
	PolicyWhy   string
	Excluded    []string
	Notes       []string
	PRs         []prLink
	Expires     time.Time
	Decided     time.Time
	History     []historyRow
	Decision    string // the latest decision's page
	Invalidate  bool
	BreakGlass  string // the role that may break the glass
}

type prLink struct {
	Number int
	URL    string
}

type historyRow struct {
	At     time.Time
	What   string
	By     string
	PR     int
	Detail string
}

// gatePage: GET /gates/{id}, {id} the public id of one of the gate's
// decisions. Anything else is the 404 of an unknown id.
func (s *Server) gatePage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	notFound := func() { http.Error(w, "no such gate", http.StatusNotFound) }
	if !store.ValidPublicID(id) {
		notFound()
		return
	}
	if s.opt.Store == nil {
		http.Error(w, "no store", http.StatusServiceUnavailable)
		return
	}
	ctx := r.Context()
	rec, err := s.opt.Store.GetDecisionByPublicID(ctx, id)
	var doc gateRecordDoc
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound()
		return
	case err != nil:
		s.opt.Logger.Error("gate page", zap.Error(err))
		http.Error(w, "could not read the gate", http.StatusServiceUnavailable)
		return
	case rec.Kind != model.SubjectGate || json.Unmarshal(rec.Decision, &doc) != nil || doc.Gate == "":
		notFound()
		return
	}
	g, err := s.opt.Store.GetGate(ctx, doc.Gate)
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound()
		return
	case err != nil:
		s.opt.Logger.Error("gate page", zap.String("gate", doc.Gate), zap.Error(err))
		http.Error(w, "could not read the gate", http.StatusServiceUnavailable)
		return
	}
	var det gateDetails
	_ = json.Unmarshal(g.Data, &det) // written by the gate package; a missing part shows as missing
	// The policy of the gate's latest decision (who may approve, why).
	latest := rec
	if det.DecisionPublicID != "" && det.DecisionPublicID != id {
		if l, err := s.opt.Store.GetDecisionByPublicID(ctx, det.DecisionPublicID); err == nil && l.Kind == model.SubjectGate {
			var ld gateRecordDoc
			if json.Unmarshal(l.Decision, &ld) == nil && ld.Gate == g.ID {
				latest, doc = l, ld
			}
		}
	}
	var people map[string]string
	if s.opt.People != nil {
		people = s.opt.People()
	}
	var docAny any
	_ = json.Unmarshal(latest.Decision, &docAny)
	red := newRedactor(people, docAny)
	if g.BreakGlass && g.Reason != "" {
		red.withhold(g.Reason)
	}
	for _, e := range det.History {
		if e.What == "break-glass" || e.What == "break-glass via admin token" {
			red.withhold(e.Detail)
		}
	}

	p := gatePageData{Repository: g.Repository, Commit: short(g.Commit), Environment: g.Environment, Team: g.Team, Rule: g.RuleID,
		Pending: g.State == store.GatePending, Expires: g.ExpiresAt.UTC(), Decided: g.DecidedAt.UTC(),
		PolicyWhy: red.text(rules.RuleResult{RuleID: doc.Policy.RuleID, Reason: doc.Policy.Reason}.Why()), Invalidate: doc.Policy.InvalidateOnPush, BreakGlass: s.breakGlassRole(g.Team, g.Environment),
		Decision: store.DecisionURL(s.opt.PublicURL, latest.PublicID)}
	p.Title = g.Environment + " deployment of " + g.Repository + "@" + p.Commit
	for _, a := range g.Approvers {
		p.Approvers = append(p.Approvers, red.name(a))
	}
	if len(p.Approvers) == 0 {
		for _, e := range doc.Policy.Eligible {
			p.Approvers = append(p.Approvers, red.name(e.AccountID))
		}
	}
	for _, a := range det.Authorship {
		p.Excluded = append(p.Excluded, red.name(a.AccountID)+" "+red.text(a.What))
	}
	if len(p.Excluded) == 0 {
		for _, x := range doc.Policy.Excluded {
			p.Excluded = append(p.Excluded, red.text(x))
		}
	}
	for _, n := range doc.Policy.Notes {
		p.Notes = append(p.Notes, red.text(n))
	}
	for _, n := range g.PRs {
		p.PRs = append(p.PRs, prLink{Number: n, URL: s.pullRequestURL(g.Repository, n)})
	}
	for _, e := range slices.Backward(det.History) {
		by := ""
		if e.By != "" {
			by = red.person(e.By)
		}
		// Each fact once: the policy under who may approve, a withheld
		// reason in the verdict.
		detail := red.text(e.Detail)
		if e.What == "asked" {
			if full := red.text(doc.Policy.Reason); full != "" {
				detail = strings.TrimSuffix(strings.TrimSuffix(detail, full), ": ")
			}
			if detail == p.PolicyWhy {
				detail = ""
			}
		}
		if detail == withheld {
			detail = ""
		}
		p.History = append(p.History, historyRow{At: e.At.UTC(), What: e.What, By: by, PR: e.PR, Detail: detail})
	}
	p.Verdict = s.gateVerdict(g, red)

	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	var buf bytes.Buffer
	if err := gateTmpl.Execute(&buf, p); err != nil {
		s.opt.Logger.Error("gate page template", zap.String("gate", g.ID), zap.Error(err))
		http.Error(w, "could not render the gate", http.StatusInternalServerError)
		return
	}
	_, _ = buf.WriteTo(w)
}

// gateVerdict is the gate page's first line.
func (s *Server) gateVerdict(g *store.Gate, red *redactor) verdict {
	by := red.person(g.DecidedBy)
	at := g.DecidedAt.UTC().Format("2 Jan 15:04 MST")
	switch g.State {
	case store.GatePending:
		return verdict{Class: "wait", Text: "Waiting for an approval, until " + g.ExpiresAt.UTC().Format("Mon 2 Jan 15:04 MST") + "."}
	case store.GateApproved:
		if g.BreakGlass {
			return verdict{Class: "unmet", Text: "Opened by break-glass by " + by + " on " + at + ", without the approval the rule asks for. " + withheld}
		}
		return verdict{Class: "met", Text: "Approved by " + by + " on " + at + "."}
	case store.GateRejected:
		return verdict{Class: "unmet", Text: "Rejected by " + by + " on " + at + ": " + red.text(g.Reason)}
	case store.GateExpired:
		return verdict{Class: "unmet", Text: "Expired on " + g.ExpiresAt.UTC().Format("2 Jan 15:04 MST") + " without an approval."}
	}
	return verdict{Class: "idle", Text: "State " + g.State + "."}
}

// person names whoever acted on a gate: a person, rolekeeper itself, or
// the admin token.
func (r *redactor) person(id string) string {
	switch id {
	case gate.AdminToken:
		return "the admin token"
	case gate.Automatic, "":
		return "rolekeeper"
	}
	return r.name(id)
}

// withhold adds a break-glass reason to those the page never shows.
func (r *redactor) withhold(reason string) {
	if reason == "" || slices.Contains(r.reasons, reason) {
		return
	}
	r.reasons = append(r.reasons, reason)
	slices.SortFunc(r.reasons, func(a, b string) int { return len(b) - len(a) })
}

var gateTmpl = template.Must(template.New("gate").Funcs(template.FuncMap{"itoa": strconv.Itoa}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>rolekeeper gate: {{.Title}}</title>
` + pageStyle + `</head><body>
<h1>{{.Environment}} deployment of <bdi>{{.Repository}}</bdi> at <code>{{.Commit}}</code></h1>
<p class="verdict {{.Verdict.Class}}"><bdi>{{.Verdict.Text}}</bdi></p>
<p class="facts"><span>team <bdi>{{.Team}}</bdi></span>{{if .Rule}} · <span>rule {{.Rule}}</span>{{end}}{{range .PRs}} · <span>{{if .URL}}<a href="{{.URL}}">pull request #{{.Number}}</a>{{else}}pull request #{{.Number}}{{end}}</span>{{end}}</p>
<h2>{{if .Pending}}Who may approve{{else}}Who could approve{{end}}</h2>
{{if .Approvers}}<p>{{range $i, $a := .Approvers}}{{if $i}}, {{end}}<strong><bdi>{{$a}}</bdi></strong>{{end}}{{if .PolicyWhy}}: <bdi>{{.PolicyWhy}}</bdi>{{end}}</p>{{else}}<p>Nobody{{if .PolicyWhy}}: <bdi>{{.PolicyWhy}}</bdi>{{end}}.</p>{{end}}
{{range .Excluded}}<p class="muted">Not counted: <bdi>{{.}}</bdi></p>{{end}}
{{range .Notes}}<p class="muted"><bdi>{{.}}</bdi></p>{{end}}
{{if .Pending}}<h2>How</h2>
<ul><li>Approve {{if .PRs}}{{range $i, $p := .PRs}}{{if $i}} or {{end}}pull request #{{$p.Number}}{{end}}{{else}}the pull request{{end}} on Bitbucket, or comment <code>/approve-deploy {{.Environment}}</code> on it{{if .Invalidate}} (an approval given before the last push does not count){{end}}.</li>
<li>To stop the deployment, comment <code>/reject-deploy {{.Environment}} &lt;reason&gt;</code>.</li>
{{if .BreakGlass}}<li>In an emergency, a holder of the {{.BreakGlass}} role may comment <code>/break-glass {{.Environment}} &lt;reason&gt;</code>.</li>{{else}}<li>No rule of roles.yaml lets anyone break the glass of this gate.</li>{{end}}</ul>
<h2>Until when</h2><p>The gate expires on {{.Expires.Format "Mon 2 Jan 2006 15:04 MST"}}; the deployment then fails.</p>{{end}}
{{if .History}}<h2>History</h2>
<ul class="history">{{range .History}}<li><span class="muted">{{.At.Format "Mon 2 Jan 15:04"}}</span> <strong>{{.What}}</strong>{{if .By}} by <bdi>{{.By}}</bdi>{{end}}{{if .PR}} on #{{.PR}}{{end}}{{if .Detail}}<br><bdi>{{.Detail}}</bdi>{{end}}</li>
{{end}}</ul>{{end}}
<p class="muted">rolekeeper · {{if .Decision}}<a href="{{.Decision}}">the latest decision</a>{{end}}</p>
</body></html>
`))

// breakGlassRole is the role roles.yaml lets break the glass of a gate, ""
// when none.
func (s *Server) breakGlassRole(team, environment string) string {
	if s.opt.BreakGlassRole == nil {
		return ""
	}
	return s.opt.BreakGlassRole(team, environment)
}
