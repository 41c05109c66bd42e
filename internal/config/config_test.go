package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

var update = flag.Bool("update", false, "rewrite the golden .err files of testdata/bad")

// TestBadConfigs checks every file in testdata/bad against its .err golden
// file: every problem, with its FILE:LINE:COL, at once.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) = %v, want *Errors", f, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden file: %v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ\n got:\n%s\nwant:\n%s", got, want)
			}
			for _, p := range errs.Problems {
				if p.File != f || p.Line < 1 || p.Col < 1 {
					t.Errorf("problem without a place: %+v", p)
				}
			}
		})
	}
}

func TestParseDefaultsAndPaths(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		yaml  string
		check func(t *testing.T, c Config)
	}{
		{
			name: "empty file gives every default, paths beside the file",
			file: "/etc/rolekeeper/config.yaml",
			yaml: "",
			check: func(t *testing.T, c Config) {
				want := defaults()
				want.File = "/etc/rolekeeper/config.yaml"
				want.Roles = "/etc/rolekeeper/roles.yaml"
				want.Store.DSN = "/etc/rolekeeper/data/rolekeeper.db"
				want.Reports.Dir = "/etc/rolekeeper/data/reports"
				if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", want) {
					t.Errorf("got  %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "relative file resolves relative to its directory",
			file: "deploy/rk.yaml",
			yaml: "roles: ../roles.yaml\nstore: {dsn: db/rk.db}\nreports: {dir: /var/reports}\n",
			check: func(t *testing.T, c Config) {
				if c.Roles != "roles.yaml" || c.Store.DSN != filepath.Join("deploy", "db", "rk.db") || c.Reports.Dir != "/var/reports" {
					t.Errorf("paths: roles %q dsn %q reports %q", c.Roles, c.Store.DSN, c.Reports.Dir)
				}
			},
		},
		{
			name: "postgres dsn is not a path",
			file: "/etc/rk/config.yaml",
			yaml: "store:\n  driver: postgres\n  dsn: postgres://rk@db/rk?sslmode=disable\n",
			check: func(t *testing.T, c Config) {
				if c.Store.DSN != "postgres://rk@db/rk?sslmode=disable" {
					t.Errorf("dsn %q", c.Store.DSN)
				}
			},
		},
		{
			name: "public_url follows listen when not given",
			file: "c.yaml",
			yaml: "listen: \":9090\"\n",
			check: func(t *testing.T, c Config) {
				if c.PublicURL != "http://127.0.0.1:9090" {
					t.Errorf("public_url %q", c.PublicURL)
				}
			},
		},
		{
			name: "values and durations",
			file: "c.yaml",
			yaml: strings.Join([]string{
				"public_url: https://rk.example.com",
				"dry_run: true",
				"schedule: {audit: \"\", weekly_report: \"@weekly\", timezone: Europe/Paris}",
				"webhooks: {allow_unsigned: true, max_body_bytes: 1048576}",
				"inbox: {workers: 2, max_attempts: 3, base_backoff: 100ms, max_backoff: 1m, lease: 30s}",
				"retention: {done_deliveries: 168h, dead_letters: 720h, decisions: 8760h, batch: 100}",
				"gates: {ttl: 2h}",
				"bitbucket: {assign_drafts: true, timeout: 5s, workspace: acme}",
				"jira: {base_url: https://acme.atlassian.net, report_project: OPS}",
				"audit: {bitbucket_hourly_budget: 100, jira_hourly_budget: 50}",
				"log: {level: debug, format: json}",
			}, "\n"),
			check: func(t *testing.T, c Config) {
				if !c.DryRun || c.PublicURL != "https://rk.example.com" {
					t.Errorf("top level: %+v", c)
				}
				if c.Schedule.Audit != "" || c.Schedule.WeeklyReport != "@weekly" || c.Schedule.Location.String() != "Europe/Paris" {
					t.Errorf("schedule: %+v", c.Schedule)
				}
				if !c.Webhooks.AllowUnsigned || c.Webhooks.MaxBodyBytes != 1<<20 {
					t.Errorf("webhooks: %+v", c.Webhooks)
				}
				if (c.Inbox != Inbox{Workers: 2, MaxAttempts: 3, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Minute, Lease: 30 * time.Second, Timeout: 2 * time.Minute}) {
					t.Errorf("inbox: %+v", c.Inbox)
				}
				if (c.Retention != Retention{DoneDeliveries: 168 * time.Hour, DeadLetters: 720 * time.Hour, Decisions: 8760 * time.Hour, Batch: 100}) {
					t.Errorf("retention: %+v", c.Retention)
				}
				if c.Gates.TTL != 2*time.Hour || !c.Bitbucket.AssignDrafts || c.Bitbucket.Timeout != 5*time.Second || c.Bitbucket.Workspace != "acme" {
					t.Errorf("gates/bitbucket: %+v %+v", c.Gates, c.Bitbucket)
				}
				if c.Jira.ReportProject != "OPS" || c.Audit.JiraHourlyBudget != 50 || c.Log.Format != LogJSON {
					t.Errorf("jira/audit/log: %+v %+v %+v", c.Jira, c.Audit, c.Log)
				}
			},
		},
		{
			name: "a key without a value keeps its default",
			file: "c.yaml",
			yaml: "dry_run:\ninbox:\n  workers:\n",
			check: func(t *testing.T, c Config) {
				if c.DryRun || c.Inbox.Workers != 4 {
					t.Errorf("got %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.file, []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestShippedConfigs loads the example configurations in config/.
func TestShippedConfigs(t *testing.T) {
	for _, name := range []string{"rolekeeper.yaml", "demo.yaml"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "config", name)
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Roles != filepath.Join("..", "..", "roles.yaml") {
				t.Errorf("roles %q, want the repository's roles.yaml", c.Roles)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Roles != "" || c.Store.Driver != DriverSQLite || c.Store.DSN != "data/rolekeeper.db" || c.Webhooks.AllowUnsigned || c.DryRun {
		t.Errorf("Default() = %+v", c)
	}
	day := 24 * time.Hour
	if (c.Retention != Retention{DoneDeliveries: 14 * day, DeadLetters: 90 * day, Decisions: 400 * day, Batch: 500}) {
		t.Errorf("Default().Retention = %+v", c.Retention)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestSecrets(t *testing.T) {
	env := map[string]string{
		EnvBitbucketUsername:      "me@example.com",
		EnvBitbucketToken:         "bb-token-value",
		EnvBitbucketWebhookSecret: " new-secret , old-secret ,",
		EnvJiraEmail:              "me@example.com",
		EnvJiraToken:              "jira-token-value",
		EnvJiraWebhookSecret:      "jira-hook-secret",
		EnvAPIToken:               "api-token-value",
		EnvAdminToken:             " admin-token-value ",
		EnvStoreDSN:               "postgres://u:pw-value@db/rk",
	}
	s := LoadSecrets(func(k string) string { return env[k] })
	if got := strings.Join(s.BitbucketWebhookSecrets, "|"); got != "new-secret|old-secret" {
		t.Errorf("rotation secrets = %q", got)
	}
	if !s.HasBitbucketAPI() || !s.HasJiraAPI() {
		t.Errorf("credentials not seen: %v", s)
	}
	if s.APIToken != "api-token-value" || s.AdminToken != "admin-token-value" {
		t.Error("API tokens not read, or not trimmed")
	}
	if str := s.String(); !strings.Contains(str, EnvAPIToken+"=<redacted>") || !strings.Contains(str, EnvAdminToken+"=<redacted>") {
		t.Errorf("String does not say which tokens are set: %s", str)
	}

	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).Info("secrets", zap.Any("secrets", s), zap.Stringer("str", s))
	js, _ := json.Marshal(struct{ S Secrets }{s})
	renders := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), string(js),
		fmt.Sprint(logs.All()[0].ContextMap()),
	}
	for _, r := range renders {
		for _, v := range []string{"bb-token-value", "new-secret", "old-secret", "jira-token-value", "jira-hook-secret", "api-token-value", "admin-token-value", "pw-value", "me@example.com"} {
			if strings.Contains(r, v) {
				t.Errorf("secret %q leaked in %q", v, r)
			}
		}
	}

	empty := LoadSecrets(func(string) string { return "" })
	if empty.HasBitbucketAPI() || empty.HasJiraAPI() || empty.BitbucketWebhookSecrets != nil {
		t.Errorf("empty environment gave %#v", empty)
	}
	token := LoadSecrets(func(k string) string {
		if k == EnvBitbucketAccessToken {
			return "at"
		}
		return ""
	})
	if !token.HasBitbucketAPI() {
		t.Error("an access token alone is Bitbucket credentials")
	}
}
