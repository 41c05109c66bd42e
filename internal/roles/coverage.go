package roles

import (
	"time"

	"github.com/reloadly/rolekeeper/internal/glob"
)

// RoleCoverage counts a role's responsibilities that a rule enforces and
// those left manual.
type RoleCoverage struct {
	Role             *Role
	Enforced, Manual int
}

// Coverage returns, per role in file order, how many responsibilities are
// enforced and how many are manual.
func (o *Org) Coverage() []RoleCoverage {
	out := make([]RoleCoverage, 0, len(o.Roles))
	for _, r := range o.Roles {
		c := RoleCoverage{Role: r}
		for _, resp := range r.Responsibilities {
			if resp.Manual() {
				c.Manual++
			} else {
				c.Enforced++
			}
		}
		out = append(out, c)
	}
	return out
}

// Available returns the people who can act on the rule for the team at
// now: the holders of its role (Holders) who are not away. It returns nil
// when the rule does not apply to the team. The count is the rule's bus
// factor for the team.
func (o *Org) Available(rule *Rule, team string, now time.Time) []*Person {
	if !rule.AppliesToTeam(team) {
		return nil
	}
	var out []*Person
	for _, p := range o.Holders(rule.Role, team) {
		if away, _ := p.AwayAt(now); !away {
			out = append(out, p)
		}
	}
	return out
}

// MatchAny reports whether the path matches one of the globs (a rule's
// Paths, SourcePaths or TestPaths; see package glob). Globs of the Org's
// rules are compiled once by Index; others are compiled on each call, and
// a bad one matches nothing.
func (o *Org) MatchAny(globs []string, path string) bool {
	for _, pattern := range globs {
		g := o.globs[pattern]
		if g == nil {
			var err error
			if g, err = glob.Compile(pattern); err != nil {
				continue
			}
		}
		if g.Match(path) {
			return true
		}
	}
	return false
}

// compileGlobs fills the glob cache from the rules; Index calls it.
func (o *Org) compileGlobs() {
	o.globs = make(map[string]*glob.Glob)
	for _, r := range o.Rules {
		for _, list := range [][]string{r.Paths, r.SourcePaths, r.TestPaths} {
			for _, pattern := range list {
				if _, done := o.globs[pattern]; done {
					continue
				}
				if g, err := glob.Compile(pattern); err == nil {
					o.globs[pattern] = g
				}
			}
		}
	}
}
