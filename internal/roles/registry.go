package roles

import (
	"fmt"
	"regexp"
	"sync"

	"gopkg.in/yaml.v3"
)

// KindSpec declares a rule kind: its settings, evaluation and findings
// live in package rules (one file per kind there), every kind included:
// this package only decodes the settings through the spec, so that every
// problem still names FILE:LINE:COL. Package rules registers its kinds
// when it is linked in; a binary that loads roles.yaml without it refuses
// every kind as unknown rather than ignoring them (see Kinds).
type KindSpec struct {
	Kind Kind
	// Settings are the keys the kind accepts, in the order an unknown
	// key's error lists them; "teams" is added for kinds that are not
	// organisation-only.
	Settings []string
	// Decode reads the settings (s) and returns the kind's compiled
	// settings, kept in Rule.Settings.
	Decode func(s *Settings) any
	// Apply reads the settings (s) into the rule's typed fields
	// (Reviewers, Paths, Environments, IssueTypes …), defaults included:
	// the older kinds keep them there because every reader uses them.
	Apply func(s *Settings, r *Rule)
	// OrgOnly: the rule applies across the organisation (no teams key).
	OrgOnly bool
	// TeamHolders: people of the role act on every pull request or
	// deployment of a team (a review, an approval), so each team the rule
	// applies to needs a holder (an error without), enough of them to
	// approve a change by one of them (Rule.Approvals), and not all away
	// (warnings).
	TeamHolders bool
	// NeedsHolder: a warning when nobody in the organisation holds the
	// rule's role (Effect names what is lost, "has nobody to …").
	NeedsHolder bool
	Effect      string
}

var (
	specMu sync.RWMutex
	specs  = map[Kind]KindSpec{}
)

// RegisterKind adds a rule kind; registering one twice panics (two files
// claiming a kind is a programming error).
func RegisterKind(s KindSpec) {
	specMu.Lock()
	defer specMu.Unlock()
	if _, dup := specs[s.Kind]; dup {
		panic("roles: rule kind " + string(s.Kind) + " registered twice")
	}
	specs[s.Kind] = s
	Kinds = append(Kinds, s.Kind)
}

// Spec returns a registered kind's spec.
func Spec(k Kind) (KindSpec, bool) {
	specMu.RLock()
	defer specMu.RUnlock()
	s, ok := specs[k]
	return s, ok
}

// Settings is the decoder a KindSpec reads its settings with. Every
// method reports a bad value at its own FILE:LINE:COL and returns the
// default, so Decode stays a list of reads.
type Settings struct {
	l     *loader
	where string // "role cto: break-glass"
	key   *yaml.Node
	f     map[string]pair
	Role  string // the rule's role id
}

// Has reports whether the setting is written.
func (s *Settings) Has(name string) bool { _, ok := s.f[name]; return ok }

// Int reads a whole number in [min, max].
func (s *Settings) Int(name string, def, min, max int) int {
	p, ok := s.f[name]
	if !ok {
		return def
	}
	v, ok := s.l.integer(p.val, s.where+": "+name, min)
	if !ok {
		return def
	}
	if v > max {
		s.l.errf(p.val, "%s: %s must be at most %d, got %d", s.where, name, max, v)
		return def
	}
	return v
}

// Bool reads true or false.
func (s *Settings) Bool(name string, def bool) bool {
	p, ok := s.f[name]
	if !ok {
		return def
	}
	if v, ok := s.l.boolean(p.val, s.where+": "+name); ok {
		return v
	}
	return def
}

// List reads a non-empty list of strings; required reports its absence.
func (s *Settings) List(name string, def []string, required bool, what, hint string) []string {
	p, ok := s.f[name]
	if !ok {
		if required {
			s.l.errf(s.key, "%s: missing %s (a list of %ss, %s)", s.where, name, what, hint)
		}
		return def
	}
	if v := values(s.l.nonEmpty(p, s.where+": "+name, what, hint)); v != nil {
		return v
	}
	return def
}

// Globs reads a non-empty list of globs.
func (s *Settings) Globs(name string, def []string) []string {
	p, ok := s.f[name]
	if !ok {
		return def
	}
	if v := s.l.globs(p.val, s.where+": "+name); v != nil {
		return v
	}
	return def
}

// Required reports a setting the kind cannot do without, at the kind,
// when it is not written: "missing <name> (<what>)".
func (s *Settings) Required(name, what string) bool {
	if s.Has(name) {
		return true
	}
	s.l.errf(s.key, "%s: missing %s (%s)", s.where, name, what)
	return false
}

// ProjectKey reads a Jira project key such as PAY.
func (s *Settings) ProjectKey(name, def string) string {
	v, at, ok := s.text(name)
	if !ok {
		return def
	}
	if !isProjectKey(v) {
		s.l.errf(at, "%s: %s %q must be a Jira project key: %s", s.where, name, v, keyRule)
		return def
	}
	return v
}

// Regexp reads a regular expression (Go syntax) that must compile.
func (s *Settings) Regexp(name, def string) string {
	v, at, ok := s.text(name)
	if !ok {
		return def
	}
	if _, err := regexp.Compile(v); err != nil {
		s.l.errf(at, "%s: %s is not a valid regular expression (Go syntax): %v", s.where, name, err)
		return def
	}
	return v
}

// RoleRef reads a role id that must be declared somewhere in the file
// (checked once every role is read, so a role may be declared later).
func (s *Settings) RoleRef(name, def string) string {
	if !s.Has(name) {
		if def != "" {
			s.l.refs = append(s.l.refs, roleRef{node: s.key, role: def, where: s.where + ": " + name + " (default)"})
		}
		return def
	}
	v, at, ok := s.text(name)
	if !ok {
		return def
	}
	s.l.refs = append(s.l.refs, roleRef{node: at, role: v, where: s.where + ": " + name})
	return v
}

// text reads a string setting and the node it is written at; ok is false
// when it is not written, or not a string (reported).
func (s *Settings) text(name string) (v string, at *yaml.Node, ok bool) {
	p, ok := s.f[name]
	if !ok {
		return "", nil, false
	}
	v, ok = s.l.text(p.val, s.where+": "+name)
	return v, p.val, ok
}

// Errorf reports a problem at the setting (or at the kind when it is not
// written).
func (s *Settings) Errorf(name, format string, args ...any) {
	n := s.key
	if p, ok := s.f[name]; ok {
		n = p.val
	}
	s.l.errf(n, "%s: %s", s.where, fmt.Sprintf(format, args...))
}

// Warnf warns at the setting's key (or at the kind when it is not
// written): the file loads, the warning names what the rule will do.
func (s *Settings) Warnf(name, format string, args ...any) {
	n := s.key
	if p, ok := s.f[name]; ok {
		n = p.key
	}
	s.l.warnf(n, "%s: %s", s.where, fmt.Sprintf(format, args...))
}

// roleRef is a role named by a setting, checked after all roles are read.
type roleRef struct {
	node  *yaml.Node
	role  string
	where string
}

func (l *loader) checkRefs() {
	for _, r := range l.refs {
		if l.roles[r.role] == nil {
			l.errf(r.node, "%s: undefined role %q; defined roles: %s", r.where, r.role, l.roleNames())
		}
	}
}

// decodeSpec decodes a registered kind's settings.
func (l *loader) decodeSpec(spec KindSpec, rule *Rule, p pair, r *Role) {
	where := fmt.Sprintf("role %s: %s", r.ID, spec.Kind)
	keys := append([]string(nil), spec.Settings...)
	if !spec.OrgOnly {
		keys = append(keys, "teams")
	}
	f := l.fields(p.val, where, where+" settings must be a mapping", keys...)
	s := &Settings{l: l, where: where, key: p.key, f: f, Role: r.ID}
	if spec.Apply != nil {
		spec.Apply(s, rule)
	}
	if spec.Decode != nil {
		rule.Settings = spec.Decode(s)
	}
	if q, ok := f["teams"]; ok {
		rule.Teams = l.ruleTeams(q, where)
	}
}
