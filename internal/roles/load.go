package roles

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize is the largest roles file Load and Parse accept.
const MaxFileSize = 4 << 20

// maxVisits bounds the nodes visited while decoding, so that aliases
// pointing at large values cannot multiply the work without end.
const maxVisits = 1 << 20

// maxErrors bounds the errors reported for one file.
const maxErrors = 500

// Load reads and parses a roles file, judging absences against the
// current time.
func Load(path string) (*Org, error) { return LoadAt(path, time.Now()) }

// LoadAt is Load with the time that absence warnings are judged at.
func LoadAt(path string, now time.Time) (*Org, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load roles: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so that ParseAt can refuse the file.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load roles: %w", err)
	}
	return ParseAt(path, data, now)
}

// Parse parses a roles file's bytes; file names it in problems. Absence
// warnings are judged against the current time.
func Parse(file string, data []byte) (*Org, error) { return ParseAt(file, data, time.Now()) }

// ParseAt parses a roles file's bytes, judging absences at now. It returns
// every error found as *Errors, sorted by place; problems that do not stop
// the file from loading are in the Org's Warnings.
//
// Checking runs in two stages: decoding (shapes, keys, values and
// references, all reported together), then, only when that found no error,
// coverage (whether the people can satisfy the rules), whose findings would
// be noise on a half-understood file.
func ParseAt(file string, data []byte, now time.Time) (*Org, error) {
	l := &loader{file: file, now: now}
	if len(data) > MaxFileSize {
		l.errAt(1, 1, "file is larger than %d MiB; a roles file must be smaller", MaxFileSize>>20)
		return nil, l.result()
	}
	root := l.parse(data)
	if root == nil {
		return nil, l.result()
	}
	sum := sha256.Sum256(data)
	org := &Org{Path: file, Hash: hex.EncodeToString(sum[:])}
	l.decodeTop(root, org)
	if len(l.errs) == 0 {
		org.Index()
		l.checkCoverage(org)
	}
	if err := l.result(); err != nil {
		return nil, err
	}
	sortProblems(l.warns)
	org.Warnings = l.warns
	return org, nil
}

// loader collects problems while decoding one file.
type loader struct {
	file   string
	now    time.Time
	errs   []Problem
	warns  []Problem
	seen   map[Problem]bool // errors recorded, to report each once
	visits int
	spent  bool // the visit budget ran out (reported once)

	// filled while decoding, for references
	teams map[string]bool
	roles map[string]*Role
	refs  []roleRef // roles named by settings, checked once all are read
}

func (l *loader) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	sortProblems(l.errs)
	return &Errors{Problems: l.errs}
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
}

func (l *loader) errAt(line, col int, format string, args ...any) {
	if len(l.errs) > maxErrors {
		return
	}
	p := Problem{File: l.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
	if l.seen[p] { // a value reached through several aliases
		return
	}
	if l.seen == nil {
		l.seen = make(map[Problem]bool)
	}
	l.seen[p] = true
	if len(l.errs) == maxErrors {
		p = Problem{File: l.file, Line: 1, Col: 1, Msg: fmt.Sprintf("more than %d errors; only the first %d found are shown", maxErrors, maxErrors)}
	}
	l.errs = append(l.errs, p)
}

func (l *loader) errf(n *yaml.Node, format string, args ...any) {
	line, col := place(n)
	l.errAt(line, col, format, args...)
}

func (l *loader) warnf(n *yaml.Node, format string, args ...any) {
	line, col := place(n)
	l.warns = append(l.warns, Problem{File: l.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func (l *loader) warnAt(line, col int, format string, args ...any) {
	l.warns = append(l.warns, Problem{File: l.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func place(n *yaml.Node) (int, int) {
	if n == nil || n.Line == 0 {
		return 1, 1
	}
	return n.Line, n.Column
}

// parse decodes the bytes into the document's root node, or records why
// it cannot.
func (l *loader) parse(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports its own errors by panicking internally and
		// recovers them; anything escaping is a bug there, not a reason to
		// take the daemon down.
		if v := recover(); v != nil {
			l.errAt(1, 1, "yaml: cannot parse the file (%v)", v)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errAt(1, 1, "the file is empty; it needs at least \"version: 1\" and roles, teams and people")
		} else {
			l.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.yamlError(err)
		return nil
	default:
		line, _ := place(&extra)
		l.errAt(line, 1, "a second YAML document starts here; a roles file holds one document")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.errAt(1, 1, "the file is empty; it needs at least \"version: 1\" and roles, teams and people")
		return nil
	}
	return doc.Content[0]
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 4: did not find
// expected key") into a problem at that line.
func (l *loader) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil && n > 0 {
				line, msg = n, tail
			}
		}
	}
	l.errAt(line, 1, "invalid YAML: %s", msg)
}

// visit resolves aliases and charges the visit budget. It returns nil once
// the budget is spent.
func (l *loader) visit(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 100 {
			l.errf(n, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	l.visits++
	if l.visits > maxVisits {
		if !l.spent {
			l.spent = true
			l.errf(n, "the file expands to more than %d values (through aliases); simplify it", maxVisits)
		}
		return nil
	}
	return n
}

// describe names what a node holds, for "got …" in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!timestamp":
			return "the date " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// pair is one key and its value in a mapping.
type pair struct {
	key, val *yaml.Node
}

// entries returns a mapping's pairs in file order. Duplicate keys and keys
// that are not strings are reported (what names an entry, "role id") and
// left out. A null value is an empty mapping; anything else not a mapping
// is reported with want.
func (l *loader) entries(n *yaml.Node, what, want string) []pair {
	if n = l.visit(n); n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.errf(n, "%s, got %s", want, describe(n))
		return nil
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	out := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := l.visit(n.Content[i]), n.Content[i+1]
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" || k.ShortTag() == "!!merge" {
			l.errf(k, "%s must be a plain string, got %s", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.errf(k, "duplicate %s %q (first at line %d)", what, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	return out
}

// fields decodes a mapping of settings: each key must be one of allowed.
// It returns the pairs by key; unknown keys are reported with the list of
// allowed ones.
func (l *loader) fields(n *yaml.Node, where, want string, allowed ...string) map[string]pair {
	out := make(map[string]pair)
	for _, p := range l.entries(n, "key", want) {
		if !contains(allowed, p.key.Value) {
			l.errf(p.key, "unknown key %q in %s; allowed keys: %s", p.key.Value, where, strings.Join(allowed, ", "))
			continue
		}
		out[p.key.Value] = p
	}
	return out
}

// str decodes a string scalar. Numbers, booleans and dates are refused
// rather than converted, so that a value never changes meaning silently.
func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	if n = l.visit(n); n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			hint = fmt.Sprintf("; quote it: %q", n.Value)
		}
		l.errf(n, "%s must be a string, got %s%s", what, describe(n), hint)
		return "", false
	}
	return n.Value, true
}

// text decodes a required, non-blank string, trimmed.
func (l *loader) text(n *yaml.Node, what string) (string, bool) {
	s, ok := l.str(n, what)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		l.errf(n, "%s must not be empty", what)
		return "", false
	}
	return s, true
}

// boolean decodes a true/false scalar.
func (l *loader) boolean(n *yaml.Node, what string) (bool, bool) {
	if n = l.visit(n); n == nil {
		return false, false
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		l.errf(n, "%s must be true or false, got %s", what, describe(n))
		return false, false
	}
	return v, true
}

// integer decodes an integer scalar of at least min.
func (l *loader) integer(n *yaml.Node, what string, min int) (int, bool) {
	if n = l.visit(n); n == nil {
		return 0, false
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		l.errf(n, "%s must be a whole number of at least %d, got %s", what, min, describe(n))
		return 0, false
	}
	if v < min {
		l.errf(n, "%s must be at least %d, got %d", what, min, v)
		return 0, false
	}
	return v, true
}

// item is one string of a list, with its node for messages.
type item struct {
	val  string
	node *yaml.Node
}

// strings decodes a list of non-empty strings (null is an empty list),
// reporting entries listed twice. what names one entry ("role id").
func (l *loader) strList(n *yaml.Node, where, what string) []item {
	if n = l.visit(n); n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("; write [%s]", n.Value)
		}
		l.errf(n, "%s must be a list, got %s%s", where, describe(n), hint)
		return nil
	}
	out := make([]item, 0, len(n.Content))
	seen := make(map[string]*yaml.Node, len(n.Content))
	for _, c := range n.Content {
		if c = l.visit(c); c == nil {
			return out
		}
		s, ok := l.text(c, where+": each "+what)
		if !ok {
			continue
		}
		if first, dup := seen[s]; dup {
			l.errf(c, "%s: %s %q is listed twice (first at line %d)", where, what, s, first.Line)
			continue
		}
		seen[s] = c
		out = append(out, item{s, c})
	}
	return out
}

func values(items []item) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.val
	}
	return out
}
