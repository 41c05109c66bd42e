// Package report builds the weekly compliance report from what the engines
// stored (findings, pull-request records, gates) and the roles in force, and
// renders it as Markdown, self-contained HTML with inline SVG charts, JSON
// and CSV. Building reads the store; rendering is pure.
package report

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// SchemaVersion is the version of the JSON schema (docs/report-schema.md).
// Fields are only ever added within a version. Version 2 added the verdict,
// needs-attention, the team × rule matrix, per-team trends and review times
// with their 90th percentile; every version 1 field is still there.
const SchemaVersion = 2

// OrgTeam is the team id used for findings that belong to no team.
const OrgTeam = "(organisation)"

// Source is what the report reads from the store.
type Source interface {
	ListFindings(ctx context.Context, f store.FindingFilter) ([]model.Finding, error)
	ListPRs(ctx context.Context, f store.PRFilter) ([]store.PRRecord, error)
	ListGates(ctx context.Context, f store.GateFilter) ([]store.Gate, error)
}

// Report is one ISO week of compliance. Its JSON form is a stable schema.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Organization  string    `json:"organization"`
	Week          string    `json:"week"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	GeneratedAt   time.Time `json:"generated_at"`
	RolesHash     string    `json:"roles_hash,omitempty"`

	Summary    Summary         `json:"summary"`
	Teams      []TeamReport    `json:"teams"`
	Violations []Violation     `json:"violations"`
	BreakGlass []BreakGlassUse `json:"break_glass"`
	Reviewers  []ReviewerLoad  `json:"reviewers"`
	Timing     Timing          `json:"timing"`
	Coverage   []RoleCoverage  `json:"coverage"`
	BusFactor  []BusFactor     `json:"bus_factor"`
	Trend      []TrendPoint    `json:"trend"` // the four previous weeks, then this one

	// Evidence is the week's span of the evidence chain (evidence (h6),
	// docs/evidence.md): the outside witness Jira keeps. Absent when the
	// source keeps no chain.
	Evidence *EvidenceSpan `json:"evidence,omitempty"`
	// Since schema version 2.
	Verdict     string          `json:"verdict"`      // the week in one line
	Empty       bool            `json:"empty"`        // nothing at all was recorded this week
	Attention   []AttentionItem `json:"attention"`    // newest first
	Matrix      Matrix          `json:"matrix"`       // which rules had something to check
	ReviewTimes ReviewTimes     `json:"review_times"` // the whole organisation
}

// Summary totals the week.
type Summary struct {
	Checked    int `json:"checked"`
	Held       int `json:"held"`
	Violated   int `json:"violated"`
	BreakGlass int `json:"break_glass"`
	PRsOpened  int `json:"prs_opened"`
	PRsMerged  int `json:"prs_merged"`
	Gates      int `json:"gates"`
}

// TeamReport is one team's rules and cases.
type TeamReport struct {
	Team       string      `json:"team"`
	Name       string      `json:"name"`
	Rules      []RuleStats `json:"rules"`
	Checked    int         `json:"checked"`
	Held       int         `json:"held"`
	Violated   int         `json:"violated"`
	PRsOpened  int         `json:"prs_opened"`
	PRsMerged  int         `json:"prs_merged"`
	Violations []Violation `json:"violations"`

	// Since schema version 2.
	Trend       []TrendPoint `json:"trend"` // the team's five weeks, as Report.Trend
	ReviewTimes ReviewTimes  `json:"review_times"`
}

// RuleStats counts one rule's checks in a team.
type RuleStats struct {
	RuleID         string `json:"rule_id"`
	Kind           string `json:"kind"`
	Role           string `json:"role"`
	Responsibility string `json:"responsibility"`
	Checked        int    `json:"checked"`
	Held           int    `json:"held"`
	Violated       int    `json:"violated"`
}

// Violation is one case where a rule did not hold, with its link.
type Violation struct {
	Team       string            `json:"team"`
	RuleID     string            `json:"rule_id"`
	Kind       string            `json:"kind"`
	Subject    model.SubjectKind `json:"subject"`
	Ref        string            `json:"ref"`
	URL        string            `json:"url"`
	Reason     string            `json:"reason"`
	Actor      string            `json:"actor,omitempty"`
	OccurredAt time.Time         `json:"occurred_at"`
}

// BreakGlassUse is one emergency override of a deployment gate.
type BreakGlassUse struct {
	Gate        string `json:"gate"`
	Repository  string `json:"repository"`
	Commit      string `json:"commit"`
	Environment string `json:"environment"`
	By          string `json:"by"`
	// ByName is who to show: the person, or "admin token, naming <name>"
	// when the glass was broken through the API (nobody authenticated the
	// person named, so the report does not say they acted).
	ByName   string    `json:"by_name,omitempty"`
	Via      string    `json:"via,omitempty"`   // "comment" or "admin-token"
	Named    string    `json:"named,omitempty"` // through the admin token: the account named
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	FollowUp string    `json:"follow_up,omitempty"`
	URL      string    `json:"url,omitempty"`
}

// ReviewerLoad is how much reviewing one person was asked to do.
type ReviewerLoad struct {
	Person    string `json:"person,omitempty"`
	Name      string `json:"name"`
	AccountID string `json:"account_id"`
	Requested int    `json:"requested"` // PRs of the week where they were a reviewer
	Reviewed  int    `json:"reviewed"`  // of those, PRs they approved or requested changes on
}

// Timing holds review latency medians over the week's pull requests.
type Timing struct {
	MedianFirstReviewHours float64 `json:"median_first_review_hours"`
	FirstReviewSamples     int     `json:"first_review_samples"`
	MedianApprovalHours    float64 `json:"median_approval_hours"`
	ApprovalSamples        int     `json:"approval_samples"`
}

// RoleCoverage says how much of a role's responsibilities rules enforce.
type RoleCoverage struct {
	Role             string                   `json:"role"`
	Title            string                   `json:"title"`
	Enforced         int                      `json:"enforced"`
	Manual           int                      `json:"manual"`
	Responsibilities []ResponsibilityCoverage `json:"responsibilities"`
}

// ResponsibilityCoverage is one responsibility and the rule kinds enforcing it.
type ResponsibilityCoverage struct {
	Text  string   `json:"text"`
	Kinds []string `json:"kinds"` // empty: manual
}

// BusFactor is how many people can satisfy an enforced rule in a team now.
type BusFactor struct {
	RuleID    string   `json:"rule_id"`
	Team      string   `json:"team"`
	Role      string   `json:"role"`
	Holders   int      `json:"holders"`
	Available int      `json:"available"` // holders not away at generation time
	Away      []string `json:"away,omitempty"`
}

// TrendPoint is one week's totals.
type TrendPoint struct {
	Week     string `json:"week"`
	Checked  int    `json:"checked"`
	Held     int    `json:"held"`
	Violated int    `json:"violated"`
}

// Options tune Build.
type Options struct {
	Now       time.Time // generation time (bus factor availability)
	PublicURL string    // base for gate links
}

// Build reads the week's data and assembles the report.
func Build(ctx context.Context, src Source, org *roles.Org, w Week, opt Options) (*Report, error) {
	start, end := w.Start(), w.End()
	trendStart := start.AddDate(0, 0, -28)

	findings, err := src.ListFindings(ctx, store.FindingFilter{Since: trendStart, Until: end})
	if err != nil {
		return nil, err
	}
	prs, err := src.ListPRs(ctx, store.PRFilter{UpdatedSince: start})
	if err != nil {
		return nil, err
	}
	gates, err := src.ListGates(ctx, store.GateFilter{Since: trendStart.AddDate(0, 0, -7), Until: end})
	if err != nil {
		return nil, err
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{
		SchemaVersion: SchemaVersion,
		Organization:  org.Organization,
		Week:          w.String(),
		Start:         start,
		End:           end,
		GeneratedAt:   now.UTC(),
		RolesHash:     org.Hash,
		Violations:    []Violation{},
		BreakGlass:    []BreakGlassUse{},
		Reviewers:     []ReviewerLoad{},
	}
	b := newBuilder(org, r)
	b.now = now
	b.findings(findings, start, end, w)
	b.gates(gates, start, end, opt.PublicURL, w)
	b.pullRequests(prs, start, end)
	b.coverage(now)
	b.finish()
	// evidence (h6): the week's first and last records and the chain head.
	if es, ok := src.(EvidenceSource); ok {
		before, last, err := es.EvidenceSpan(ctx, start, end)
		if err != nil {
			return nil, err
		}
		r.Evidence = NewEvidenceSpan(before, last)
	}
	b.attention(gates, end, opt.PublicURL)
	b.verdict()
	return r, nil
}

type builder struct {
	org       *roles.Org
	r         *Report
	now       time.Time
	teams     map[string]*TeamReport
	rules     map[string]map[string]*RuleStats // team → rule id → stats
	trend     map[string]*TrendPoint
	teamTrend map[string]map[string]*TrendPoint // team → week → totals
	latency   map[string]*latencySamples        // team → samples; "" is the organisation
	owners    map[string]AttentionItem          // rule + team → role in words and who should act
}

func newBuilder(org *roles.Org, r *Report) *builder {
	b := &builder{org: org, r: r, teams: map[string]*TeamReport{},
		rules: map[string]map[string]*RuleStats{}, trend: map[string]*TrendPoint{},
		teamTrend: map[string]map[string]*TrendPoint{}, latency: map[string]*latencySamples{}, owners: map[string]AttentionItem{}}
	for _, t := range org.Teams {
		tr := b.team(t.ID)
		for _, rule := range org.Rules {
			if rule.AppliesToTeam(t.ID) && teamScoped(rule.Kind) {
				b.rule(tr.Team, rule.ID, string(rule.Kind))
			}
		}
	}
	return b
}

// teamScoped reports whether a rule kind is checked per team (the report
// rule is about the report itself).
func teamScoped(k roles.Kind) bool { return k != roles.KindReport }

func (b *builder) team(id string) *TeamReport {
	if id == "" {
		id = OrgTeam
	}
	if t, ok := b.teams[id]; ok {
		return t
	}
	name := id
	if t := b.org.Team(id); t != nil && t.Name != "" {
		name = t.Name
	}
	t := &TeamReport{Team: id, Name: name, Rules: []RuleStats{}, Violations: []Violation{}}
	b.teams[id] = t
	b.rules[id] = map[string]*RuleStats{}
	return t
}

func (b *builder) rule(team, id, kind string) *RuleStats {
	m := b.rules[team]
	if s, ok := m[id]; ok {
		return s
	}
	s := &RuleStats{RuleID: id, Kind: kind}
	for _, rule := range b.org.Rules {
		if rule.ID == id {
			s.Role = rule.Role
			s.Responsibility = rule.Responsibility
			s.Kind = string(rule.Kind)
		}
	}
	m[id] = s
	return s
}

func (b *builder) findings(fs []model.Finding, start, end time.Time, w Week) {
	for _, f := range fs {
		if f.Kind == "break-glass" {
			continue // listed from the gates themselves
		}
		b.count(WeekOf(f.OccurredAt, w.Loc).String(), f.Team, f.Held)
		if f.OccurredAt.Before(start) || !f.OccurredAt.Before(end) {
			continue
		}
		t := b.team(f.Team)
		ruleID := f.RuleID
		if ruleID == "" {
			ruleID = f.Kind
		}
		s := b.rule(t.Team, ruleID, f.Kind)
		s.Checked++
		t.Checked++
		if f.Held {
			s.Held++
			t.Held++
			continue
		}
		s.Violated++
		t.Violated++
		v := Violation{Team: t.Team, RuleID: ruleID, Kind: s.Kind, Subject: f.Subject, Ref: f.Ref,
			URL: f.URL, Reason: f.Reason, Actor: f.Actor, OccurredAt: f.OccurredAt.UTC()}
		t.Violations = append(t.Violations, v)
		b.r.Violations = append(b.r.Violations, v)
	}
}

// count adds one check to a week's trend, the organisation's and the
// team's.
func (b *builder) count(week, team string, held bool) {
	if team == "" {
		team = OrgTeam
	}
	if b.teamTrend[team] == nil {
		b.teamTrend[team] = map[string]*TrendPoint{}
	}
	for _, m := range []map[string]*TrendPoint{b.trend, b.teamTrend[team]} {
		tp := m[week]
		if tp == nil {
			tp = &TrendPoint{Week: week}
			m[week] = tp
		}
		tp.Checked++
		if held {
			tp.Held++
		} else {
			tp.Violated++
		}
	}
}

func (b *builder) gates(gs []store.Gate, start, end time.Time, publicURL string, w Week) {
	for _, g := range gs {
		if !g.CreatedAt.Before(start) && g.CreatedAt.Before(end) {
			b.r.Summary.Gates++
		}
		decidedInWeek := !g.DecidedAt.IsZero() && !g.DecidedAt.Before(start) && g.DecidedAt.Before(end)
		// A gated deployment decided by a person (approved, rejected or
		// expired waiting) is a deploy-approval check that held; break-glass
		// uses are listed apart, and ungated environments are no check.
		isCheck := !g.DecidedAt.IsZero() && !g.BreakGlass && g.RuleID != "" && g.State != store.GatePending
		if isCheck {
			b.count(WeekOf(g.DecidedAt, w.Loc).String(), g.Team, true)
		}
		if decidedInWeek && isCheck {
			t := b.team(g.Team)
			s := b.rule(t.Team, g.RuleID, string(roles.KindDeployApproval))
			s.Checked++
			s.Held++
			t.Checked++
			t.Held++
		}
		if !g.BreakGlass || !decidedInWeek {
			continue
		}
		u := BreakGlassUse{Gate: g.ID, Repository: g.Repository, Commit: g.Commit, Environment: g.Environment,
			By: g.DecidedBy, Reason: g.Reason, At: g.DecidedAt.UTC(), FollowUp: g.FollowUp}
		u.Via, u.Named = breakGlassVia(g)
		if p := b.org.PersonByAccount(g.DecidedBy); p != nil {
			u.ByName = p.DisplayName()
		}
		if u.Via == adminTokenVia || g.DecidedBy == adminTokenVia {
			named := u.Named
			if p := b.org.PersonByAccount(u.Named); p != nil {
				named = p.DisplayName()
			}
			u.ByName = "admin token"
			if named != "" {
				u.ByName += ", naming " + named
			}
		}
		u.URL = gatePage(publicURL, g)
		b.r.BreakGlass = append(b.r.BreakGlass, u)
	}
}

func (b *builder) pullRequests(prs []store.PRRecord, start, end time.Time) {
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(start) && t.Before(end) }
	load := map[string]*ReviewerLoad{}
	var firstReview, approval []float64
	for i := range prs {
		pr := &prs[i]
		opened, merged := in(pr.CreatedAt), pr.State == model.PRMerged && in(pr.ClosedAt)
		if !opened && !merged && !(pr.State == model.PROpen && pr.CreatedAt.Before(end)) {
			continue
		}
		t := b.team(pr.Team)
		if opened {
			t.PRsOpened++
			b.r.Summary.PRsOpened++
		}
		if merged {
			t.PRsMerged++
			b.r.Summary.PRsMerged++
		}
		if in(pr.FirstReviewAt) && !pr.CreatedAt.IsZero() {
			h := pr.FirstReviewAt.Sub(pr.CreatedAt).Hours()
			firstReview = append(firstReview, h)
			b.samples(t.Team).firstReview = append(b.samples(t.Team).firstReview, h)
		}
		if in(pr.ApprovedAt) && !pr.CreatedAt.IsZero() {
			h := pr.ApprovedAt.Sub(pr.CreatedAt).Hours()
			approval = append(approval, h)
			b.samples(t.Team).approval = append(b.samples(t.Team).approval, h)
		}
		reviewed := map[string]bool{}
		for _, a := range pr.Approvals {
			reviewed[a.AccountID] = true
		}
		for _, acc := range pr.Reviewers {
			l := load[acc]
			if l == nil {
				l = &ReviewerLoad{AccountID: acc, Name: acc}
				if p := b.org.PersonByAccount(acc); p != nil {
					l.Person, l.Name = p.ID, p.DisplayName()
				}
				load[acc] = l
			}
			l.Requested++
			if reviewed[acc] {
				l.Reviewed++
			}
		}
	}
	for _, l := range load {
		b.r.Reviewers = append(b.r.Reviewers, *l)
	}
	sort.Slice(b.r.Reviewers, func(i, j int) bool {
		a, c := b.r.Reviewers[i], b.r.Reviewers[j]
		if a.Requested != c.Requested {
			return a.Requested > c.Requested
		}
		return a.Name < c.Name
	})
	b.r.Timing = Timing{
		MedianFirstReviewHours: median(firstReview), FirstReviewSamples: len(firstReview),
		MedianApprovalHours: median(approval), ApprovalSamples: len(approval),
	}
	b.r.ReviewTimes = ReviewTimes{FirstReview: latencyOf(firstReview), Approval: latencyOf(approval)}
}

func (b *builder) coverage(now time.Time) {
	for _, role := range b.org.Roles {
		rc := RoleCoverage{Role: role.ID, Title: role.Title, Responsibilities: []ResponsibilityCoverage{}}
		for _, resp := range role.Responsibilities {
			c := ResponsibilityCoverage{Text: resp.Text, Kinds: []string{}}
			for _, rule := range resp.Rules {
				c.Kinds = append(c.Kinds, string(rule.Kind))
			}
			if resp.Manual() {
				rc.Manual++
			} else {
				rc.Enforced++
			}
			rc.Responsibilities = append(rc.Responsibilities, c)
		}
		b.r.Coverage = append(b.r.Coverage, rc)
	}
	for _, rule := range b.org.Rules {
		if !needsPeople(rule.Kind) {
			continue
		}
		for _, t := range b.org.Teams {
			if !rule.AppliesToTeam(t.ID) {
				continue
			}
			bf := BusFactor{RuleID: rule.ID, Team: t.ID, Role: rule.Role}
			for _, p := range b.org.Holders(rule.Role, t.ID) {
				bf.Holders++
				if away, _ := p.AwayAt(now); away {
					bf.Away = append(bf.Away, p.DisplayName())
				} else {
					bf.Available++
				}
			}
			b.r.BusFactor = append(b.r.BusFactor, bf)
		}
	}
}

// needsPeople reports whether a rule kind needs someone of its role to act
// (the kind's row in the rules registry says).
func needsPeople(k roles.Kind) bool { return rules.NeedsPeople(k) }

func (b *builder) finish() {
	ids := make([]string, 0, len(b.teams))
	for id := range b.teams {
		ids = append(ids, id)
	}
	// Teams in file order, then any others (renamed or org-wide) sorted.
	order := map[string]int{}
	for i, t := range b.org.Teams {
		order[t.ID] = i
	}
	sort.Slice(ids, func(i, j int) bool {
		oi, iok := order[ids[i]]
		oj, jok := order[ids[j]]
		if iok != jok {
			return iok
		}
		if iok {
			return oi < oj
		}
		return ids[i] < ids[j]
	})
	ruleOrder := map[string]int{}
	for i, r := range b.org.Rules {
		ruleOrder[r.ID] = i
	}
	for _, id := range ids {
		t := b.teams[id]
		for _, s := range b.rules[id] {
			t.Rules = append(t.Rules, *s)
		}
		sort.Slice(t.Rules, func(i, j int) bool {
			oi, iok := ruleOrder[t.Rules[i].RuleID]
			oj, jok := ruleOrder[t.Rules[j].RuleID]
			if iok != jok {
				return iok
			}
			if iok {
				return oi < oj
			}
			return t.Rules[i].RuleID < t.Rules[j].RuleID
		})
		sortViolations(t.Violations)
		if l := b.latency[id]; l != nil {
			t.ReviewTimes = ReviewTimes{FirstReview: latencyOf(l.firstReview), Approval: latencyOf(l.approval)}
		}
		b.r.Teams = append(b.r.Teams, *t)
		b.r.Summary.Checked += t.Checked
		b.r.Summary.Held += t.Held
		b.r.Summary.Violated += t.Violated
	}
	sortViolations(b.r.Violations)
	sort.Slice(b.r.BreakGlass, func(i, j int) bool { return b.r.BreakGlass[i].At.Before(b.r.BreakGlass[j].At) })
	b.r.Summary.BreakGlass = len(b.r.BreakGlass)

	w, err := ParseWeek(b.r.Week, b.r.Start.Location())
	if err != nil {
		return
	}
	weeks := []Week{w}
	for i := 0; i < 4; i++ {
		weeks = append([]Week{weeks[0].Prev()}, weeks...)
	}
	b.r.Trend = trendOf(weeks, b.trend)
	for i := range b.r.Teams {
		b.r.Teams[i].Trend = trendOf(weeks, b.teamTrend[b.r.Teams[i].Team])
	}
	b.matrix()
}

// trendOf lists the weeks' totals, zero where nothing was recorded.
func trendOf(weeks []Week, m map[string]*TrendPoint) []TrendPoint {
	out := make([]TrendPoint, 0, len(weeks))
	for _, wk := range weeks {
		tp := TrendPoint{Week: wk.String()}
		if p := m[wk.String()]; p != nil {
			tp = *p
		}
		out = append(out, tp)
	}
	return out
}

func sortViolations(v []Violation) {
	sort.SliceStable(v, func(i, j int) bool {
		if !v[i].OccurredAt.Equal(v[j].OccurredAt) {
			return v[i].OccurredAt.Before(v[j].OccurredAt)
		}
		return v[i].Ref < v[j].Ref
	})
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return round1(s[m])
	}
	return round1((s[m-1] + s[m]) / 2)
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// adminTokenVia is how the gate records a break-glass through the API (its
// DecidedBy and its via): gate.ViaAdminToken, named here to keep the report
// free of the gate package.
const adminTokenVia = "admin-token"

// breakGlassVia reads how a glass was broken and whom an API break-glass
// named, from the gate's own details (gate.details: "via", "named").
func breakGlassVia(g store.Gate) (via, named string) {
	var d struct {
		Via   string `json:"via"`
		Named string `json:"named"`
	}
	if len(g.Data) > 0 && json.Unmarshal(g.Data, &d) == nil {
		return d.Via, d.Named
	}
	return "", ""
}
