package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		stderrNone bool
	}{
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage: rolekeeper", "serve", "validate", "explain", "version", "deliveries"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Commands:"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"rolekeeper ", "commit: ", "built: ", "go: go1."}},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"rolekeeper "}},
		{name: "version refuses arguments", args: []string{"version", "extra"}, code: 2},
		{name: "command help", args: []string{"validate", "-h"}, code: 0, stderr: []string{"--roles FILE | --config FILE"}},
		{name: "bad flag", args: []string{"validate", "--nope"}, code: 2},
		{name: "gate is dispatched", args: []string{"gate"}, code: 2, stderr: []string{"rolekeeper gate: missing"}},
		{name: "doctor is dispatched", args: []string{"doctor", "-h"}, code: 0, stderr: []string{"Usage: rolekeeper doctor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, nil, tt.args...)
			check(t, r, tt.code, tt.stdout, tt.stderr)
		})
	}
}

func check(t *testing.T, r result, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	goodCfg := writeFile(t, dir, "good.yaml", "roles: "+abs(t, "testdata/roles.yaml")+"\n")
	badCfg := writeFile(t, dir, "bad.yaml", "roles: roles.yaml\ntoken: x\nstore: {driver: mysql}\n")
	badRolesCfg := writeFile(t, dir, "badroles.yaml", "roles: "+abs(t, "testdata/roles_bad.yaml")+"\n")
	shipped, err := os.ReadFile("../../roles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The shipped file with break-glass following up with a role nobody declared.
	badGlass := strings.Replace(string(shipped), "follow_up: product-owner}", "follow_up: product-owners}", 1)
	if badGlass == string(shipped) {
		t.Fatal("the shipped roles.yaml has no break-glass follow_up")
	}
	badGlassFile := writeFile(t, dir, "glass.yaml", badGlass)
	// Where the error must point: the line of the follow_up, its column.
	before, _, _ := strings.Cut(badGlass, "follow_up: product-owners}")
	glassLine := strings.Count(before, "\n") + 1
	glassCol := len(before) - strings.LastIndex(before, "\n") + len("follow_up: ")
	glassErr := fmt.Sprintf(`glass.yaml:%d:%d: role cto: break-glass: follow_up: undefined role "product-owners"`, glassLine, glassCol)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
		lines  int // FILE:LINE:COL lines on stderr (-1: do not count)
	}{
		{"shipped roles.yaml", []string{"--roles", "../../roles.yaml"}, 0, []string{"valid"}, nil, -1},
		{"valid roles", []string{"--roles", "testdata/roles.yaml"}, 0, []string{"testdata/roles.yaml: valid: 2 roles, 1 teams, 3 people, 1 rules"}, nil, 0},
		{"warnings only", []string{"--roles", "testdata/roles_warning.yaml"}, 0, []string{"valid", "2 warnings"}, []string{"testdata/roles_warning.yaml:10:11: warning: "}, 2},
		{"invalid roles", []string{"--roles", "testdata/roles_bad.yaml"}, 1, nil, []string{
			`testdata/roles_bad.yaml:9:11: role technical-lead: unknown rule kind "code-reveiw"`,
			`testdata/roles_bad.yaml:16:13: person kofi: undefined role "technical-leed"`}, 2},
		{"missing roles file", []string{"--roles", "testdata/nope.yaml"}, 1, nil, []string{"nope.yaml"}, -1},
		{"break-glass naming an unknown role", []string{"--roles", badGlassFile}, 1, nil, []string{
			glassErr}, 1},
		{"config and its roles", []string{"--config", goodCfg}, 0, []string{goodCfg + ": valid", "roles.yaml: valid"}, nil, 0},
		{"bad config", []string{"--config", badCfg}, 1, nil, []string{badCfg + `:2:1: unknown key "token"`, badCfg + `:3:17: store.driver: "mysql"`}, 2},
		{"config naming bad roles", []string{"--config", badRolesCfg}, 1, nil, []string{"roles_bad.yaml:9:11: "}, 2},
		{"neither flag", nil, 2, nil, []string{"exactly one of --roles or --config"}, -1},
		{"both flags", []string{"--roles", "a", "--config", "b"}, 2, nil, nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, nil, append([]string{"validate"}, tt.args...)...)
			check(t, r, tt.code, tt.stdout, tt.stderr)
			if tt.lines >= 0 {
				n := 0
				for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
					if placeLine(l) {
						n++
					}
				}
				if n != tt.lines {
					t.Errorf("%d FILE:LINE:COL lines on stderr, want %d:\n%s", n, tt.lines, r.stderr)
				}
			}
		})
	}
}

// placeLine reports whether l starts with FILE:LINE:COL: .
func placeLine(l string) bool {
	parts := strings.SplitN(l, ":", 4)
	if len(parts) < 4 {
		return false
	}
	var a, b int
	_, err1 := fmt.Sscanf(parts[1], "%d", &a)
	_, err2 := fmt.Sscanf(parts[2], "%d", &b)
	return err1 == nil && err2 == nil && a > 0 && b > 0
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestExplain(t *testing.T) {
	base := []string{"explain", "--roles", "testdata/roles.yaml", "--repo", "Acme/Payments-API", "--at", "2026-11-02T09:00:00Z"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"text", append(base, "--author", "amara", "--files", "refunds/refund.go"), 0,
			[]string{"acme/payments-api", "team payments", "technical-lead/code-review", "rolekeeper-review"}, nil},
		{"author by account id, approved by a lead", append(base, "--author", "712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11", "--files", "a.go", "--approvals", "kofi"), 0,
			[]string{"technical-lead/code-review"}, nil},
		{"a lead who wrote commits is excluded and their approval ignored", append(base, "--author", "amara", "--files", "a.go", "--commit-authors", "kofi", "--approvals", "kofi"), 0,
			[]string{"excluded: Kofi", "wrote commits of this pull request", "ignored: approval by Kofi", "separation of duties"}, nil},
		{"repository of no team", []string{"explain", "--roles", "testdata/roles.yaml", "--repo", "acme/other", "--author", "amara", "--files", "a.go"}, 0,
			[]string{"acme/other"}, nil},
		{"built-in roles", []string{"explain", "--repo", "reloadly/payments-api", "--author", "someone", "--files", "src/main.go"}, 0,
			[]string{"reloadly/payments-api"}, nil},
		{"missing repo", []string{"explain", "--author", "amara"}, 2, nil, []string{"--repo WS/SLUG is required"}},
		{"bad time", append(base, "--author", "amara", "--at", "tomorrow"), 2, nil, []string{"RFC3339"}},
		{"bad format", append(base, "--author", "amara", "--format", "xml"), 2, nil, []string{"text or json"}},
		{"bad roles", []string{"explain", "--roles", "testdata/roles_bad.yaml", "--repo", "a/b", "--author", "x"}, 1, nil, []string{"roles_bad.yaml:9:11:"}},
		{"a Jira issue on the built-in roles", []string{"explain", "--issue", "PAY-12", "--status", "In Progress", "--points", "13", "--priority", "", "--at", "2026-11-23T09:00:00Z"}, 0,
			[]string{"PAY-12: team payments", "[finding] product-owner/backlog: PAY-12 has no priority", "[task] product-owner/analysis: PAY-12 is estimated at 13 points",
				"[finding] back-end-engineer/requirements", "finding requirements:PAY-12"}, nil},
		{"a Jira issue with acceptance criteria, prioritised", []string{"explain", "--issue", "PAY-13", "--status", "In Progress", "--description", "Acceptance criteria: pays", "--at", "2026-11-23T09:00:00Z"}, 0,
			[]string{"back-end-engineer/requirements: PAY-13 is in progress with acceptance criteria", "product-owner/backlog: PAY-13 is prioritised and triaged"}, nil},
		{"a bad issue key", []string{"explain", "--issue", "12"}, 2, nil, []string{"--issue must be an issue key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, runCmd(t, nil, tt.args...), tt.code, tt.stdout, tt.stderr)
		})
	}

	t.Run("json is the engine's decision", func(t *testing.T) {
		r := runCmd(t, nil, append(base, "--author", "amara", "--files", "refunds/refund.go", "--approvals", "mei", "--format", "json")...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var d rules.Decision
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatal(err)
		}
		if d.Repository != "acme/payments-api" || d.Team != "payments" || len(d.Rules) != 1 || !d.Rules[0].Triggered {
			t.Errorf("decision %+v", d)
		}
		if !d.ApprovalsMet {
			t.Errorf("mei's approval (a technical lead) should meet the rule: %+v", d.Rules[0])
		}
	})
}

// TestServe runs the daemon in-process on 127.0.0.1:0 and stops it with
// the context, as SIGTERM does.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rk.yaml", "listen: 127.0.0.1:0\nroles: "+abs(t, "testdata/roles.yaml")+
		"\nstore: {dsn: rk.db}\nschedule: {audit: \"\", weekly_report: \"\"}\nlog: {format: json, level: info}\n"+
		"bitbucket: {base_url: http://127.0.0.1:1/2.0}\n")

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stdout bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg}, &stdout, pw, func(string) string { return "" })
		pw.Close()
	}()

	addr := ""
	sc := bufio.NewScanner(pr)
	for addr == "" && sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "rolekeeper started" {
			addr = line.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no start line; exit %d", <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after a graceful stop", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "rk.db")); err != nil {
		t.Errorf("store not beside the config: %v", err)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "rk.yaml", "listen: nowhere\n")
	check(t, runCmd(t, nil, "serve", "--config", bad), 1, nil, []string{bad + ":1:9: listen:"})
	badRoles := writeFile(t, dir, "rk2.yaml", "listen: 127.0.0.1:0\nroles: "+abs(t, "testdata/roles_bad.yaml")+"\nstore: {dsn: rk.db}\nlog: {format: json}\n")
	check(t, runCmd(t, nil, "serve", "--config", badRoles), 1, nil, []string{"roles_bad.yaml:9:11:"})
}

func TestDeliveries(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rk.yaml", "store: {dsn: rk.db}\nroles: "+abs(t, "testdata/roles.yaml")+"\n")
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"d-1", "d-2"} {
		if _, err := st.Enqueue(context.Background(), &store.Delivery{Source: model.SourceBitbucket, DeliveryID: id, EventKey: "repo:push", Body: []byte("{}"), ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := st.Claim(context.Background(), store.ClaimRequest{Worker: "t", Now: now, Lease: time.Minute, Limit: 1})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	dead := claimed[0].Seq
	if err := st.Bury(context.Background(), store.ClaimOf(claimed[0]), now, "no team owns acme/x"); err != nil {
		t.Fatal(err)
	}
	seq := fmt.Sprint(dead)

	// The API path: a server on the same store.
	srv := server.New(server.Options{Store: st, APIToken: "tok", AdminToken: "admin-tok", Redrive: func(ctx context.Context, s int64) error {
		return st.Redrive(ctx, s, time.Now())
	}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	env := map[string]string{"ROLEKEEPER_ADMIN_TOKEN": "admin-tok", "ROLEKEEPER_API_TOKEN": "tok"}
	pipelineOnly := map[string]string{"ROLEKEEPER_API_TOKEN": "tok"}
	wrongAdmin := map[string]string{"ROLEKEEPER_ADMIN_TOKEN": "nope"}

	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"list via the store", nil, []string{"list", "--config", cfg}, 0, []string{"SEQ", "d-1", "no team owns acme/x"}, nil},
		{"list json via the API", env, []string{"list", "--server", ts.URL, "--format", "json"}, 0, []string{`"delivery_id": "d-1"`, `"state": "dead"`}, nil},
		{"API without the token", nil, []string{"list", "--server", ts.URL}, 1, nil, []string{"401", "ROLEKEEPER_ADMIN_TOKEN is not set"}},
		{"API with the pipelines' token only", pipelineOnly, []string{"list", "--server", ts.URL}, 1, nil,
			[]string{"403", "only ROLEKEEPER_API_TOKEN is set", "deliveries need ROLEKEEPER_ADMIN_TOKEN"}},
		{"API with a wrong admin token", wrongAdmin, []string{"list", "--server", ts.URL}, 1, nil, []string{"401", "the server refused ROLEKEEPER_ADMIN_TOKEN"}},
		{"redrive with the pipelines' token only", pipelineOnly, []string{"redrive", "--server", ts.URL, seq}, 1, nil, []string{"403", "deliveries need ROLEKEEPER_ADMIN_TOKEN"}},
		{"redrive via the API", env, []string{"redrive", "--server", ts.URL, seq}, 0, []string{seq + ": pending again"}, nil},
		{"redrive again: not dead", nil, []string{"redrive", "--config", cfg, seq}, 1, nil, []string{"no dead delivery"}},
		{"pending now", nil, []string{"list", "--config", cfg, "--state", "pending"}, 0, []string{"d-1", "d-2"}, nil},
		{"no subcommand", nil, nil, 2, nil, []string{"Usage: rolekeeper deliveries"}},
		{"no target", nil, []string{"list"}, 2, nil, []string{"exactly one of --server or --config"}},
		{"redrive without seq", nil, []string{"redrive", "--config", cfg}, 2, nil, []string{"at least one SEQ"}},
		{"redrive bad seq", nil, []string{"redrive", "--config", cfg, "x"}, 2, nil, []string{`"x" is not a delivery number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, runCmd(t, tt.env, append([]string{"deliveries"}, tt.args...)...), tt.code, tt.stdout, tt.stderr)
		})
	}
}
