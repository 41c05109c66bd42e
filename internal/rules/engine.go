package rules

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/reloadly/rolekeeper/internal/glob"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Limits on what a decision lists, so that a huge pull request gives a
// readable answer.
const (
	maxMatchedPaths = 20  // RuleResult.MatchedPaths
	maxReasonPaths  = 5   // paths named inside a reason or description
	maxDescription  = 140 // commit status description, in characters
)

// Engine evaluates pull requests against one Org. Compile does the work
// that does not depend on the pull request (globs, holders per role and
// team), so keep one Engine per loaded Org. An Engine is never changed
// after Compile and is safe for concurrent use.
type Engine struct {
	org   *roles.Org
	plans map[string][]*plan // team id → pull-request rules applying to it, in file order
}

// compiledRule is a pull-request rule with its globs compiled.
type compiledRule struct {
	rule   *roles.Rule
	kind   *PRKind
	label  string // `id (Title: "responsibility")`
	globs  string // the rule's paths, joined for reasons
	paths  matchSet
	source matchSet
	tests  matchSet
	notes  []string // invalid patterns
}

// plan is a rule as it applies to one team.
type plan struct {
	*compiledRule
	holders []*roles.Person // holders of the rule's role for the team, file order
	why     string          // "Technical lead of team checkout"
	always  string          // code-review's reason, the same for every pull request
}

// Compile prepares an Engine for the Org. The Org must be indexed.
func Compile(org *roles.Org) *Engine {
	e := &Engine{org: org, plans: map[string][]*plan{}}
	if org == nil {
		return e
	}
	var compiled []*compiledRule
	for _, r := range org.Rules {
		kind := prKinds[r.Kind]
		if kind == nil {
			continue
		}
		cr := &compiledRule{rule: r, kind: kind, label: ruleLabel(org, r), globs: strings.Join(r.Paths, ", ")}
		cr.paths = compileGlobs(r.Paths, "paths", &cr.notes)
		cr.source = compileGlobs(r.SourcePaths, "source_paths", &cr.notes)
		cr.tests = compileGlobs(r.TestPaths, "test_paths", &cr.notes)
		compiled = append(compiled, cr)
	}
	for _, t := range org.Teams {
		team := "team " + teamName(t)
		var ps []*plan
		for _, cr := range compiled {
			if !cr.rule.AppliesToTeam(t.ID) {
				continue
			}
			p := &plan{compiledRule: cr}
			if cr.kind.Status == StatusReview {
				p.holders = org.Holders(cr.rule.Role, t.ID)
				p.why = roleWhy(org.Role(cr.rule.Role), cr.rule.Role, team)
				p.always = cr.label + ": every pull request in the repositories of " + team
			}
			ps = append(ps, p)
		}
		e.plans[t.ID] = ps
	}
	return e
}

// Org returns the Org the engine was compiled from.
func (e *Engine) Org() *roles.Org { return e.org }

// Evaluate compiles the Org and evaluates the snapshot. Callers evaluating
// more than one pull request should Compile once and use Engine.Evaluate.
func Evaluate(org *roles.Org, s PRSnapshot) Decision {
	return Compile(org).Evaluate(s)
}

// matchSet is a list of globs compiled for "does any of them match".
// Patterns of the common shapes are sorted out so that the usual defaults
// need a string comparison, not a walk over every directory of every path
// once per pattern (L is literal, X one segment):
//
//	"L"        the path is L
//	"L/**"     the path is L or lies below it
//	"**/L/**"  L appears as whole segments somewhere in the path
//	"**/*L"    the last segment ends with L (L without '/')
//	"**/X"     the last segment matches X
//	"**/X/**"  some segment matches X
//
// Everything else goes through glob.Match on the whole path.
type matchSet struct {
	exact    []string
	prefixes []string // "L/"
	contains []literalSegs
	suffixes []string
	last     []*glob.Glob
	anySeg   []*glob.Glob
	full     []*glob.Glob
}

// literalSegs is L of "**/L/**", with the forms it takes in a path.
type literalSegs struct{ whole, head, tail, mid string } // L, L/, /L, /L/

func (m *matchSet) match(path string) bool {
	if path == "" {
		return false
	}
	for _, l := range m.exact {
		if path == l {
			return true
		}
	}
	for _, pre := range m.prefixes {
		if strings.HasPrefix(path, pre) || path == pre[:len(pre)-1] {
			return true
		}
	}
	for _, c := range m.contains {
		if path == c.whole || strings.HasPrefix(path, c.head) || strings.HasSuffix(path, c.tail) || strings.Contains(path, c.mid) {
			return true
		}
	}
	base := path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		base = path[i+1:]
	}
	if base != "" {
		for _, suf := range m.suffixes {
			if strings.HasSuffix(base, suf) {
				return true
			}
		}
		for _, g := range m.last {
			if g.Match(base) {
				return true
			}
		}
	}
	if len(m.anySeg) > 0 {
		for rest := path; ; {
			seg, tail, more := strings.Cut(rest, "/")
			for _, g := range m.anySeg {
				if g.Match(seg) {
					return true
				}
			}
			if !more {
				break
			}
			rest = tail
		}
	}
	for _, g := range m.full {
		if g.Match(path) {
			return true
		}
	}
	return false
}

func isLiteral(s string) bool { return !strings.ContainsAny(s, `*?[\`) }

func compileGlobs(patterns []string, field string, notes *[]string) matchSet {
	var m matchSet
	for _, p := range patterns {
		g, err := glob.Compile(p)
		if err != nil {
			// The loader rejects bad patterns; one here matches nothing.
			*notes = append(*notes, fmt.Sprintf("%s pattern %q is ignored: %v", field, p, err))
			continue
		}
		inner, anywhere := strings.CutPrefix(p, "**/")
		inner, below := strings.CutSuffix(inner, "/**")
		oneSeg := inner != "**" && !strings.Contains(inner, "/")
		switch {
		case !anywhere && !below && isLiteral(p):
			m.exact = append(m.exact, p)
		case !anywhere && below && isLiteral(inner):
			m.prefixes = append(m.prefixes, inner+"/")
		case anywhere && below && isLiteral(inner):
			m.contains = append(m.contains, literalSegs{inner, inner + "/", "/" + inner, "/" + inner + "/"})
		case anywhere && !below && oneSeg && strings.HasPrefix(inner, "*") && len(inner) > 1 && isLiteral(inner[1:]):
			m.suffixes = append(m.suffixes, inner[1:])
		case anywhere && !below && oneSeg:
			m.last = append(m.last, glob.MustCompile(inner))
		case anywhere && below && oneSeg:
			m.anySeg = append(m.anySeg, glob.MustCompile(inner))
		default:
			m.full = append(m.full, g)
		}
	}
	return m
}

func ruleLabel(org *roles.Org, r *roles.Rule) string {
	title := r.Role
	if role := org.Role(r.Role); role != nil && role.Title != "" {
		title = role.Title
	}
	return fmt.Sprintf("%s (%s: %q)", r.ID, title, r.Responsibility)
}

func roleWhy(role *roles.Role, id, team string) string {
	if role == nil {
		return id + " of " + team
	}
	title := orDefault(role.Title, role.ID)
	if role.Scope == roles.ScopeOrganization {
		return title + " (organisation-wide)"
	}
	return title + " of " + team
}

func teamName(t *roles.Team) string { return orDefault(t.Name, t.ID) }

// evaluation is the state of one Evaluate call.
type evaluation struct {
	e         *Engine
	s         *PRSnapshot
	d         *Decision
	author    string
	seed      string
	request   bool // reviewers may be requested
	approvals []model.Approval
	// committers are the account ids of commit authors other than the
	// pull request's author.
	committers []string
	asked      []string       // account ids picked so far, in order
	extra      map[string]int // new picks made so far (added to the load)
}

// Evaluate decides about one pull request. It is pure: the same engine and
// snapshot always give the same decision.
func (e *Engine) Evaluate(s PRSnapshot) Decision {
	d := Decision{
		Repository:  s.Repository,
		Number:      s.Number,
		Commit:      s.SourceCommit,
		Rules:       []RuleResult{},
		Statuses:    []Status{},
		EvaluatedAt: s.Now,
	}
	var team *roles.Team
	if e.org != nil {
		team = e.org.TeamForRepo(s.Repository)
	}
	if team == nil {
		d.Skipped = fmt.Sprintf("repository %s is owned by no team in roles.yaml", s.Repository)
		return d
	}
	d.Team = team.ID

	ev := &evaluation{
		e:         e,
		s:         &s,
		d:         &d,
		author:    s.Author.AccountID,
		seed:      strings.ToLower(s.Repository) + "#" + strconv.Itoa(s.Number),
		request:   true,
		approvals: latestApprovals(s.Approvals),
	}
	for _, a := range s.CommitAuthors {
		if a.AccountID != "" && a.AccountID != ev.author && !containsString(ev.committers, a.AccountID) {
			ev.committers = append(ev.committers, a.AccountID)
		}
	}
	switch {
	case s.State != "" && s.State != model.PROpen:
		ev.request = false
		d.Skipped = fmt.Sprintf("pull request is %s: approvals are evaluated, nobody is asked", strings.ToLower(string(s.State)))
	case s.Draft && !s.AssignDrafts:
		ev.request = false
		d.Skipped = "draft pull request: reviewers are requested when it is ready"
	}

	plans := e.plans[team.ID]
	d.Rules = make([]RuleResult, 0, len(plans))
	for _, p := range plans {
		d.Rules = append(d.Rules, p.kind.evaluate(ev, p))
	}
	d.ApprovalsMet = true
	for i := range d.Rules {
		r := &d.Rules[i]
		if approves(r.Kind) && r.Triggered && !r.Met {
			d.ApprovalsMet = false
		}
	}
	for _, st := range prStatuses {
		d.Statuses = append(d.Statuses, st.summarise(d.Rules, "team "+teamName(team)))
	}
	return d
}

// latestApprovals keeps each account's last state, in order of first
// appearance, so that an approval withdrawn for a change request (or the
// reverse) counts once.
func latestApprovals(in []model.Approval) []model.Approval {
	out := make([]model.Approval, 0, len(in))
	for _, a := range in {
		if a.State != model.ReviewApproved && a.State != model.ReviewChangesRequested {
			continue
		}
		found := false
		for i := range out {
			if out[i].AccountID == a.AccountID {
				out[i] = a
				found = true
				break
			}
		}
		if !found {
			out = append(out, a)
		}
	}
	return out
}

func (ev *evaluation) name(accountID, fallback string) string {
	if p := ev.e.org.PersonByAccount(accountID); p != nil {
		return p.DisplayName()
	}
	if fallback != "" {
		return fallback
	}
	if accountID == "" {
		return "someone without an account id"
	}
	return accountID
}

func (ev *evaluation) load(accountID string) int {
	return ev.s.Load[accountID] + ev.extra[accountID]
}

// addRequest merges a pick into Decision.Request (one entry per account,
// first-pick order, later rules named in the reason) and counts a new pick
// in the load.
func (ev *evaluation) addRequest(pk Pick, p *plan) {
	for i := range ev.d.Request {
		q := &ev.d.Request[i]
		if q.AccountID != pk.AccountID {
			continue
		}
		q.Kept = q.Kept || pk.Kept
		q.Reason += "; also for " + p.rule.ID
		if !strings.Contains(q.Reason, p.why) {
			q.Reason += " as " + p.why
		}
		return
	}
	ev.d.Request = append(ev.d.Request, pk)
	ev.asked = append(ev.asked, pk.AccountID)
	if !pk.Kept {
		if ev.extra == nil {
			ev.extra = map[string]int{}
		}
		ev.extra[pk.AccountID]++
	}
}

// listPaths names up to maxReasonPaths paths and counts the rest; total is
// the number of paths, which may exceed len(paths).
func listPaths(paths []string, total int) string {
	shown := paths
	if len(shown) > maxReasonPaths {
		shown = shown[:maxReasonPaths]
	}
	s := strings.Join(shown, ", ")
	if more := total - len(shown); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// truncate cuts s to at most n characters, ending with "…" when cut.
func truncate(s string, n int) string {
	if len(s) <= n || utf8.RuneCountInString(s) <= n {
		return s
	}
	cut, runes := 0, 0
	for i := range s { // i walks rune starts
		if runes == n-1 {
			cut = i
			break
		}
		runes++
	}
	return s[:cut] + "…"
}
