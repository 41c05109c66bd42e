package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// KindBreakGlass names the role whose holders may open a deployment gate
// nobody can approve (every approver away, an incident fix), with a
// reason that is recorded, reported and followed up. The gate reads it
// here instead of trusting a role id written in code: rename the role in
// roles.yaml and break-glass follows it.
const KindBreakGlass roles.Kind = "break-glass"

// BreakGlassSettings are a break-glass rule's settings.
type BreakGlassSettings struct {
	Environments []string // environments whose gates the role may open
	// FollowUp is the role the Jira follow-up of a break-glass is
	// assigned to ("": a holder of the gate's deploy-approval role).
	FollowUp string
}

var breakGlassKind = KindInfo{
	Kind:   KindBreakGlass,
	Doc:    "holders of the role may open a gate of environments with a reason (recorded, reported, followed up by follow_up)",
	Action: "Review the deployment after the fact and record the outcome in the Jira follow-up.",
	Spec: &roles.KindSpec{
		Kind:     KindBreakGlass,
		Settings: []string{"environments", "follow_up"},
		Decode: func(s *roles.Settings) any {
			return BreakGlassSettings{
				Environments: s.List("environments", nil, true, "environment", "like [production]"),
				FollowUp:     s.RoleRef("follow_up", ""),
			}
		},
		NeedsHolder: true,
		Effect:      "leaves gates nobody can approve shut",
	},
}

// BreakGlass is who may break the glass of a gate, from roles.yaml.
type BreakGlass struct {
	RuleID   string   `json:"rule_id,omitempty"`
	Role     string   `json:"role,omitempty"`      // "" when no rule covers the environment
	FollowUp string   `json:"follow_up,omitempty"` // role of the follow-up's assignee
	Holders  []string `json:"holders,omitempty"`   // account ids
}

// BreakGlassOf returns the break-glass rule covering a team's environment:
// the first in file order. Role is empty when none does, and then nobody
// may break that gate's glass.
func BreakGlassOf(org *roles.Org, team, environment string) BreakGlass {
	if org == nil {
		return BreakGlass{}
	}
	for _, r := range org.RulesOfKind(KindBreakGlass) {
		set, _ := r.Settings.(BreakGlassSettings)
		if !r.AppliesToTeam(team) || !hasFold(set.Environments, environment) {
			continue
		}
		bg := BreakGlass{RuleID: r.ID, Role: r.Role, FollowUp: set.FollowUp}
		for _, h := range org.Holders(r.Role, team) {
			if h.AccountID != "" {
				bg.Holders = append(bg.Holders, h.AccountID)
			}
		}
		return bg
	}
	return BreakGlass{}
}

func hasFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), strings.TrimSpace(s)) {
			return true
		}
	}
	return false
}

// GlassBreak is a gate opened by break-glass, as the gate recorded it.
type GlassBreak struct {
	Gate, RuleID, Team string // RuleID: the deploy-approval rule of the gate
	Repository, Commit string
	Environment, URL   string
	By                 string // account id, or the admin token's name
	ByName             string // "" when an admin token broke it (no person)
	Reason             string
	At, Now            time.Time
}

// GlassSentence says who broke the glass and why: "break-glass by Raj:
// hotfix", or "break-glass hotfix" for an admin token.
func GlassSentence(byName, reason string) string {
	if byName == "" {
		return "break-glass " + reason
	}
	return "break-glass by " + byName + ": " + reason
}

// BreakGlassFinding is the finding of a break-glass, once per gate: never
// held (a gate opened without approval is always followed up).
func BreakGlassFinding(b GlassBreak) model.Finding {
	return model.Finding{Key: FindingKey(string(KindBreakGlass), b.Gate), Kind: string(KindBreakGlass), RuleID: b.RuleID, Team: b.Team,
		Subject: model.SubjectGate, Ref: b.Gate, URL: b.URL,
		Reason: fmt.Sprintf("%s deployment of %s@%s: %s", b.Environment, b.Repository, shortCommit(b.Commit), GlassSentence(b.ByName, b.Reason)),
		Held:   false, OccurredAt: b.At, RecordedAt: b.Now, Actor: b.By,
		Details: fmt.Sprintf("gate %s, rule %s, commit %s", b.Gate, b.RuleID, b.Commit)}
}
