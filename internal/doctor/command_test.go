package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/jira/jiratest"
)

func TestCommand(t *testing.T) {
	e := newEnv(t, jiratest.Options{})
	good := filepath.Join(e.dir, "good.yaml")
	bad := filepath.Join(e.dir, "bad.yaml")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good, "public_url: https://rolekeeper.acme.example\nroles: roles.yaml\nstore: {driver: sqlite, dsn: data/rk.db}\n"+
		"bitbucket: {base_url: "+e.bb.URL()+"}\njira: {base_url: "+e.jira.URL()+"}\n")
	write(bad, "roles: roles.yaml\ncolour: blue\n")

	all := map[string]string{
		config.EnvBitbucketUsername:      bbUser,
		config.EnvBitbucketToken:         bbToken,
		config.EnvBitbucketWebhookSecret: bbHook,
		config.EnvJiraEmail:              jiraEmail,
		config.EnvJiraToken:              jiraToken,
		config.EnvJiraWebhookSecret:      jiraHook,
		config.EnvAPIToken:               apiToken,
		config.EnvAdminToken:             admToken,
	}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range all {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}

	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		stdout   []string
		stderr   []string
		noStdout bool
	}{
		{name: "all good", args: []string{"--config", good}, env: all, code: ExitOK,
			stdout: []string{"ok    bitbucket          authenticated with an API token", "0 warnings, 0 failed"}},
		{name: "a check fails", args: []string{"--config", good}, env: without(config.EnvBitbucketWebhookSecret), code: ExitFailed,
			stdout: []string{"FAIL  bitbucket webhook  ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET is not set", "1 failed"}},
		{name: "warnings only", args: []string{"--config", good, "--timeout", "5s"}, env: without(config.EnvAPIToken), code: ExitOK,
			stdout: []string{"warn  api token", "1 warning, 0 failed"}},
		{name: "config does not load", args: []string{"--config", bad}, env: all, code: ExitFailed,
			stdout: []string{"FAIL  config             " + bad + ":2:1:", "colour", "the configuration does not load: fix it first"}},
		{name: "config missing", args: []string{"--config", filepath.Join(e.dir, "none.yaml")}, env: all, code: ExitFailed,
			stdout: []string{"FAIL  config", "none.yaml: no such file or directory"}},
		{name: "help", args: []string{"-h"}, code: ExitOK, stderr: []string{"Usage: rolekeeper doctor [--config FILE]", "Exit status: 0 all ok or warnings only, 1 a check failed, 2 usage"}, noStdout: true},
		{name: "unknown flag", args: []string{"--colour"}, code: ExitUsage, stderr: []string{"flag provided but not defined: -colour"}, noStdout: true},
		{name: "an argument", args: []string{"--config", good, "extra"}, code: ExitUsage, stderr: []string{`unexpected argument "extra"`}, noStdout: true},
		{name: "bad timeout", args: []string{"--timeout", "0s"}, code: ExitUsage, stderr: []string{"--timeout must be positive"}, noStdout: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Command(context.Background(), tc.args, &stdout, &stderr, func(k string) string { return tc.env[k] })
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if tc.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout should be empty:\n%s", stdout.String())
			}
			for _, s := range secretValues {
				if strings.Contains(stdout.String()+stderr.String(), s) {
					t.Errorf("a secret (%q) is printed", s)
				}
			}
		})
	}
}

func TestInternalHost(t *testing.T) {
	cases := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"0.0.0.0", true},
		{"10.1.2.3", true},
		{"192.168.1.10", true},
		{"172.16.0.5", true},
		{"169.254.1.1", true},
		{"fd00::1", true},
		{"localhost", true},
		{"rolekeeper", true},
		{"rk-rolekeeper.ops.svc", true},
		{"rk-rolekeeper.ops.svc.cluster.local", true},
		{"build.internal", true},
		{"printer.local", true},
		{"rolekeeper.acme.example", false},
		{"203.0.113.7", false},
		{"2001:db8::1", false},
	}
	for _, tc := range cases {
		if got := internalHost(tc.host); got != tc.want {
			t.Errorf("internalHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	cases := []struct{ dsn, want string }{
		{"postgres://rk:s3cret@db:5432/rolekeeper?sslmode=require&password=x", "postgres://rk:xxxxx@db:5432/rolekeeper"},
		{"postgresql://rk@db/rolekeeper", "postgresql://rk@db/rolekeeper"},
		{"host=db user=rk password=s3cret dbname=rolekeeper", "host=db user=rk password=xxxxx dbname=rolekeeper"},
		{"host=db user=rk dbname=rolekeeper", "host=db user=rk dbname=rolekeeper"},
	}
	for _, tc := range cases {
		if got := redactDSN(tc.dsn); got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}
