package roles

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reloadly/rolekeeper/internal/glob"
)

func kindNames() string {
	specMu.RLock()
	defer specMu.RUnlock()
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func knownKind(s string) bool {
	specMu.RLock()
	defer specMu.RUnlock()
	for _, k := range Kinds {
		if string(k) == s {
			return true
		}
	}
	return false
}

// isID reports whether s is a role or team id: lower-case letters, digits
// and '-', starting with a letter. Rule ids ("role/kind#2") and messages
// rely on ids holding no '/', '#' or spaces.
func isID(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isHandle reports whether s is a person id: lower-case letters, digits,
// '.', '_' and '-', starting with a letter or digit.
func isHandle(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// isProjectKey reports whether s is a Jira project key such as PAY.
func isProjectKey(s string) bool {
	if len(s) < 2 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isRepo reports whether s is "workspace/slug".
func isRepo(s string) bool {
	ws, slug, ok := strings.Cut(s, "/")
	return ok && isRepoPart(ws) && isRepoPart(slug)
}

func isRepoPart(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

const (
	idRule     = "lower-case letters, digits and '-', starting with a letter"
	handleRule = "lower-case letters, digits, '.', '_' and '-'"
	keyRule    = "upper-case letters, digits and '_', starting with a letter, like PAY"
)

func (l *loader) decodeTop(root *yaml.Node, org *Org) {
	if root = l.visit(root); root == nil {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.errf(root, "the top level must be a mapping with version, organization, roles, teams and people, got %s", describe(root))
		return
	}
	top := l.fields(root, "the top level", "the top level must be a mapping with version, organization, roles, teams and people",
		"version", "organization", "roles", "teams", "people")
	if p, ok := top["version"]; !ok {
		l.errf(root, "missing \"version: 1\" at the top level")
	} else if v, ok := l.integer(p.val, "version", 1); ok {
		if v != 1 {
			l.errf(p.val, "version must be 1 (the only version this rolekeeper reads), got %d", v)
		}
		org.Version = v
	}
	if p, ok := top["organization"]; ok {
		org.Organization, _ = l.text(p.val, "organization")
	}
	// Teams and roles first: people and rules refer to them, wherever
	// they sit in the file.
	l.teams = make(map[string]bool)
	if p, ok := top["teams"]; ok {
		l.decodeTeams(p.val, org)
	}
	l.roles = make(map[string]*Role)
	if p, ok := top["roles"]; ok {
		l.decodeRoles(p.val, org)
	}
	l.checkRefs()
	if p, ok := top["people"]; ok {
		l.decodePeople(p.val, org)
	}
}

func (l *loader) decodeTeams(n *yaml.Node, org *Org) {
	type owner struct {
		team string
		line int
	}
	repos := make(map[string]owner)    // lower-case repository → team
	projects := make(map[string]owner) // project key → team
	for _, p := range l.entries(n, "team id", "teams must be a mapping of team id to team") {
		id := p.key.Value
		if !isID(id) {
			l.errf(p.key, "team id %q: use %s", id, idRule)
		}
		l.teams[id] = true
		t := &Team{ID: id}
		org.Teams = append(org.Teams, t)
		where := "team " + id
		f := l.fields(p.val, where, where+" must be a mapping with name, repositories and jira_projects",
			"name", "repositories", "jira_projects")
		if q, ok := f["name"]; ok {
			t.Name, _ = l.text(q.val, where+": name")
		}
		if q, ok := f["repositories"]; ok {
			for _, it := range l.strList(q.val, where+": repositories", "repository") {
				if !isRepo(it.val) {
					l.errf(it.node, "%s: repository %q must be written \"workspace/slug\", like reloadly/payments-api", where, it.val)
					continue
				}
				key := strings.ToLower(it.val)
				if o, dup := repos[key]; dup {
					l.errf(it.node, "%s: repository %q is already owned by team %s (line %d); a repository belongs to one team", where, it.val, o.team, o.line)
					continue
				}
				repos[key] = owner{id, it.node.Line}
				t.Repositories = append(t.Repositories, it.val)
			}
		}
		if q, ok := f["jira_projects"]; ok {
			for _, it := range l.strList(q.val, where+": jira_projects", "project key") {
				if !isProjectKey(it.val) {
					l.errf(it.node, "%s: Jira project key %q must use %s", where, it.val, keyRule)
					continue
				}
				if o, dup := projects[it.val]; dup {
					l.errf(it.node, "%s: Jira project %s is already owned by team %s (line %d); a project belongs to one team", where, it.val, o.team, o.line)
					continue
				}
				projects[it.val] = owner{id, it.node.Line}
				t.JiraProjects = append(t.JiraProjects, it.val)
			}
		}
	}
}

func (l *loader) decodeRoles(n *yaml.Node, org *Org) {
	for _, p := range l.entries(n, "role id", "roles must be a mapping of role id to role") {
		id := p.key.Value
		if !isID(id) {
			l.errf(p.key, "role id %q: use %s", id, idRule)
		}
		r := &Role{ID: id, Scope: ScopeTeam}
		l.roles[id] = r
		org.Roles = append(org.Roles, r)
		where := "role " + id
		f := l.fields(p.val, where, where+" must be a mapping with title, scope and responsibilities",
			"title", "scope", "responsibilities")
		if q, ok := f["title"]; ok {
			r.Title, _ = l.text(q.val, where+": title")
		} else {
			l.errf(p.key, "%s: missing title (a string, like \"Technical lead\")", where)
		}
		if q, ok := f["scope"]; ok {
			if s, ok := l.str(q.val, where+": scope"); ok {
				switch Scope(s) {
				case ScopeTeam, ScopeOrganization:
					r.Scope = Scope(s)
				default:
					l.errf(q.val, "%s: scope must be team or organization, got %q", where, s)
				}
			}
		}
		if q, ok := f["responsibilities"]; ok {
			l.decodeResponsibilities(q.val, r, org)
		}
		numberRules(r)
	}
}

func (l *loader) decodeResponsibilities(n *yaml.Node, r *Role, org *Org) {
	where := "role " + r.ID
	if n = l.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "%s: responsibilities must be a list, got %s", where, describe(n))
		return
	}
	for _, c := range n.Content {
		if c = l.visit(c); c == nil {
			return
		}
		resp := &Responsibility{Role: r.ID, Index: len(r.Responsibilities)}
		if c.Kind == yaml.MappingNode {
			f := l.fields(c, "a responsibility of "+where, "", "text", "enforce")
			q, ok := f["text"]
			if !ok {
				l.errf(c, "%s: a responsibility written as a mapping needs text (the handbook's words)", where)
				continue
			}
			if resp.Text, ok = l.text(q.val, where+": text"); !ok {
				continue
			}
			if q, ok := f["enforce"]; ok {
				l.decodeEnforce(q.val, r, resp, org)
			}
		} else {
			var ok bool
			if resp.Text, ok = l.text(c, where+": a responsibility (a string, or a mapping with text and enforce)"); !ok {
				continue
			}
		}
		r.Responsibilities = append(r.Responsibilities, resp)
	}
}

// decodeEnforce decodes "enforce": rule kind → settings.
func (l *loader) decodeEnforce(n *yaml.Node, r *Role, resp *Responsibility, org *Org) {
	where := "role " + r.ID
	for _, p := range l.entries(n, "rule kind", where+": enforce must be a mapping of rule kind to settings, like {code-review: {approvals: 1}}") {
		kind := p.key.Value
		if !knownKind(kind) {
			l.errf(p.key, "%s: unknown rule kind %q; allowed kinds: %s", where, kind, kindNames())
			continue
		}
		rule := l.decodeRule(Kind(kind), p, r, resp)
		resp.Rules = append(resp.Rules, rule)
		org.Rules = append(org.Rules, rule)
	}
}

// decodeRule decodes one rule's settings through its kind's spec
// (registered by package rules): the keys it accepts, their defaults and
// their checks all live there.
func (l *loader) decodeRule(k Kind, p pair, r *Role, resp *Responsibility) *Rule {
	rule := &Rule{Kind: k, Role: r.ID, Responsibility: resp.Text, Line: p.key.Line, Col: p.key.Column}
	if spec, ok := Spec(k); ok {
		l.decodeSpec(spec, rule, p, r)
	}
	return rule
}

// ruleTeams decodes a rule's teams: each must be defined.
func (l *loader) ruleTeams(q pair, where string) []string {
	var out []string
	for _, it := range l.nonEmpty(q, where+": teams", "team id", "or leave teams out to apply to every team") {
		if !l.teams[it.val] {
			l.errf(it.node, "%s: undefined team %q; defined teams: %s", where, it.val, l.teamNames())
			continue
		}
		out = append(out, it.val)
	}
	return out
}

// nonEmpty decodes a list that, when given, must hold something.
func (l *loader) nonEmpty(p pair, where, what, hint string) []item {
	items := l.strList(p.val, where, what)
	if n := l.visit(p.val); n != nil && (isNull(n) || n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		l.errf(p.key, "%s must list at least one %s (%s)", where, what, hint)
	}
	return items
}

// globs decodes a non-empty list of globs, reporting each bad one at its
// own place.
func (l *loader) globs(n *yaml.Node, where string) []string {
	var out []string
	for _, it := range l.nonEmpty(pair{key: n, val: n}, where, "glob", `like "helm/**" or "**/*.go"`) {
		if _, err := glob.Compile(it.val); err != nil {
			l.errf(it.node, "%s: bad glob: %v", where, err)
			continue
		}
		out = append(out, it.val)
	}
	return out
}

func (l *loader) teamNames() string { return setNames(l.teams) }

func (l *loader) roleNames() string {
	set := make(map[string]bool, len(l.roles))
	for id := range l.roles {
		set[id] = true
	}
	return setNames(set)
}

func setNames(set map[string]bool) string {
	if len(set) == 0 {
		return "(none)"
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// numberRules gives a role's rules their ids: "<role>/<kind>", or
// "<role>/<kind>#n" in file order when the role has several of a kind.
func numberRules(r *Role) {
	total := make(map[Kind]int)
	for _, resp := range r.Responsibilities {
		for _, rule := range resp.Rules {
			total[rule.Kind]++
		}
	}
	seen := make(map[Kind]int)
	for _, resp := range r.Responsibilities {
		for _, rule := range resp.Rules {
			rule.ID = r.ID + "/" + string(rule.Kind)
			if total[rule.Kind] > 1 {
				seen[rule.Kind]++
				rule.ID += fmt.Sprintf("#%d", seen[rule.Kind])
			}
		}
	}
}

func (l *loader) decodePeople(n *yaml.Node, org *Org) {
	if n = l.visit(n); n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "people must be a list of people (each a mapping with id, name, account_id, roles, teams and away), got %s", describe(n))
		return
	}
	byID := make(map[string]*yaml.Node)
	byAccount := make(map[string]struct {
		person string
		line   int
	})
	for i, c := range n.Content {
		if c = l.visit(c); c == nil {
			return
		}
		where := fmt.Sprintf("person %d", i+1)
		if c.Kind != yaml.MappingNode {
			l.errf(c, "%s must be a mapping with id, name, account_id, roles, teams and away, got %s", where, describe(c))
			continue
		}
		f := l.fields(c, where, "", "id", "name", "account_id", "roles", "teams", "away")
		p := &Person{}
		if q, ok := f["id"]; ok {
			if id, ok := l.text(q.val, where+": id"); ok {
				switch first, dup := byID[id]; {
				case !isHandle(id):
					l.errf(q.val, "%s: id %q: use %s", where, id, handleRule)
				case dup:
					l.errf(q.val, "duplicate person id %q (first at line %d)", id, first.Line)
				default:
					byID[id] = q.val
				}
				p.ID = id
				where = "person " + id
			}
		} else {
			l.errf(c, "%s: missing id (a short handle, like amara)", where)
		}
		if q, ok := f["name"]; ok {
			p.Name, _ = l.text(q.val, where+": name")
		}
		if q, ok := f["account_id"]; ok {
			if acc, ok := l.text(q.val, where+": account_id"); ok {
				if strings.ContainsAny(acc, " \t") {
					l.errf(q.val, "%s: account_id %q holds spaces; copy the Atlassian account id exactly", where, acc)
				} else if first, dup := byAccount[acc]; dup {
					l.errf(q.val, "%s: account_id %q is already used by person %s (line %d); each person has their own Atlassian account id", where, acc, first.person, first.line)
				} else {
					byAccount[acc] = struct {
						person string
						line   int
					}{p.ID, q.val.Line}
				}
				p.AccountID = acc
			}
		} else {
			l.errf(c, "%s: missing account_id (the Atlassian account id, like \"712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11\")", where)
		}
		var teamRole *item // first team-scoped role, for the no-team check
		if q, ok := f["roles"]; ok {
			for _, it := range l.strList(q.val, where+": roles", "role id") {
				r := l.roles[it.val]
				if r == nil {
					l.errf(it.node, "%s: undefined role %q; defined roles: %s", where, it.val, l.roleNames())
					continue
				}
				if r.Scope == ScopeTeam && teamRole == nil {
					teamRole = &it
				}
				p.Roles = append(p.Roles, it.val)
			}
		}
		undefined := 0
		if q, ok := f["teams"]; ok {
			for _, it := range l.strList(q.val, where+": teams", "team id") {
				if !l.teams[it.val] {
					l.errf(it.node, "%s: undefined team %q; defined teams: %s", where, it.val, l.teamNames())
					undefined++
					continue
				}
				p.Teams = append(p.Teams, it.val)
			}
		}
		if teamRole != nil && len(p.Teams) == 0 && undefined == 0 {
			l.errf(teamRole.node, "%s holds %s, a team role, but belongs to no team; add teams: [...] (or give the role scope: organization)", where, teamRole.val)
		}
		if q, ok := f["away"]; ok {
			p.Away = l.decodeAway(q.val, where)
		}
		org.People = append(org.People, p)
	}
}

func (l *loader) decodeAway(n *yaml.Node, where string) []Period {
	if n = l.visit(n); n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "%s: away must be a list of periods like {from: 2026-12-21, to: 2027-01-02}, got %s", where, describe(n))
		return nil
	}
	var out []Period
	for _, c := range n.Content {
		if c = l.visit(c); c == nil {
			return out
		}
		if c.Kind != yaml.MappingNode {
			l.errf(c, "%s: each away period must be a mapping like {from: 2026-12-21, to: 2027-01-02}, got %s", where, describe(c))
			continue
		}
		f := l.fields(c, where+": away", "", "from", "to")
		var per Period
		okFrom, okTo := false, false
		if q, ok := f["from"]; ok {
			per.From, okFrom = l.date(q.val, where+": away: from")
		} else {
			l.errf(c, "%s: away period needs from (a date, YYYY-MM-DD)", where)
		}
		if q, ok := f["to"]; ok {
			per.To, okTo = l.date(q.val, where+": away: to")
		} else {
			l.errf(c, "%s: away period needs to (the last day away, YYYY-MM-DD)", where)
		}
		if okFrom && okTo {
			if per.To.Before(per.From) {
				l.errf(f["to"].val, "%s: away period ends (%s) before it starts (%s)", where, per.To.Format(time.DateOnly), per.From.Format(time.DateOnly))
				continue
			}
			out = append(out, per)
		}
	}
	return out
}

// date decodes a calendar day, YYYY-MM-DD, as midnight UTC.
func (l *loader) date(n *yaml.Node, what string) (time.Time, bool) {
	if n = l.visit(n); n == nil {
		return time.Time{}, false
	}
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!timestamp" || n.ShortTag() == "!!str") {
		if t, err := time.Parse(time.DateOnly, n.Value); err == nil {
			return t, true
		}
	}
	l.errf(n, "%s must be a date written YYYY-MM-DD, got %s", what, describe(n))
	return time.Time{}, false
}
