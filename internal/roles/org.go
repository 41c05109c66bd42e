// Package roles loads roles.yaml: the organisation's roles, their
// responsibilities (some enforcing a rule kind), teams and people. Loading
// works on YAML nodes so that every problem names FILE:LINE:COL; the result
// is an Org, indexed for the questions the engine and adapters ask.
package roles

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/glob"
)

// Kind is a rule kind: the vocabulary a responsibility may enforce.
type Kind string

const (
	KindCodeReview     Kind = "code-review"
	KindPathReview     Kind = "path-review"
	KindUnitTests      Kind = "unit-tests"
	KindDeployApproval Kind = "deploy-approval"
	KindTestPlan       Kind = "test-plan"
	KindDesignReview   Kind = "design-review"
	KindStoryPoints    Kind = "story-points"
	KindReport         Kind = "report"
)

// Kinds lists every registered rule kind, in the order package rules
// registers them (its Registry: the contract's order, then the kinds
// added since). Empty until package rules is linked in: without it no
// kind is known, and a file enforcing any is refused, never half-read.
var Kinds []Kind

// Scope says whether a role is held per team or across the organisation.
type Scope string

const (
	ScopeTeam         Scope = "team"
	ScopeOrganization Scope = "organization"
)

// Org is a loaded, validated roles.yaml.
type Org struct {
	Version      int
	Organization string
	Path         string // file it came from ("" when parsed from bytes)
	Hash         string // hex sha256 of the file's bytes

	Roles  []*Role   // in file order
	Teams  []*Team   // in file order
	People []*Person // in file order
	Rules  []*Rule   // compiled from responsibilities, in file order

	// Warnings are problems that do not stop the file from loading (for
	// example a team whose reviewers are all away today).
	Warnings []Problem

	roleByID    map[string]*Role
	teamByID    map[string]*Team
	teamByRepo  map[string]*Team // lower-case "ws/slug"
	teamByProj  map[string]*Team // upper-case project key
	personByID  map[string]*Person
	personByAcc map[string]*Person
	globs       map[string]*glob.Glob // the rules' globs, compiled (see MatchAny)
}

// Role is one role of the handbook.
type Role struct {
	ID               string
	Title            string
	Scope            Scope
	Responsibilities []*Responsibility
}

// Responsibility is one line of the handbook. A responsibility with no rules
// is manual: recorded, not enforced.
type Responsibility struct {
	Role  string // role id
	Index int    // position within the role, from 0
	Text  string
	Rules []*Rule
}

// Manual reports whether no rule enforces the responsibility.
func (r *Responsibility) Manual() bool { return len(r.Rules) == 0 }

// Rule is one enforced rule kind of a responsibility, with its settings
// (defaults filled in).
type Rule struct {
	ID             string // stable: "<role>/<kind>", or "<role>/<kind>#<n>" when a role has n>1 of a kind
	Kind           Kind
	Role           string // role id
	Responsibility string // the responsibility's text, verbatim

	// code-review, path-review
	Reviewers int      // people to ask (default 1)
	Approvals int      // approvals required from the role (default 1; 0 = advisory)
	Paths     []string // path-review: globs ("**" crosses directories)
	// InvalidateOnPush: approvals given before the pull request's last push
	// do not count (code-review, path-review: default false, as Bitbucket).
	InvalidateOnPush bool

	// unit-tests
	SourcePaths []string // globs of source files (default: common source extensions)
	TestPaths   []string // globs of test files (default: common test naming)

	// deploy-approval (InvalidateOnPush defaults to true for it)
	Environments []string
	// Branches are globs of the destination branches through which a pull
	// request's approval counts for a deployment (default: the
	// repository's main branch, as Bitbucket names it). An approval is of
	// a diff against its destination: a pull request into a branch nobody
	// reviews shows a small diff over unreviewed content.
	Branches []string

	// test-plan, design-review, story-points
	IssueTypes []string // test-plan default [Epic], design-review default [Design], story-points default [Story]

	// story-points
	UserStoryPattern string // regular expression; default rules.DefaultUserStoryPattern

	// report
	Project string // Jira project key the weekly report issue is filed in ("" = none)

	// Teams restricts the rule to some teams; empty means every team.
	Teams []string

	// Settings are the compiled settings of a kind whose spec has Decode
	// (the kinds added since the registry); nil for the older kinds, whose
	// spec's Apply fills the typed fields above.
	Settings any

	Line, Col int // where the rule was declared, for explain output
}

// AppliesToTeam reports whether the rule applies to the team.
func (r *Rule) AppliesToTeam(team string) bool {
	if len(r.Teams) == 0 {
		return true
	}
	for _, t := range r.Teams {
		if t == team {
			return true
		}
	}
	return false
}

// Team is a team with the repositories and Jira projects it owns.
type Team struct {
	ID           string
	Name         string
	Repositories []string // "ws/slug" as written
	JiraProjects []string
}

// Person is someone in the organisation.
type Person struct {
	ID        string // short handle
	Name      string
	AccountID string // Atlassian account id
	Roles     []string
	Teams     []string
	Away      []Period
}

// Period is an inclusive range of calendar days (UTC).
type Period struct {
	From time.Time // midnight UTC of the first day
	To   time.Time // midnight UTC of the last day (inclusive)
}

// Contains reports whether t falls within the period's days.
func (p Period) Contains(t time.Time) bool {
	d := t.UTC()
	return !d.Before(p.From) && d.Before(p.To.AddDate(0, 0, 1))
}

// AwayAt reports whether the person is away at t, and until which day
// (inclusive) when they are.
func (p *Person) AwayAt(t time.Time) (bool, time.Time) {
	for _, a := range p.Away {
		if a.Contains(t) {
			return true, a.To
		}
	}
	return false, time.Time{}
}

// HasRole reports whether the person holds the role.
func (p *Person) HasRole(role string) bool { return contains(p.Roles, role) }

// InTeam reports whether the person belongs to the team.
func (p *Person) InTeam(team string) bool { return contains(p.Teams, team) }

// DisplayName is the name to show, falling back to the id.
func (p *Person) DisplayName() string {
	if p.Name != "" {
		return p.Name
	}
	return p.ID
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Index builds the lookup tables. Load calls it; code that builds an Org by
// hand (tests, generators) must call it before querying.
func (o *Org) Index() {
	o.roleByID = make(map[string]*Role, len(o.Roles))
	for _, r := range o.Roles {
		o.roleByID[r.ID] = r
	}
	o.teamByID = make(map[string]*Team, len(o.Teams))
	o.teamByRepo = make(map[string]*Team)
	o.teamByProj = make(map[string]*Team)
	for _, t := range o.Teams {
		o.teamByID[t.ID] = t
		for _, repo := range t.Repositories {
			o.teamByRepo[strings.ToLower(repo)] = t
		}
		for _, p := range t.JiraProjects {
			o.teamByProj[strings.ToUpper(p)] = t
		}
	}
	o.personByID = make(map[string]*Person, len(o.People))
	o.personByAcc = make(map[string]*Person, len(o.People))
	for _, p := range o.People {
		o.personByID[p.ID] = p
		if p.AccountID != "" {
			o.personByAcc[p.AccountID] = p
		}
	}
	o.compileGlobs()
}

// Role returns the role with the id, or nil.
func (o *Org) Role(id string) *Role { return o.roleByID[id] }

// Team returns the team with the id, or nil.
func (o *Org) Team(id string) *Team { return o.teamByID[id] }

// Person returns the person with the handle, or nil.
func (o *Org) Person(id string) *Person { return o.personByID[id] }

// PersonByAccount returns the person with the Atlassian account id, or nil.
func (o *Org) PersonByAccount(accountID string) *Person { return o.personByAcc[accountID] }

// TeamForRepo returns the team owning "ws/slug" (case-insensitive), or nil.
func (o *Org) TeamForRepo(repo string) *Team { return o.teamByRepo[strings.ToLower(repo)] }

// TeamForProject returns the team owning the Jira project key, or nil.
func (o *Org) TeamForProject(key string) *Team { return o.teamByProj[strings.ToUpper(key)] }

// Holders returns the people holding the role for the team, in file order:
// for an organisation-wide role everyone holding it, otherwise those holding
// it who belong to the team. Nobody is filtered for absence here.
func (o *Org) Holders(role, team string) []*Person {
	r := o.roleByID[role]
	if r == nil {
		return nil
	}
	var out []*Person
	for _, p := range o.People {
		if !p.HasRole(role) {
			continue
		}
		if r.Scope == ScopeOrganization || p.InTeam(team) {
			out = append(out, p)
		}
	}
	return out
}

// RulesOfKind returns the rules of a kind, in file order.
func (o *Org) RulesOfKind(k Kind) []*Rule {
	var out []*Rule
	for _, r := range o.Rules {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

// Repositories returns every repository owned by a team, sorted, lower case.
func (o *Org) Repositories() []string {
	out := make([]string, 0, len(o.teamByRepo))
	for repo := range o.teamByRepo {
		out = append(out, repo)
	}
	sort.Strings(out)
	return out
}

// Projects returns every Jira project key owned by a team, sorted.
func (o *Org) Projects() []string {
	out := make([]string, 0, len(o.teamByProj))
	for p := range o.teamByProj {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Problem is one error or warning found in a file, with its place.
type Problem struct {
	File    string
	Line    int
	Col     int
	Msg     string
	Warning bool
}

// String renders "FILE:LINE:COL: message" (with "warning: " before a
// warning's message).
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(p.Line))
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(p.Col))
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every error found while loading a file. It is returned as the
// error of Load and Parse; Problems are sorted by line and column.
type Errors struct {
	Problems []Problem
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
