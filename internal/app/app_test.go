package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

const (
	fixtureSecret = "Gkvl$k$wyNpQAF42" // the signed fixture's secret
	fixtureSig    = "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035"
	newSecret     = "e2e-new-secret" // rotation: both secrets are accepted
	apiToken      = "e2e-api-token"
	adminToken    = "e2e-admin-token"
	jiraSecret    = "e2e-jira-secret"
)

// The people of testdata/roles.yaml, as Bitbucket knows them.
var (
	amara = model.Actor{AccountID: "712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11", DisplayName: "Amara Okafor"}
	kofi  = model.Actor{AccountID: "712020:66950b65-57d0-4e02-9bb9-70b6601db958", DisplayName: "Kofi Mensah"}
	mei   = model.Actor{AccountID: "712020:0c4f4c1e-8d43-4d8e-9a55-3c2a7d0e5b21", DisplayName: "Mei Chen"}
)

type e2e struct {
	t     *testing.T
	app   *App
	bb    *bitbuckettest.Server
	jira  *jiratest.Server
	roles string // path of the roles file the app watches
	base  string
	logs  *observer.ObservedLogs
}

func startApp(t *testing.T) *e2e {
	t.Helper()
	dir := t.TempDir()
	rolesPath := filepath.Join(dir, "roles.yaml")
	copyFile(t, "testdata/roles.yaml", rolesPath)

	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	bb.AddRepository("acme/payments-api")
	for _, u := range []model.Actor{amara, kofi, mei} {
		bb.AddUser(u)
	}
	js := jiratest.Start(jiratest.Options{Prefix: "/jira"})
	t.Cleanup(js.Close)
	js.AddProject("PAY", "Payments")

	cfgYAML := "listen: 127.0.0.1:0\n" +
		"public_url: https://rk.example.com\n" +
		"roles: roles.yaml\n" +
		"store: {driver: sqlite, dsn: data/rk.db}\n" +
		"bitbucket: {base_url: " + bb.URL() + ", workspace: acme}\n" +
		"jira: {base_url: " + js.URL() + "}\n" +
		"schedule: {audit: \"\", weekly_report: \"\"}\n" +
		"inbox: {workers: 2, base_backoff: 10ms, max_backoff: 100ms}\n"
	cfgPath := filepath.Join(dir, "rolekeeper.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		config.EnvBitbucketWebhookSecret: newSecret + "," + fixtureSecret,
		config.EnvBitbucketUsername:      "rolekeeper@example.com",
		config.EnvBitbucketToken:         "bb-token",
		config.EnvAPIToken:               apiToken,
		config.EnvAdminToken:             adminToken,
		config.EnvJiraWebhookSecret:      jiraSecret,
		config.EnvJiraEmail:              "rolekeeper@example.com",
		config.EnvJiraToken:              "jira-token",
	}
	core, logs := observer.New(zap.DebugLevel)
	a, err := New(cfg, config.LoadSecrets(func(k string) string { return env[k] }), Options{
		Logger:         zap.New(core),
		ReloadInterval: -1, // the test reloads explicitly
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &e2e{t: t, app: a, bb: bb, jira: js, roles: rolesPath, base: "http://" + a.Addr(), logs: logs}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) deliver(path string, body []byte, headers map[string]string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return e.send(req)
}

func (e *e2e) get(path string, auth bool) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	return e.send(req)
}

func (e *e2e) send(req *http.Request) (int, string) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds; the deadline only guards against a
// hang (the work is asynchronous: the inbox processes after the 202).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	e := startApp(t)

	// The published signed delivery: accepted, then a duplicate.
	push := fixtures.Read(t, "bitbucket/webhooks/repo_push__jenkins-bbs-signed.json")
	hdr := map[string]string{"X-Event-Key": "repo:push", "X-Request-UUID": "9c6e3f1a-push", webhook.SignatureHeader: fixtureSig}
	if code, body := e.deliver("/webhooks/bitbucket", push, hdr); code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d %s", code, body)
	}
	if code, body := e.deliver("/webhooks/bitbucket", push, hdr); code != http.StatusOK || !strings.Contains(body, `"duplicate"`) {
		t.Fatalf("repeated delivery: %d %s", code, body)
	}
	bad := map[string]string{"X-Event-Key": "repo:push", "X-Request-UUID": "9c6e3f1a-bad", webhook.SignatureHeader: strings.TrimSuffix(fixtureSig, "5") + "6"}
	if code, _ := e.deliver("/webhooks/bitbucket", push, bad); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}
	if code, _ := e.deliver("/webhooks/jira", []byte(`{"webhookEvent":"jira:issue_created"}`), map[string]string{"X-Atlassian-Webhook-Identifier": "j1"}); code != http.StatusUnauthorized {
		t.Fatalf("unsigned jira delivery: %d, want 401", code)
	}
	key := e.jira.AddIssue(jiratest.NewIssue{Project: "PAY", Type: "Story", Summary: "Refunds"})
	issue := e.jira.IssueEventBody("jira:issue_created", key)
	if code, body := e.deliver("/webhooks/jira", issue, map[string]string{
		"X-Atlassian-Webhook-Identifier": "jira-1", webhook.SignatureHeader: jiratest.Sign(jiraSecret, issue),
	}); code != http.StatusAccepted {
		t.Fatalf("jira delivery: %d %s", code, body)
	}

	// A pull request on a repository roles.yaml gives to team payments,
	// signed with the new secret: a reviewer is asked and the decision kept.
	id := e.bb.AddPullRequest("acme/payments-api", bitbuckettest.PR{
		Title: "Add refunds", Author: amara,
		Files: []model.ChangedFile{{Path: "refunds/refund.go", Status: model.FileAdded}},
	})
	created := e.bb.WebhookBody("pullrequest:created", "acme/payments-api", id, amara)
	if code, body := e.deliver("/webhooks/bitbucket", created, map[string]string{
		"X-Event-Key": "pullrequest:created", "X-Request-UUID": "pr-created-1", webhook.SignatureHeader: webhook.SignatureFor(created, newSecret),
	}); code != http.StatusAccepted {
		t.Fatalf("pull request delivery: %d %s", code, body)
	}
	var decisions []struct {
		ID       int64  `json:"id"`
		URL      string `json:"url"`
		Decision struct {
			Request []struct {
				Person string `json:"person"`
			} `json:"request"`
		} `json:"decision"`
	}
	waitFor(t, "the pull request's decision", func() bool {
		code, body := e.get("/api/v1/decisions?repository=acme/payments-api&pr="+itoa(id), true)
		return code == http.StatusOK && json.Unmarshal([]byte(body), &decisions) == nil && len(decisions) > 0
	})
	if len(decisions[0].Decision.Request) != 1 {
		t.Fatalf("decision asks %+v, want one reviewer", decisions[0].Decision.Request)
	}
	picked := decisions[0].Decision.Request[0].Person
	if picked != "kofi" && picked != "mei" {
		t.Errorf("asked %q, want a technical lead of payments", picked)
	}
	waitFor(t, "the reviewer on Bitbucket", func() bool { return len(e.bb.Reviewers("acme/payments-api", id)) == 1 })
	if !strings.HasPrefix(decisions[0].URL, "https://rk.example.com/decisions/") {
		t.Errorf("decision url %q", decisions[0].URL)
	}
	page := strings.TrimPrefix(decisions[0].URL, "https://rk.example.com")
	if code, body := e.get(page, false); code != http.StatusOK || !strings.Contains(body, "technical-lead/code-review") || strings.Contains(body, amara.AccountID) {
		t.Errorf("decision page %s: %d (or it shows an account id)", page, code)
	}
	if code, _ := e.get("/decisions/"+itoa64(decisions[0].ID), false); code != http.StatusNotFound {
		t.Errorf("decision page by its numeric id: %d, want 404", code)
	}
	pipelineReq, _ := http.NewRequest(http.MethodGet, e.base+"/api/v1/decisions?repository=acme/payments-api", nil)
	pipelineReq.Header.Set("Authorization", "Bearer "+apiToken)
	if code, _ := e.send(pipelineReq); code != http.StatusForbidden {
		t.Errorf("decisions API with the pipelines' token: %d, want 403", code)
	}
	if code, _ := e.get("/api/v1/decisions?repository=acme/payments-api", false); code != http.StatusUnauthorized {
		t.Errorf("API without token: %d", code)
	}
	if code, body := e.get("/api/v1/reports/weekly?week=2026-W45&format=json", true); code != http.StatusOK || !strings.Contains(body, "2026-W45") {
		t.Errorf("weekly report: %d %.200s", code, body)
	}
	gateReq := func(auth bool) int {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/api/v1/gates", strings.NewReader(`{"repository":"acme/payments-api","commit":"0123456789abcdef0123456789abcdef01234567","environment":"production"}`))
		if auth {
			req.Header.Set("Authorization", "Bearer "+apiToken)
		}
		code, _ := e.send(req)
		return code
	}
	if code := gateReq(false); code != http.StatusUnauthorized {
		t.Errorf("gate API without token: %d", code)
	}
	if code := gateReq(true); code == http.StatusNotFound || code == http.StatusUnauthorized || code >= 500 {
		t.Errorf("gate API not wired: %d", code)
	}
	if code, _ := e.get("/api/v1/reports/weekly", false); code != http.StatusUnauthorized {
		t.Errorf("weekly report without token: %d", code)
	}

	// Every delivery ends done; nothing is dead.
	waitFor(t, "the three deliveries done", func() bool {
		_, body := e.get("/api/v1/deliveries?state=done", true)
		return strings.Count(body, `"seq"`) == 3
	})
	if _, body := e.get("/api/v1/deliveries?state=dead", true); strings.TrimSpace(body) != "[]" {
		t.Errorf("dead deliveries: %s", body)
	}

	if code, body := e.get("/readyz", false); code != http.StatusOK || !strings.Contains(body, `"ready"`) || !strings.Contains(body, `"jira:PAY"`) {
		t.Errorf("readyz: %d %s", code, body)
	}
	_, metrics := e.get("/metrics", false)
	for _, want := range []string{
		`rolekeeper_webhooks_total{event="repo:push",outcome="accepted",source="bitbucket"} 1`,
		`rolekeeper_webhooks_total{event="repo:push",outcome="duplicate",source="bitbucket"} 1`,
		`rolekeeper_webhooks_total{event="unknown",outcome="bad_signature",source="bitbucket"} 1`,
		`rolekeeper_webhooks_total{event="pullrequest:created",outcome="accepted",source="bitbucket"} 1`,
		`rolekeeper_inbox_processed_total{result="done",source="bitbucket"} 2`,
		`rolekeeper_inbox_processed_total{result="done",source="jira"} 1`,
		`rolekeeper_webhooks_total{event="jira:issue_created",outcome="accepted",source="jira"} 1`,
		`rolekeeper_roles_reload_success 1`,
		`rolekeeper_inbox_depth{state="dead"} 0`,
		`rolekeeper_build_info{`,
		`rolekeeper_upstream_requests_total{`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestReload: SIGHUP-style reloads. A bad file is refused and the rules
// in force stay; a good one replaces them; the metrics follow.
func TestReload(t *testing.T) {
	e := startApp(t)
	reg := e.app.Registry()
	before := e.app.Roles().Get()

	if err := os.WriteFile(e.roles, []byte("version: 1\nroles:\n  technical-lead:\n    title: 3\n    oops: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.app.Reload()
	var perr *roles.Errors
	if !errors.As(err, &perr) || len(perr.Problems) == 0 {
		t.Fatalf("Reload of a bad file = %v, want *roles.Errors", err)
	}
	if e.app.Roles().Get() != before {
		t.Fatal("a bad file replaced the rules in force")
	}
	if got := testutil.ToFloat64(e.app.reload.success); got != 0 {
		t.Errorf("reload_success = %v after a refused file", got)
	}
	if got := testutil.ToFloat64(e.app.reload.total.WithLabelValues("failure")); got != 1 {
		t.Errorf("reload_total{failure} = %v", got)
	}
	if refused := e.logs.FilterMessage("roles.yaml refused: the rules in force stay").All(); len(refused) != 1 {
		t.Errorf("%d refusal logs", len(refused))
	}
	if code, body := e.get("/readyz", false); code != http.StatusOK || !strings.Contains(body, "last reload was refused") {
		t.Errorf("readyz after a refused reload: %d %s", code, body)
	}

	good, _ := os.ReadFile("testdata/roles.yaml")
	good = append(good, []byte("# edited\n")...)
	if err := os.WriteFile(e.roles, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Reload(); err != nil {
		t.Fatal(err)
	}
	after := e.app.Roles().Get()
	if after == before || after.Hash == before.Hash {
		t.Fatal("a good file was not put in force")
	}
	want := "# HELP rolekeeper_roles_hash_info SHA-256 of the roles.yaml in force (always 1).\n" +
		"# TYPE rolekeeper_roles_hash_info gauge\n" +
		"rolekeeper_roles_hash_info{hash=\"" + after.Hash + "\"} 1\n" +
		"# HELP rolekeeper_roles_reload_success Whether the last load of roles.yaml succeeded (1) or was refused (0).\n" +
		"# TYPE rolekeeper_roles_reload_success gauge\n" +
		"rolekeeper_roles_reload_success 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rolekeeper_roles_hash_info", "rolekeeper_roles_reload_success"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(e.app.reload.total.WithLabelValues("success")); got != 2 {
		t.Errorf("reload_total{success} = %v, want 2 (start and reload)", got)
	}
}

// TestReloadOnChange: the watcher reloads a changed file, once, and leaves
// a merely touched one alone.
func TestReloadOnChange(t *testing.T) {
	e := startApp(t)
	r := e.app.reload
	start := e.app.Roles().Get()

	if err := r.reload(false); err != nil || e.app.Roles().Get() != start {
		t.Fatalf("unchanged file reloaded: %v", err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(e.roles, future, future); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(false); err != nil || e.app.Roles().Get() != start {
		t.Fatalf("touched file reloaded: %v", err)
	}
	if err := os.WriteFile(e.roles, []byte("version: 1\nbad: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(false); err == nil {
		t.Fatal("changed bad file not tried")
	}
	if err := r.reload(false); err != nil {
		t.Fatalf("the same bad file tried again: %v", err)
	}
	if got := testutil.ToFloat64(r.total.WithLabelValues("failure")); got != 1 {
		t.Errorf("failures counted %v, want 1", got)
	}
}

func itoa(n int) string     { return strconv.Itoa(n) }
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// TestREADMEMetrics: every rolekeeper_* metric the running daemon exports
// is in the README's metrics table, with its type and labels.
func TestREADMEMetrics(t *testing.T) {
	e := startApp(t)
	push := fixtures.Read(t, "bitbucket/webhooks/repo_push__jenkins-bbs-signed.json")
	e.deliver("/webhooks/bitbucket", push, map[string]string{"X-Event-Key": "repo:push", "X-Request-UUID": "m-1", webhook.SignatureHeader: fixtureSig})
	waitFor(t, "the delivery processed", func() bool {
		_, body := e.get("/api/v1/deliveries?state=done", true)
		return strings.Contains(body, `"m-1"`)
	})
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // name → "type|labels"
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`rolekeeper_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		labels := strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(cells[3]), "`", ""), " ", "")
		rows[name] = strings.TrimSpace(cells[2]) + "|" + labels
	}
	fams, err := e.app.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "rolekeeper_") {
			continue
		}
		seen++
		var labels []string
		if len(f.GetMetric()) > 0 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		typ := strings.ToLower(f.GetType().String())
		doc, ok := rows[f.GetName()]
		if !ok {
			t.Errorf("%s is exported but not in the README", f.GetName())
			continue
		}
		docType, docLabels, _ := strings.Cut(doc, "|")
		if docType != typ || !sameSet(strings.Split(docLabels, ","), labels) {
			t.Errorf("%s: README says %s {%s}, exported %s %v", f.GetName(), docType, docLabels, typ, labels)
		}
	}
	if seen < 10 {
		t.Errorf("only %d rolekeeper_ families gathered", seen)
	}
}

func sameSet(a, b []string) bool {
	m := map[string]bool{}
	for _, x := range a {
		if x != "" {
			m[x] = true
		}
	}
	n := 0
	for _, x := range b {
		if !m[x] {
			return false
		}
		n++
	}
	return n == len(m)
}
