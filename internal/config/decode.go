package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong in the file, with its place.
type Problem struct {
	File string
	Line int
	Col  int
	Msg  string
}

// String renders "FILE:LINE:COL: message".
func (p Problem) String() string {
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) + ": " + p.Msg
}

// Errors is every problem found in a file, sorted by line and column.
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

type decoder struct {
	file  string
	probs []Problem
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) err() error {
	if len(d.probs) == 0 {
		return nil
	}
	sort.SliceStable(d.probs, func(i, j int) bool {
		a, b := d.probs[i], d.probs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &Errors{Problems: d.probs}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode fills c from the document in b.
func (d *decoder) decode(b []byte, c *Config) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := err.Error()
		line := 1
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		d.probs = append(d.probs, Problem{File: d.file, Line: line, Col: 1, Msg: msg})
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return // an empty file: every default
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}

	seen := d.mapping(root, "", []field{
		{"listen", str(&c.Listen, validListen)},
		{"public_url", str(&c.PublicURL, validHTTPURL)},
		{"roles", str(&c.Roles, nonEmpty)},
		{"dry_run", boolean(&c.DryRun)},
		{"store", section("store", []field{
			{"driver", str(&c.Store.Driver, oneOf(DriverSQLite, DriverPostgres))},
			{"dsn", str(&c.Store.DSN, nonEmpty)},
		})},
		{"bitbucket", section("bitbucket", []field{
			{"base_url", str(&c.Bitbucket.BaseURL, validHTTPURL)},
			{"workspace", str(&c.Bitbucket.Workspace, validSlug)},
			{"assign_drafts", boolean(&c.Bitbucket.AssignDrafts)},
			{"timeout", duration(&c.Bitbucket.Timeout, time.Second)},
		})},
		{"jira", section("jira", []field{
			{"base_url", str(&c.Jira.BaseURL, optional(validHTTPURL))},
			{"report_project", str(&c.Jira.ReportProject, optional(validProjectKey))},
		})},
		{"schedule", section("schedule", []field{
			{"audit", str(&c.Schedule.Audit, optional(validCron))},
			{"weekly_report", str(&c.Schedule.WeeklyReport, optional(validCron))},
			{"timezone", location(&c.Schedule.Timezone, &c.Schedule.Location)},
		})},
		{"reports", section("reports", []field{
			{"dir", str(&c.Reports.Dir, nonEmpty)},
		})},
		{"webhooks", section("webhooks", []field{
			{"allow_unsigned", boolean(&c.Webhooks.AllowUnsigned)},
			{"max_body_bytes", integer64(&c.Webhooks.MaxBodyBytes, 1024, 1<<30)},
			{"max_inflight_bytes", integer64(&c.Webhooks.MaxInflightBytes, 1024, 1<<34)},
		})},
		{"inbox", section("inbox", []field{
			{"workers", integer(&c.Inbox.Workers, 1, 256)},
			{"max_attempts", integer(&c.Inbox.MaxAttempts, 1, 1000)},
			{"base_backoff", duration(&c.Inbox.BaseBackoff, time.Millisecond)},
			{"max_backoff", duration(&c.Inbox.MaxBackoff, time.Millisecond)},
			{"lease", duration(&c.Inbox.Lease, time.Second)},
			{"timeout", duration(&c.Inbox.Timeout, time.Second)},
		})},
		{"retention", section("retention", []field{
			{"done_deliveries", duration(&c.Retention.DoneDeliveries, time.Hour)},
			{"dead_letters", duration(&c.Retention.DeadLetters, time.Hour)},
			{"decisions", duration(&c.Retention.Decisions, time.Hour)},
			{"batch", integer(&c.Retention.Batch, 1, 100_000)},
		})},
		{"gates", section("gates", []field{
			{"ttl", duration(&c.Gates.TTL, time.Minute)},
		})},
		{"audit", section("audit", []field{
			{"bitbucket_hourly_budget", integer(&c.Audit.BitbucketHourlyBudget, 1, 1_000_000)},
			{"jira_hourly_budget", integer(&c.Audit.JiraHourlyBudget, 1, 1_000_000)},
		})},
		{"log", section("log", []field{
			{"level", str(&c.Log.Level, oneOf("debug", "info", "warn", "error"))},
			{"format", str(&c.Log.Format, oneOf(LogAuto, LogJSON, LogConsole))},
		})},
		// evidence (h6)
		{"evidence", section("evidence", []field{
			{"retention", duration(&c.Evidence.Retention, 0)},
		})},
	})
	if r := c.Evidence.Retention; r > 0 && r < 7*24*time.Hour { // evidence (h6)
		d.errorf(seen["evidence.retention"], "evidence.retention: %s is shorter than a week; the weekly report's records must outlive it (0 keeps them forever)", r)
	}
	if _, ok := seen["public_url"]; !ok {
		c.PublicURL = publicURLFor(c.Listen)
	}

	// Checks across keys, placed on the key that needs fixing.
	if c.Store.Driver == DriverPostgres {
		if _, ok := seen["store.dsn"]; !ok {
			d.errorf(seen["store.driver"], "store.dsn is required with driver postgres (a libpq URL such as postgres://user@host/db)")
		}
	}
	if c.Inbox.BaseBackoff > c.Inbox.MaxBackoff {
		n := seen["inbox.base_backoff"]
		if n == nil {
			n = seen["inbox.max_backoff"]
		}
		d.errorf(n, "inbox.base_backoff (%s) is longer than inbox.max_backoff (%s)", c.Inbox.BaseBackoff, c.Inbox.MaxBackoff)
	}
	if c.Jira.ReportProject != "" && c.Jira.BaseURL == "" {
		d.errorf(seen["jira.report_project"], "jira.report_project needs jira.base_url")
	}
}

// field is one key of a mapping and how to decode its value.
type field struct {
	key    string
	decode func(d *decoder, n *yaml.Node, path string, seen map[string]*yaml.Node)
}

// mapping decodes the mapping n, whose keys must be among fields. It
// returns the value nodes by dotted key path (for checks across keys).
func (d *decoder) mapping(n *yaml.Node, section string, fields []field) map[string]*yaml.Node {
	seen := make(map[string]*yaml.Node)
	d.decodeMapping(n, section, fields, seen)
	return seen
}

func (d *decoder) decodeMapping(n *yaml.Node, section string, fields []field, seen map[string]*yaml.Node) {
	where := "the configuration"
	if section != "" {
		where = section
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, not %s", where, kindName(n))
		return
	}
	byKey := make(map[string]field, len(fields))
	allowed := make([]string, len(fields))
	for i, f := range fields {
		byKey[f.key] = f
		allowed[i] = f.key
	}
	local := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := byKey[k.Value]
		if !ok {
			in := ""
			if section != "" {
				in = " in " + section
			}
			d.errorf(k, "unknown key %q%s (allowed: %s)", k.Value, in, strings.Join(allowed, ", "))
			continue
		}
		if local[k.Value] {
			d.errorf(k, "duplicate key %q", k.Value)
			continue
		}
		local[k.Value] = true
		path := k.Value
		if section != "" {
			path = section + "." + k.Value
		}
		seen[path] = v
		f.decode(d, v, path, seen)
	}
}

func section(name string, fields []field) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, _ string, seen map[string]*yaml.Node) {
		d.decodeMapping(n, name, fields, seen)
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!null":
		return "null"
	}
	return n.Value
}

// isNull reports a key given without a value: the default stays.
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func str(dst *string, check func(string) error) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, path string, _ map[string]*yaml.Node) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "%s: expected a string, not %s", path, kindName(n))
			return
		}
		if check != nil {
			if err := check(n.Value); err != nil {
				d.errorf(n, "%s: %v", path, err)
				return
			}
		}
		*dst = n.Value
	}
}

func boolean(dst *bool) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, path string, _ map[string]*yaml.Node) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errorf(n, "%s: expected true or false, not %s", path, kindName(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, "%s: expected true or false: %v", path, err)
			return
		}
		*dst = b
	}
}

func integer64(dst *int64, lo, hi int64) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, path string, _ map[string]*yaml.Node) {
		if isNull(n) {
			return
		}
		var v int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
			d.errorf(n, "%s: expected a whole number, not %s", path, kindName(n))
			return
		}
		if v < lo || v > hi {
			d.errorf(n, "%s: %d is out of range [%d, %d]", path, v, lo, hi)
			return
		}
		*dst = v
	}
}

func integer(dst *int, lo, hi int) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, path string, seen map[string]*yaml.Node) {
		v := int64(*dst)
		integer64(&v, int64(lo), int64(hi))(d, n, path, seen)
		*dst = int(v)
	}
}

func duration(dst *time.Duration, minimum time.Duration) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, path string, _ map[string]*yaml.Node) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			d.errorf(n, "%s: expected a duration such as \"30s\", \"10m\" or \"24h\", not %s", path, kindName(n))
			return
		}
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			d.errorf(n, "%s: expected a duration such as \"30s\", \"10m\" or \"24h\", not %q", path, n.Value)
			return
		}
		if v < minimum {
			d.errorf(n, "%s: %s is shorter than the minimum %s", path, v, minimum)
			return
		}
		*dst = v
	}
}

func location(name *string, loc **time.Location) func(*decoder, *yaml.Node, string, map[string]*yaml.Node) {
	return func(d *decoder, n *yaml.Node, path string, seen map[string]*yaml.Node) {
		var v string
		str(&v, nonEmpty)(d, n, path, seen)
		if v == "" {
			return
		}
		l, err := time.LoadLocation(v)
		if err != nil {
			d.errorf(n, "%s: unknown time zone %q (use an IANA name such as Europe/Paris, or UTC)", path, v)
			return
		}
		*name, *loc = v, l
	}
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func optional(check func(string) error) func(string) error {
	return func(s string) error {
		if s == "" {
			return nil
		}
		return check(s)
	}
}

func oneOf(values ...string) func(string) error {
	return func(s string) error {
		for _, v := range values {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of: %s", s, strings.Join(values, ", "))
	}
}

func validListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

func validHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}

var slugRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func validSlug(s string) error {
	if !slugRE.MatchString(s) {
		return fmt.Errorf("%q is not a workspace slug", s)
	}
	return nil
}

var projectRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

func validProjectKey(s string) error {
	if !projectRE.MatchString(s) {
		return fmt.Errorf("%q is not a Jira project key (upper case, such as PAY)", s)
	}
	return nil
}

func validCron(s string) error {
	if _, err := cron.ParseStandard(s); err != nil {
		return fmt.Errorf("bad cron spec %q: %v (five fields: minute hour day-of-month month day-of-week, or \"\" to disable)", s, err)
	}
	return nil
}
