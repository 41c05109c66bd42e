package report

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Kinds of AttentionItem.
const (
	AttentionViolation  = "violation"
	AttentionBreakGlass = "break_glass"
	AttentionGate       = "gate_waiting"
)

// AttentionItem is one thing a person should act on: a violation of the
// week, a break-glass use of the week, or a deployment gate still waiting.
type AttentionItem struct {
	Kind           string    `json:"kind"` // violation, break_glass, gate_waiting
	Team           string    `json:"team"`
	TeamName       string    `json:"team_name"`
	RuleID         string    `json:"rule_id,omitempty"`
	Role           string    `json:"role,omitempty"`
	RoleTitle      string    `json:"role_title,omitempty"`
	Responsibility string    `json:"responsibility,omitempty"`
	Ref            string    `json:"ref"`
	URL            string    `json:"url,omitempty"`
	What           string    `json:"what"`           // what happened (the recorded reason)
	Action         string    `json:"action"`         // what should be done, in words
	WhoShouldAct   []string  `json:"who_should_act"` // display names; empty: nobody holds the role
	Since          time.Time `json:"since"`
	OpenHours      float64   `json:"open_hours"` // from since to generated_at
}

// Matrix says which rules had something to check in the week (in
// roles.yaml order); the cells are teams[].rules[].
type Matrix struct {
	Rules []string `json:"rules"`      // at least one check in some team
	Idle  []string `json:"idle_rules"` // nothing to check anywhere this week
}

func (b *builder) attention(gates []store.Gate, end time.Time, publicURL string) {
	items := []AttentionItem{}
	for _, v := range b.r.Violations {
		it := b.item(AttentionViolation, v.Team, v.RuleID, v.OccurredAt)
		it.Ref, it.URL, it.What = v.Ref, v.URL, v.Reason
		if a := rules.Action(v.Kind); a != "" { // the kind's row in the rules registry
			it.Action = a
		} else {
			it.Action = "Look at the case and record what was done."
		}
		items = append(items, it)
	}
	ruleOf := map[string]string{}
	for _, g := range gates {
		ruleOf[g.ID] = g.RuleID
	}
	teamOf := map[string]string{}
	for _, g := range gates {
		teamOf[g.ID] = g.Team
	}
	for _, u := range b.r.BreakGlass {
		it := b.item(AttentionBreakGlass, teamOf[u.Gate], ruleOf[u.Gate], u.At)
		who := u.ByName
		if who == "" {
			who = u.By
		}
		it.Ref = u.Repository + "@" + short(u.Commit) + " → " + u.Environment
		it.URL = u.URL
		it.What = fmt.Sprintf("%s opened the %s gate without approval (break-glass): %s", who, u.Environment, u.Reason)
		it.Action = "Review the emergency deployment after the fact"
		if u.FollowUp != "" {
			it.Action += " and close its follow-up " + u.FollowUp
		}
		it.Action += "."
		items = append(items, it)
	}
	for _, g := range gates {
		if g.State != store.GatePending || !g.CreatedAt.Before(end) {
			continue
		}
		it := b.item(AttentionGate, g.Team, g.RuleID, g.CreatedAt)
		it.Ref = g.Repository + "@" + short(g.Commit) + " → " + g.Environment
		it.URL = gatePage(publicURL, g)
		it.What = fmt.Sprintf("The deployment of %s to %s is waiting for approval.", g.Repository+"@"+short(g.Commit), g.Environment)
		it.Action = "Approve or reject it"
		if !g.ExpiresAt.IsZero() {
			it.Action += " before it expires on " + g.ExpiresAt.UTC().Format("Mon 2 Jan 15:04 MST")
		}
		it.Action += "."
		// The gate names exactly who may approve it.
		if len(g.Approvers) > 0 {
			it.WhoShouldAct = []string{}
			for _, acc := range g.Approvers {
				name := acc
				if p := b.org.PersonByAccount(acc); p != nil {
					name = p.DisplayName()
				}
				it.WhoShouldAct = append(it.WhoShouldAct, name)
			}
		}
		items = append(items, it)
	}
	sort.SliceStable(items, func(i, j int) bool {
		if !items[i].Since.Equal(items[j].Since) {
			return items[i].Since.After(items[j].Since)
		}
		return items[i].Ref < items[j].Ref
	})
	b.r.Attention = items
}

// item starts an attention item with the rule in words and who holds its
// role in the team.
func (b *builder) item(kind, team, ruleID string, since time.Time) AttentionItem {
	if team == "" {
		team = OrgTeam
	}
	it := AttentionItem{Kind: kind, Team: team, TeamName: team, RuleID: ruleID, Since: since.UTC(), WhoShouldAct: []string{}}
	if t := b.org.Team(team); t != nil && t.Name != "" {
		it.TeamName = t.Name
	}
	if h := b.now.Sub(since).Hours(); h > 0 {
		it.OpenHours = round1(h)
	}
	key := ruleID + "\x00" + team
	if c, ok := b.owners[key]; ok {
		it.Role, it.Responsibility, it.RoleTitle = c.Role, c.Responsibility, c.RoleTitle
		it.WhoShouldAct = append(it.WhoShouldAct, c.WhoShouldAct...)
		return it
	}
	defer func() { b.owners[key] = it }()
	var rule *roles.Rule
	for _, r := range b.org.Rules {
		if r.ID == ruleID {
			rule = r
		}
	}
	if rule == nil {
		// No rule to name an owner (an ungated break-glass, a finding of
		// a rule since removed): the people the report is for.
		_, people := Recipients(b.org, b.now)
		for _, p := range people {
			it.WhoShouldAct = append(it.WhoShouldAct, p.DisplayName())
		}
		return it
	}
	it.Role, it.Responsibility, it.RoleTitle = rule.Role, rule.Responsibility, rule.Role
	if role := b.org.Role(rule.Role); role != nil && role.Title != "" {
		it.RoleTitle = role.Title
	}
	for _, p := range b.org.Holders(rule.Role, team) {
		it.WhoShouldAct = append(it.WhoShouldAct, p.DisplayName())
	}
	return it
}

// matrix splits the team-scoped rules into those with something to check
// this week and the idle ones.
func (b *builder) matrix() {
	b.r.Matrix = Matrix{Rules: []string{}, Idle: []string{}}
	checked := map[string]bool{}
	seen := map[string]bool{}
	var order []string
	for _, t := range b.r.Teams {
		for _, rs := range t.Rules {
			if !seen[rs.RuleID] {
				seen[rs.RuleID] = true
				order = append(order, rs.RuleID)
			}
			checked[rs.RuleID] = checked[rs.RuleID] || rs.Checked > 0
		}
	}
	for _, id := range order {
		if checked[id] {
			b.r.Matrix.Rules = append(b.r.Matrix.Rules, id)
		} else {
			b.r.Matrix.Idle = append(b.r.Matrix.Idle, id)
		}
	}
}

// verdict sums the week up in one line.
func (b *builder) verdict() {
	r := b.r
	r.Empty = r.Summary.Checked == 0 && r.Summary.BreakGlass == 0 && r.Summary.PRsOpened == 0 &&
		r.Summary.PRsMerged == 0 && r.Summary.Gates == 0 && len(r.Attention) == 0 && len(r.Reviewers) == 0
	if r.Empty {
		r.Verdict = "Nothing was recorded this week: no checks, no pull requests, no deployment gates."
		return
	}
	var parts []string
	switch s := r.Summary; {
	case s.Checked == 0:
		parts = append(parts, "No rule had anything to check")
	case s.Violated == 0:
		parts = append(parts, fmt.Sprintf("All %d %s held", s.Checked, plural(s.Checked, "check", "checks")))
	default:
		parts = append(parts, fmt.Sprintf("%d of %d %s did not hold", s.Violated, s.Checked, plural(s.Checked, "check", "checks")))
	}
	if n := r.Summary.BreakGlass; n > 0 {
		parts = append(parts, fmt.Sprintf("%d break-glass %s", n, plural(n, "use", "uses")))
	}
	waiting := 0
	for _, it := range r.Attention {
		if it.Kind == AttentionGate {
			waiting++
		}
	}
	if waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d %s still waiting", waiting, plural(waiting, "gate", "gates")))
	}
	line := strings.Join(parts, ", ")
	if n := len(r.Attention); n == 0 {
		line += "; nothing needs attention."
	} else {
		line += fmt.Sprintf(": %d %s attention.", n, plural(n, "thing needs", "things need"))
	}
	r.Verdict = line
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// gatePage is a gate's public page (store.GateURL), opened without a token
// through the public id of its latest decision, which the gate package
// keeps in its details; "" while it has none (the gate API needs a token,
// so it is no link for a reader).
func gatePage(publicURL string, g store.Gate) string {
	var d struct {
		DecisionPublicID string `json:"decision_public_id"`
	}
	if publicURL == "" || json.Unmarshal(g.Data, &d) != nil || !store.ValidPublicID(d.DecisionPublicID) {
		return ""
	}
	return store.GateURL(publicURL, d.DecisionPublicID)
}
