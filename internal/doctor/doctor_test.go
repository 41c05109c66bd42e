package doctor

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// Distinctive secrets, so that a leak into the output is caught.
const (
	bbUser    = "rolekeeper-bot@acme.example"
	bbToken   = "bb-api-token-5ecret-0001"
	jiraEmail = "rolekeeper-bot@acme.example"
	jiraToken = "jira-api-token-5ecret-0002"
	bbHook    = "bb-webhook-5ecret-0003-0123456789"
	jiraHook  = "jira-webhook-5ecret-0004-0123456789"
	apiToken  = "api-token-5ecret-0005-0123456789abcdef"
	admToken  = "admin-token-5ecret-0007-0123456789abcdef"
	// evidenceKey is a 32-byte ed25519 seed, base64 (evidence (h6)).
	evidenceKey = "ZXZpZGVuY2Uta2V5LTVlY3JldC0wMDA2LTAxMjM0NTY="
)

var secretValues = []string{bbToken, jiraToken, bbHook, jiraHook, apiToken, admToken, evidenceKey}

// env is a fake Bitbucket and Jira, a config pointing at them, and every
// secret set: the all-good starting point each case spoils.
type env struct {
	dir     string
	bb      *bitbuckettest.Server
	jira    *jiratest.Server
	cfg     config.Config
	secrets config.Secrets
	leaks   []string // more secret values a case sets, never to be printed
}

func newEnv(t *testing.T, jopts jiratest.Options) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}

	e.bb = bitbuckettest.New()
	t.Cleanup(e.bb.Close)
	e.bb.RequireAuth(bbUser, bbToken)
	e.bb.AddRepository("acme/payments-api")
	e.bb.AddRepository("acme/payments-web")

	e.jira = jiratest.Start(jopts)
	t.Cleanup(e.jira.Close)
	e.jira.AddProject("PAY", "Payments")

	roles, err := os.ReadFile(filepath.Join("testdata", "roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "roles.yaml"), roles, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.dir, "rolekeeper.yaml")
	cfg, err := config.Parse(file, []byte(`
listen: "0.0.0.0:8080"
public_url: https://rolekeeper.acme.example
roles: roles.yaml
store:
  driver: sqlite
  dsn: data/rolekeeper.db
bitbucket:
  base_url: `+e.bb.URL()+`
jira:
  base_url: `+e.jira.URL()+`
`))
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.secrets = config.LoadSecrets(func(k string) string {
		return map[string]string{
			config.EnvBitbucketUsername:      bbUser,
			config.EnvBitbucketToken:         bbToken,
			config.EnvBitbucketWebhookSecret: bbHook,
			config.EnvJiraEmail:              jiraEmail,
			config.EnvJiraToken:              jiraToken,
			config.EnvJiraWebhookSecret:      jiraHook,
			config.EnvAPIToken:               apiToken,
			config.EnvAdminToken:             admToken,
			config.EnvEvidenceKey:            evidenceKey,
		}[k]
	})
	return e
}

func (e *env) run(t *testing.T) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	ok := Run(context.Background(), e.cfg, e.secrets, &out, Options{Timeout: 10 * time.Second})
	return ok, out.String()
}

// closedURL is the address of a server that has stopped: connections to it
// are refused at once.
func closedURL(t *testing.T, path string) string {
	t.Helper()
	s := bitbuckettest.New()
	u := s.URL()
	s.Close()
	return strings.TrimSuffix(u, "/2.0") + path
}

// line is one verdict of the output.
type line struct {
	level, check, text string
}

var lineRE = regexp.MustCompile(`^(ok|warn|FAIL)  (.+?) {2,}(.*)$`)

func parse(t *testing.T, out string) []line {
	t.Helper()
	var ls []line
	for _, s := range strings.Split(out, "\n") {
		if m := lineRE.FindStringSubmatch(s); m != nil {
			ls = append(ls, line{m[1], strings.TrimSpace(m[2]), m[3]})
		}
	}
	return ls
}

// has reports whether a line of that level and check contains every part.
func has(ls []line, want line) bool {
	for _, l := range ls {
		if l.level != want.level || l.check != want.check {
			continue
		}
		all := true
		for _, part := range strings.Split(want.text, "…") {
			if !strings.Contains(l.text, part) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func TestRun(t *testing.T) {
	cases := []struct {
		name   string
		jira   jiratest.Options
		setup  func(t *testing.T, e *env)
		wantOK bool
		want   []line // text: substrings separated by "…"
		absent []line // lines that must not be there: "" matches any level or check
	}{
		{
			name:   "all good",
			wantOK: true,
			want: []line{
				{"ok", "config", "rolekeeper.yaml loaded"},
				{"ok", "roles", "roles.yaml: 3 roles, 1 teams, 4 people, 4 rules, 2 repositories, 1 Jira projects"},
				{"ok", "store", "does not exist yet; rolekeeper creates it at start"},
				{"ok", "bitbucket", "authenticated with an API token as rolekeeper (account id 557058:"},
				{"ok", "repository", "acme/payments-api (team payments): pull requests readable (0 open)"},
				{"ok", "repository", "acme/payments-web (team payments): pull requests readable"},
				{"ok", "jira", "authenticated as rolekeeper (account id 557058:0f3a5c2e-rolekeeper-bot)"},
				{"ok", "jira project", `PAY (team payments): story points in customfield_10016 (Story point estimate), sub-tasks as "Sub-task"`},
				{"ok", "bitbucket webhook", "ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET is set"},
				{"ok", "jira webhook", "ROLEKEEPER_JIRA_WEBHOOK_SECRET is set"},
				{"ok", "public url", "https://rolekeeper.acme.example (https)…cannot test from here"},
				{"ok", "webhook urls", "Bitbucket https://rolekeeper.acme.example/webhooks/bitbucket, Jira https://rolekeeper.acme.example/webhooks/jira"},
				{"ok", "api token", "ROLEKEEPER_API_TOKEN is set: pipelines use it for `rolekeeper gate`"},
				{"ok", "admin token", "ROLEKEEPER_ADMIN_TOKEN is set"},
				{"ok", "dry run", "off: rolekeeper writes reviewers"},
				{"ok", "evidence", "ROLEKEEPER_EVIDENCE_KEY is set: checkpoints are signed; public key "},
			},
			absent: []line{{"warn", "", ""}, {"FAIL", "", ""}},
		},
		{
			name:   "evidence key unset",
			setup:  func(t *testing.T, e *env) { e.secrets.EvidenceKey = "" },
			wantOK: true,
			want:   []line{{"warn", "evidence", "ROLEKEEPER_EVIDENCE_KEY is not set: evidence checkpoints are unsigned"}},
		},
		{
			name:  "evidence key malformed",
			setup: func(t *testing.T, e *env) { e.secrets.EvidenceKey = "c2hvcnQ=" },
			want:  []line{{"FAIL", "evidence", "ROLEKEEPER_EVIDENCE_KEY: evidence key: 5 bytes"}},
		},
		{
			name: "an existing database opens",
			setup: func(t *testing.T, e *env) {
				s, err := sqlite.Open(context.Background(), e.cfg.Store.DSN)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			},
			wantOK: true,
			want:   []line{{"ok", "store", "rolekeeper.db opens, is migrated and answers"}},
		},
		{
			name: "bitbucket token rejected",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketToken = "bb-wrong-token-5ecret"
				e.leaks = append(e.leaks, "bb-wrong-token-5ecret")
			},
			want: []line{
				{"FAIL", "bitbucket", "token rejected (401)…ROLEKEEPER_BITBUCKET_USERNAME (the Atlassian account email, not the Bitbucket username)"},
			},
			absent: []line{{"ok", "repository", ""}, {"FAIL", "repository", ""}},
		},
		{
			name: "bitbucket access token rejected",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketUsername, e.secrets.BitbucketToken = "", ""
				e.secrets.BitbucketAccessToken = "bb-access-token-5ecret"
				e.leaks = append(e.leaks, "bb-access-token-5ecret")
			},
			want: []line{{"FAIL", "bitbucket", "token rejected (401)…ROLEKEEPER_BITBUCKET_ACCESS_TOKEN: the access token may be revoked or expired"}},
		},
		{
			name:  "bitbucket unreachable",
			setup: func(t *testing.T, e *env) { e.cfg.Bitbucket.BaseURL = closedURL(t, "/2.0") },
			want: []line{
				{"FAIL", "bitbucket", "cannot reach 127.0.0.1:…connection refused…Check bitbucket.base_url"},
			},
			absent: []line{{"ok", "repository", ""}},
		},
		{
			name: "bitbucket account not readable: repositories still checked",
			setup: func(t *testing.T, e *env) {
				e.bb.FailNext(http.MethodGet, "/2.0/user", http.StatusForbidden, 1, "")
			},
			wantOK: true,
			want: []line{
				{"warn", "bitbucket", "cannot read the token's account: forbidden (403)…read:account scope"},
				{"ok", "repository", "acme/payments-api (team payments): pull requests readable"},
			},
		},
		{
			name:  "a repository that does not exist",
			setup: func(t *testing.T, e *env) { e.cfg.Roles = rolesWith(t, e, "acme/payments-web", "acme/payments-wbe") },
			want: []line{
				{"ok", "repository", "acme/payments-api (team payments): pull requests readable"},
				{"FAIL", "repository", "acme/payments-wbe (team payments): not found (404)…Check the name in roles.yaml"},
			},
		},
		{
			name: "a repository the token may not read",
			setup: func(t *testing.T, e *env) {
				e.bb.FailNext(http.MethodGet, "/repositories/acme/payments-web/pullrequests", http.StatusForbidden, 1, "")
			},
			want: []line{{"FAIL", "repository", "acme/payments-web (team payments): forbidden (403)…read:pullrequest:bitbucket"}},
		},
		{
			name: "bitbucket unreachable without credentials",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketUsername, e.secrets.BitbucketToken = "", ""
				e.cfg.Bitbucket.BaseURL = closedURL(t, "/2.0")
			},
			want: []line{
				{"warn", "bitbucket", "no credentials"},
				{"FAIL", "repository", "acme/payments-api (team payments): cannot reach 127.0.0.1:…connection refused"},
				{"warn", "repository", "1 more not checked: 127.0.0.1:…is not reachable"},
			},
			absent: []line{{"", "repository", "acme/payments-web"}},
		},
		{
			name: "bitbucket username without token",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketToken = ""
			},
			want: []line{{"FAIL", "bitbucket", "ROLEKEEPER_BITBUCKET_USERNAME is set but ROLEKEEPER_BITBUCKET_TOKEN is not"}},
		},
		{
			name: "bitbucket two ways to authenticate",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketAccessToken = "bb-access-token-5ecret"
				e.leaks = append(e.leaks, "bb-access-token-5ecret")
			},
			want: []line{{"FAIL", "bitbucket", "both ROLEKEEPER_BITBUCKET_ACCESS_TOKEN and ROLEKEEPER_BITBUCKET_USERNAME/ROLEKEEPER_BITBUCKET_TOKEN are set: rolekeeper refuses to start"}},
		},
		{
			name: "jira token rejected",
			setup: func(t *testing.T, e *env) {
				e.jira.FailNextOn("GET /rest/api/2/myself", 1, http.StatusUnauthorized, "")
			},
			want:   []line{{"FAIL", "jira", "token rejected (401)…Check ROLEKEEPER_JIRA_EMAIL"}},
			absent: []line{{"ok", "jira project", ""}},
		},
		{
			name:  "jira unreachable",
			setup: func(t *testing.T, e *env) { e.cfg.Jira.BaseURL = closedURL(t, "") },
			want:  []line{{"FAIL", "jira", "cannot reach 127.0.0.1:…Check jira.base_url"}},
		},
		{
			name:  "jira project missing",
			setup: func(t *testing.T, e *env) { e.cfg.Roles = rolesWith(t, e, "[PAY]", "[PYA]") },
			want:  []line{{"FAIL", "jira project", "PYA (team payments): not found (404)…the project does not exist or the account cannot browse it"}},
		},
		{
			name:   "jira site without sub-tasks or story points",
			jira:   jiratest.Options{NoSubtasks: true, NoStoryPoints: true},
			wantOK: true,
			want: []line{
				{"ok", "jira project", "PAY (team payments): no story-points field, no sub-task type"},
				{"warn", "jira project", "PAY (team payments): no sub-task issue type: test plans and design reviews are created as linked issues"},
				{"warn", "jira project", "PAY (team payments): no story-points field: the story-points rule checks user stories only"},
			},
		},
		{
			name:   "an issue type a rule watches is missing",
			setup:  func(t *testing.T, e *env) { e.cfg.Roles = rolesWith(t, e, "[Design]", "[Blueprint]") },
			wantOK: true,
			want:   []line{{"warn", "jira project", `PAY (team payments): no issue type "Blueprint": qa-lead/design-review never triggers there`}},
		},
		{
			name:   "jira off but projects named",
			setup:  func(t *testing.T, e *env) { e.cfg.Jira.BaseURL = "" },
			wantOK: true,
			want: []line{
				{"warn", "jira", "off (jira.base_url is empty) but roles.yaml names Jira projects PAY"},
				{"ok", "jira webhook", "not needed (Jira is off)"},
			},
			absent: []line{{"ok", "webhook urls", "/webhooks/jira"}},
		},
		{
			name: "no secrets at all",
			setup: func(t *testing.T, e *env) {
				e.secrets = config.Secrets{}
			},
			want: []line{
				{"warn", "bitbucket", "no credentials (ROLEKEEPER_BITBUCKET_USERNAME and ROLEKEEPER_BITBUCKET_TOKEN, or ROLEKEEPER_BITBUCKET_ACCESS_TOKEN): rolekeeper reads 127.0.0.1:…anonymously and changes nothing there"},
				{"warn", "repository", "acme/payments-api (team payments): not readable without credentials (401): private repositories need ROLEKEEPER_BITBUCKET_USERNAME"},
				{"warn", "jira", "no credentials (ROLEKEEPER_JIRA_EMAIL and ROLEKEEPER_JIRA_TOKEN)"},
				{"FAIL", "bitbucket webhook", "ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET is not set: POST /webhooks/bitbucket answers 503 to every delivery"},
				{"FAIL", "jira webhook", "ROLEKEEPER_JIRA_WEBHOOK_SECRET is not set: POST /webhooks/jira answers 503"},
				{"warn", "api token", "ROLEKEEPER_API_TOKEN is not set: pipelines cannot use `rolekeeper gate`"},
				{"warn", "admin token", "ROLEKEEPER_ADMIN_TOKEN is not set: the rest of /api/v1"},
				{"warn", "dry run", "off, but rolekeeper runs dry on Bitbucket (no API credentials) and Jira (no API credentials)"},
			},
		},
		{
			name: "unsigned webhooks allowed",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketWebhookSecrets = nil
				e.cfg.Webhooks.AllowUnsigned = true
			},
			wantOK: true,
			want:   []line{{"warn", "bitbucket webhook", "webhooks.allow_unsigned is true: POST /webhooks/bitbucket accepts unsigned deliveries…Local demos only"}},
		},
		{
			name: "weak secrets and a rotation",
			setup: func(t *testing.T, e *env) {
				e.secrets.BitbucketWebhookSecrets = []string{"short"}
				e.secrets.JiraWebhookSecrets = []string{jiraHook, jiraHook + "-old"}
				e.secrets.APIToken = "tiny"
				e.secrets.AdminToken = "small"
			},
			wantOK: true,
			want: []line{
				{"warn", "bitbucket webhook", "shorter than 16 characters"},
				{"ok", "jira webhook", "holds 2 secrets (a rotation)"},
				{"warn", "api token", "ROLEKEEPER_API_TOKEN is shorter than 16 characters"},
				{"warn", "admin token", "ROLEKEEPER_ADMIN_TOKEN is shorter than 16 characters"},
			},
		},
		{
			name:  "the admin token is the pipelines' token",
			setup: func(t *testing.T, e *env) { e.secrets.AdminToken = apiToken },
			want: []line{
				{"ok", "api token", "ROLEKEEPER_API_TOKEN is set"},
				{"FAIL", "admin token", "ROLEKEEPER_ADMIN_TOKEN equals ROLEKEEPER_API_TOKEN, which every pipeline holds"},
			},
		},
		{
			name:   "public url on loopback",
			setup:  func(t *testing.T, e *env) { e.cfg.PublicURL = "http://127.0.0.1:8080" },
			wantOK: true,
			want: []line{
				{"warn", "public url", "http://127.0.0.1:8080 is not reachable from Bitbucket Cloud or Jira Cloud"},
				{"ok", "webhook urls", "Bitbucket http://127.0.0.1:8080/webhooks/bitbucket"},
			},
		},
		{
			name:   "public url in the cluster",
			setup:  func(t *testing.T, e *env) { e.cfg.PublicURL = "http://rk-rolekeeper.ops.svc:8080" },
			wantOK: true,
			want:   []line{{"warn", "public url", "is a loopback, private or in-cluster address"}},
		},
		{
			name:   "public url without TLS",
			setup:  func(t *testing.T, e *env) { e.cfg.PublicURL = "http://rolekeeper.acme.example" },
			wantOK: true,
			want:   []line{{"warn", "public url", "http://rolekeeper.acme.example: https expected"}},
		},
		{
			name:   "dry run on",
			setup:  func(t *testing.T, e *env) { e.cfg.DryRun = true },
			wantOK: true,
			want:   []line{{"warn", "dry run", "on (dry_run: true): every decision is recorded, nothing is written to Bitbucket or Jira"}},
		},
		{
			name: "roles.yaml does not load",
			setup: func(t *testing.T, e *env) {
				e.cfg.Roles = rolesWith(t, e, "code-review: {reviewers: 1, approvals: 1}", "code-reveiw: {reviewers: 1}")
			},
			want: []line{
				{"FAIL", "roles", "does not load (1 problem)…rolekeeper validate --roles"},
				{"FAIL", "roles", `roles-edited.yaml:13:11: role technical-lead: unknown rule kind "code-reveiw"`},
				{"warn", "repository", "not checked: roles.yaml did not load"},
			},
		},
		{
			name:  "roles.yaml missing",
			setup: func(t *testing.T, e *env) { e.cfg.Roles = filepath.Join(e.dir, "nowhere.yaml") },
			want:  []line{{"FAIL", "roles", "nowhere.yaml does not exist: `roles:` in the config names it"}},
		},
		{
			name: "sqlite directory cannot be created",
			setup: func(t *testing.T, e *env) {
				blocker := filepath.Join(e.dir, "blocker")
				if err := os.WriteFile(blocker, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				e.cfg.Store.DSN = filepath.Join(blocker, "rolekeeper.db")
			},
			want: []line{{"FAIL", "store", "does not exist and cannot be created:…blocker is not a directory…or point store.dsn elsewhere"}},
		},
		{
			name:   "sqlite in memory",
			setup:  func(t *testing.T, e *env) { e.cfg.Store.DSN = ":memory:" },
			wantOK: true,
			want:   []line{{"warn", "store", "sqlite in memory (store.dsn): deliveries, decisions and gates are lost at every restart"}},
		},
		{
			name: "postgres unreachable, password hidden",
			setup: func(t *testing.T, e *env) {
				e.cfg.Store.Driver = config.DriverPostgres
				e.secrets.StoreDSN = "postgres://rolekeeper:pg-5ecret-0006@" + strings.TrimPrefix(closedURL(t, ""), "http://") + "/rolekeeper?sslmode=disable&connect_timeout=5"
				e.leaks = append(e.leaks, "pg-5ecret-0006")
			},
			want: []line{{"FAIL", "store", "postgres postgres://rolekeeper:xxxxx@127.0.0.1:…/rolekeeper is not reachable or refuses the account:…Check ROLEKEEPER_STORE_DSN"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.jira)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			ok, out := e.run(t)
			if ok != tc.wantOK {
				t.Errorf("Run = %v, want %v\n%s", ok, tc.wantOK, out)
			}
			ls := parse(t, out)
			for _, w := range tc.want {
				if !has(ls, w) {
					t.Errorf("no %s line for %q containing %q\n%s", w.level, w.check, w.text, out)
				}
			}
			for _, a := range tc.absent {
				for _, l := range ls {
					if (a.level == "" || l.level == a.level) && (a.check == "" || l.check == a.check) && strings.Contains(l.text, a.text) {
						t.Errorf("unexpected line %q %q %q\n%s", l.level, l.check, l.text, out)
					}
				}
			}
			for _, s := range append(append([]string(nil), secretValues...), e.leaks...) {
				if strings.Contains(out, s) {
					t.Errorf("the output shows a secret (%q)\n%s", s, out)
				}
			}
			// The summary counts what was printed.
			var n [3]int
			for _, l := range ls {
				n[map[string]Level{"ok": OK, "warn": Warn, "FAIL": Fail}[l.level]]++
			}
			if !strings.Contains(out, "\n"+summary(n)+"\n") {
				t.Errorf("summary is not %q\n%s", summary(n), out)
			}
			if ok != (n[Fail] == 0) {
				t.Errorf("Run = %v with %d FAIL lines", ok, n[Fail])
			}
		})
	}
}

func summary(n [3]int) string {
	return fmt.Sprintf("%d ok, %d %s, %d failed", n[OK], n[Warn], plural(n[Warn], "warning", "warnings"), n[Fail])
}

// rolesWith writes the test roles.yaml with old replaced by new and
// returns its path.
func rolesWith(t *testing.T, e *env, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "roles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("testdata/roles.yaml has no %q", old)
	}
	p := filepath.Join(e.dir, "roles-edited.yaml")
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunPostgres checks a reachable PostgreSQL (ROLEKEEPER_TEST_POSTGRES_DSN,
// default the local test database), in a schema of its own.
func TestRunPostgres(t *testing.T) {
	dsn := pgtest.SchemaDSN(t, "rk_doctor_")

	e := newEnv(t, jiratest.Options{})
	e.cfg.Store = config.Store{Driver: config.DriverPostgres, DSN: "postgres://ignored.invalid/x"}
	e.secrets.StoreDSN = dsn
	ok, out := e.run(t)
	if !ok || !has(parse(t, out), line{"ok", "store", "postgres postgres://…answers and is migrated (DSN from ROLEKEEPER_STORE_DSN)"}) {
		t.Errorf("Run = %v\n%s", ok, out)
	}
}
