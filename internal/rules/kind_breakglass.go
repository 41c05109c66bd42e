package rules

import (
	"strings"

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
