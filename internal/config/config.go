// Package config reads the daemon's configuration file and its secrets.
// The file is decoded strictly through YAML nodes, so every problem (an
// unknown key, a value of the wrong type, a bad cron spec) is reported with
// its FILE:LINE:COL, all at once. Secrets come from the environment only.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Config is a decoded, validated configuration with defaults filled in and
// relative paths resolved against the file's directory.
type Config struct {
	// File is the path the configuration was loaded from ("" for Default).
	File string

	Listen    string // address the HTTP server listens on
	PublicURL string // base of links posted to Bitbucket and Jira
	// Roles is the path of roles.yaml; "" means the roles.yaml built into
	// the binary (Default only).
	Roles  string
	DryRun bool // decide and record everything, change nothing upstream

	Store     Store
	Bitbucket Bitbucket
	Jira      Jira
	Schedule  Schedule
	Reports   Reports
	Webhooks  Webhooks
	Inbox     Inbox
	Retention Retention
	Gates     Gates
	Audit     Audit
	Log       Log
	Evidence  Evidence // evidence (h6)
}

// Evidence tunes the tamper-evident log (evidence (h6), docs/evidence.md).
type Evidence struct {
	// Retention: records older than this are pruned (hourly, by the
	// leader) after a checkpoint at the cut; 0 keeps them forever.
	Retention time.Duration
}

// Store selects the database.
type Store struct {
	Driver string // "sqlite" or "postgres"
	DSN    string // sqlite: a file path; postgres: a libpq URL or key=value string
}

// Store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Bitbucket is the Bitbucket Cloud side.
type Bitbucket struct {
	BaseURL      string        // API base, with /2.0
	Workspace    string        // workspace audited ("" to audit only the repositories roles.yaml names)
	AssignDrafts bool          // ask for reviewers on draft pull requests too
	Timeout      time.Duration // per request
}

// Jira is the Jira Cloud side.
type Jira struct {
	BaseURL       string // site URL, e.g. https://example.atlassian.net ("" disables Jira)
	ReportProject string // project the weekly report issue is filed in ("" = none)
}

// Schedule holds the cron specs of the periodic jobs.
type Schedule struct {
	Audit        string // robfig/cron standard spec, "" disables
	WeeklyReport string // robfig/cron standard spec, "" disables
	Timezone     string
	Location     *time.Location // Timezone, loaded
}

// Reports says where rendered reports are written.
type Reports struct {
	Dir string
}

// Webhooks tunes the intake.
type Webhooks struct {
	// AllowUnsigned accepts deliveries on an endpoint whose secret is not
	// set (local demos only). When a secret is set, it is always checked.
	AllowUnsigned bool
	MaxBodyBytes  int64
	// MaxInflightBytes bounds the bytes of bodies being read before their
	// signature is checked, every source together; past it, 503.
	MaxInflightBytes int64
}

// Inbox tunes the delivery workers.
type Inbox struct {
	Workers     int
	MaxAttempts int           // claims before a delivery is dead-lettered
	BaseBackoff time.Duration // first retry waits up to this (full jitter)
	MaxBackoff  time.Duration // cap of the exponential backoff
	Lease       time.Duration // how long a claim lasts unless renewed (its worker renews it every third of this)
	Timeout     time.Duration // processing one delivery is cut at this
}

// Retention bounds what the store keeps; pruning runs on the cron leader,
// in batches of Batch rows.
type Retention struct {
	DoneDeliveries time.Duration // processed deliveries (and their bodies) are deleted this long after they were done
	DeadLetters    time.Duration // dead letters are deleted this long after they died
	Decisions      time.Duration // decisions (with their snapshots) are deleted this long after they were made
	Batch          int           // rows deleted per statement
}

// Gates tunes deployment approval gates.
type Gates struct {
	TTL time.Duration // a pending gate expires after this
}

// Audit bounds what one hour of audits may spend of the upstream rate limits.
type Audit struct {
	BitbucketHourlyBudget int
	JiraHourlyBudget      int
}

// Log configures logging.
type Log struct {
	Level  string // debug, info, warn, error
	Format string // auto (JSON unless stderr is a terminal), json, console
}

// Log formats.
const (
	LogAuto    = "auto"
	LogJSON    = "json"
	LogConsole = "console"
)

// Default values, as documented in the README.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultRoles        = "roles.yaml"
	DefaultSQLiteDSN    = "data/rolekeeper.db"
	DefaultBitbucketURL = "https://api.bitbucket.org/2.0"
	DefaultAudit        = "0 * * * *"
	DefaultWeeklyReport = "0 8 * * MON"
	DefaultTimezone     = "UTC"
	DefaultReportsDir   = "data/reports"
	DefaultMaxBodyBytes = 5 << 20
	// DefaultMaxInflightBytes is webhooks.max_inflight_bytes' default.
	DefaultMaxInflightBytes = 64 << 20
)

// defaults returns a configuration with every default set and paths
// relative to the working directory.
func defaults() Config {
	return Config{
		Listen:    DefaultListen,
		PublicURL: "http://" + DefaultListen,
		Roles:     DefaultRoles,
		Store:     Store{Driver: DriverSQLite, DSN: DefaultSQLiteDSN},
		Bitbucket: Bitbucket{BaseURL: DefaultBitbucketURL, Timeout: 15 * time.Second},
		Schedule: Schedule{
			Audit:        DefaultAudit,
			WeeklyReport: DefaultWeeklyReport,
			Timezone:     DefaultTimezone,
			Location:     time.UTC,
		},
		Reports:  Reports{Dir: DefaultReportsDir},
		Webhooks: Webhooks{MaxBodyBytes: DefaultMaxBodyBytes, MaxInflightBytes: DefaultMaxInflightBytes},
		Inbox: Inbox{
			Workers:     4,
			MaxAttempts: 8,
			BaseBackoff: 2 * time.Second,
			MaxBackoff:  10 * time.Minute,
			Lease:       30 * time.Second,
			Timeout:     2 * time.Minute,
		},
		Retention: Retention{
			DoneDeliveries: 14 * 24 * time.Hour,
			DeadLetters:    90 * 24 * time.Hour,
			Decisions:      400 * 24 * time.Hour,
			Batch:          500,
		},
		Gates: Gates{TTL: 24 * time.Hour},
		Audit: Audit{BitbucketHourlyBudget: 500, JiraHourlyBudget: 500},
		Log:   Log{Level: "info", Format: LogAuto},
	}
}

// Default is the configuration `rolekeeper serve` runs on without
// --config: SQLite at data/rolekeeper.db under the working directory, the
// roles.yaml built into the binary, webhooks refused until their secret is
// set, and dry-run in effect as long as no API credentials are in the
// environment.
func Default() Config {
	c := defaults()
	c.Roles = ""
	return c
}

// Load reads and validates the configuration file at path. Problems are
// returned together as *Errors.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates configuration bytes; name is the file's path,
// used in problems and to resolve relative paths.
func Parse(name string, b []byte) (Config, error) {
	d := &decoder{file: name}
	c := defaults()
	d.decode(b, &c)
	if err := d.err(); err != nil {
		return Config{}, err
	}
	c.File = name
	dir := filepath.Dir(name)
	c.Roles = resolve(dir, c.Roles)
	c.Reports.Dir = resolve(dir, c.Reports.Dir)
	if c.Store.Driver == DriverSQLite {
		c.Store.DSN = resolve(dir, c.Store.DSN)
	}
	return c, nil
}

// resolve makes a relative path relative to dir (the config file's
// directory); absolute paths and sqlite's special names stay as they are.
func resolve(dir, p string) string {
	if p == "" || p == ":memory:" || filepath.IsAbs(p) || len(p) > 5 && p[:5] == "file:" {
		return p
	}
	return filepath.Join(dir, p)
}

// publicURLFor derives the public URL from a listen address when the file
// does not give one.
func publicURLFor(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + DefaultListen
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
