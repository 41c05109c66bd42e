package roles

import (
	"fmt"
	"strings"
	"time"
)

// checkCoverage asks whether the people can satisfy the rules, as each
// kind's spec says: a review or approval rule (TeamHolders) needs someone
// of its role for each team it applies to (an error otherwise), enough of
// them to approve a change by one of them, and not all of them away today
// (warnings); a rule that NeedsHolder only needs someone in the
// organisation (a warning).
func (l *loader) checkCoverage(o *Org) {
	for _, rule := range o.Rules {
		role := o.Role(rule.Role)
		spec, ok := Spec(rule.Kind)
		if role == nil || !ok {
			continue
		}
		switch {
		case spec.TeamHolders:
			if role.Scope == ScopeOrganization {
				l.checkHolders(rule, "", o.Holders(rule.Role, ""))
				continue
			}
			for _, t := range o.Teams {
				if rule.AppliesToTeam(t.ID) {
					l.checkHolders(rule, t.ID, o.Holders(rule.Role, t.ID))
				}
			}
		case spec.NeedsHolder && !anyoneHolds(o, rule.Role):
			l.warnAt(rule.Line, rule.Col, "nobody in the organisation holds %s, so %s %s; add a person with role %s",
				rule.Role, rule.ID, spec.Effect, rule.Role)
		}
	}
}

func anyoneHolds(o *Org, role string) bool {
	for _, p := range o.People {
		if p.HasRole(role) {
			return true
		}
	}
	return false
}

// checkHolders judges the people able to satisfy a review or approval rule
// for one team ("" for an organisation-wide role).
func (l *loader) checkHolders(rule *Rule, team string, holders []*Person) {
	in, where, addHint := "in the organisation", "", fmt.Sprintf("add a person with role %s", rule.Role)
	if team != "" {
		in, where = "in team "+team, " of team "+team
		addHint += " and team " + team
	}
	if len(holders) == 0 {
		if team == "" {
			l.errAt(rule.Line, rule.Col, "nobody in the organisation holds %s to satisfy %s; %s", rule.Role, rule.ID, addHint)
		} else {
			l.errAt(rule.Line, rule.Col, "team %s has no %s to satisfy %s; %s", team, rule.Role, rule.ID, addHint)
		}
		return
	}
	if rule.Approvals > 0 { // set by the review kinds only
		switch n := len(holders); {
		case n < rule.Approvals:
			l.warnAt(rule.Line, rule.Col, "%s needs %s but only %s %s %s, so its pull requests cannot pass; %s",
				rule.ID, plural(rule.Approvals, "approval"), people(n), rule.Role, in, addHint)
		case n == rule.Approvals:
			l.warnAt(rule.Line, rule.Col, "%s needs %s and only %s %s %s, so a pull request by one of them cannot pass (nobody approves their own); %s",
				rule.ID, plural(rule.Approvals, "approval"), people(n), rule.Role, in, addHint)
		}
	}
	var away []string
	for _, p := range holders {
		gone, until := p.AwayAt(l.now)
		if !gone {
			return
		}
		away = append(away, fmt.Sprintf("%s until %s", p.ID, until.Format(time.DateOnly)))
	}
	l.warnAt(rule.Line, rule.Col, "every %s%s is away today (%s); %s cannot be satisfied until one is back",
		rule.Role, where, strings.Join(away, ", "), rule.ID)
}

// people renders "1 person holds" or "2 people hold".
func people(n int) string {
	if n == 1 {
		return "1 person holds"
	}
	return fmt.Sprintf("%d people hold", n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
