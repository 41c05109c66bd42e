package gatecli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the gate API from a script: the POST's answer, then one
// answer per GET (the last repeats).
type fakeAPI struct {
	mu    sync.Mutex
	post  []answer // tried in order (the last repeats)
	gets  []answer
	asked []map[string]any
	auth  []string
	nPost int
	nGet  int
}

type answer struct {
	code int
	body string
}

func gateJSON(state string, extra string) string {
	return `{"id":"g_1","state":"` + state + `","environment":"production","approvers":[{"account_id":"acc-bo","name":"Bo Lin"}],` +
		`"pull_requests":[7],"url":"https://rk.example/decisions/3","expires_at":"2026-11-24T09:00:00Z"` + extra + `}`
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	var a answer
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/gates":
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.asked = append(f.asked, body)
		a = f.post[min(f.nPost, len(f.post)-1)]
		f.nPost++
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/gates/g_1":
		a = f.gets[min(f.nGet, len(f.gets)-1)]
		f.nGet++
	default:
		a = answer{404, `{"error":"no such API endpoint"}`}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.code)
	io.WriteString(w, a.body)
}

type run struct {
	code        int
	out, errOut string
	sleeps      []time.Duration
}

func runCLI(t *testing.T, api *fakeAPI, vars map[string]string, args []string, cancelAt int) run {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	if vars == nil {
		vars = map[string]string{}
	}
	if _, ok := vars["ROLEKEEPER_URL"]; !ok {
		vars["ROLEKEEPER_URL"] = srv.URL
	}
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var r run
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.code = RunWith(ctx, args, &out, &errOut, func(k string) string { return vars[k] }, Options{
		Now: func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			r.sleeps = append(r.sleeps, d)
			now = now.Add(d)
			if len(r.sleeps) == cancelAt {
				cancel()
			}
			return ctx.Err()
		},
	})
	r.out, r.errOut = out.String(), errOut.String()
	return r
}

func pipelineVars() map[string]string {
	return map[string]string{
		"ROLEKEEPER_API_TOKEN":             "tok",
		"BITBUCKET_REPO_FULL_NAME":         "reloadly/payments-api",
		"BITBUCKET_COMMIT":                 "0123456789abcdef0123456789abcdef01234567",
		"BITBUCKET_DEPLOYMENT_ENVIRONMENT": "production",
		"BITBUCKET_PIPELINE_UUID":          "{9f2d}",
		"BITBUCKET_BUILD_NUMBER":           "318",
	}
}

func TestPipelineDefaults(t *testing.T) {
	api := &fakeAPI{post: []answer{{200, gateJSON("approved", `,"decided_by":"acc-bo","decided_by_name":"Bo Lin","reason":"ok"`)}}}
	r := runCLI(t, api, pipelineVars(), nil, 0)
	if r.code != ExitApproved || len(r.sleeps) != 0 {
		t.Fatalf("exit %d, sleeps %v\n%s%s", r.code, r.sleeps, r.out, r.errOut)
	}
	want := map[string]any{"repository": "reloadly/payments-api", "commit": "0123456789abcdef0123456789abcdef01234567",
		"environment": "production", "pipeline_uuid": "{9f2d}", "build_number": float64(318)}
	if len(api.asked) != 1 || !mapsEqual(api.asked[0], want) || api.auth[0] != "Bearer tok" {
		t.Errorf("asked %v with %q, want %v", api.asked, api.auth, want)
	}
	// Flags win over the environment.
	api = &fakeAPI{post: []answer{{200, gateJSON("approved", "")}}}
	runCLI(t, api, pipelineVars(), []string{"--environment", "staging", "--commit", strings.Repeat("abcdef12", 5)}, 0)
	if api.asked[0]["environment"] != "staging" || api.asked[0]["commit"] != strings.Repeat("abcdef12", 5) {
		t.Errorf("flags ignored: %v", api.asked[0])
	}
}

func mapsEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestWaiting(t *testing.T) {
	pending := answer{200, gateJSON("pending", "")}
	tests := []struct {
		name     string
		post     []answer
		gets     []answer
		args     []string
		cancelAt int
		code     int
		out      []string
		sleeps   []time.Duration // nil: not checked
	}{
		{name: "backs off while pending, then approved",
			post:   []answer{{201, gateJSON("pending", "")}},
			gets:   []answer{pending, pending, pending, pending, {200, gateJSON("approved", `,"decided_by":"acc-bo","decided_by_name":"Bo Lin","reason":"approved pull request #7"`)}},
			code:   ExitApproved,
			out:    []string{"is pending", "one of: Bo Lin", "pull request #7", `"/approve-deploy production"`, "https://rk.example/decisions/3", "approved by Bo Lin: approved pull request #7"},
			sleeps: []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second}},
		{name: "a poll that fails is retried",
			post: []answer{{201, gateJSON("pending", "")}},
			gets: []answer{{502, `{"error":"bitbucket: 503"}`}, {200, gateJSON("approved", `,"break_glass":true,"decided_by":"acc-raj","reason":"outage"`)}},
			code: ExitApproved, out: []string{"opened by a break-glass of acc-raj: outage"}},
		{name: "rejected",
			post: []answer{{201, gateJSON("pending", "")}},
			gets: []answer{{200, gateJSON("rejected", `,"decided_by":"acc-bo","decided_by_name":"Bo Lin","reason":"not today"`)}},
			code: ExitDenied, out: []string{"rejected by Bo Lin: not today"}},
		{name: "expired",
			post: []answer{{200, gateJSON("expired", `,"reason":"no eligible approval"`)}},
			code: ExitDenied, out: []string{"is expired: no eligible approval"}, sleeps: []time.Duration{}},
		{name: "times out, never sleeping past the deadline",
			post: []answer{{201, gateJSON("pending", "")}}, gets: []answer{pending},
			args: []string{"--wait", "40s"}, code: ExitDenied, out: []string{"timed out after 40s", "run the step again"},
			sleeps: []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 5 * time.Second}},
		{name: "--wait 0 asks once",
			post: []answer{{201, gateJSON("pending", "")}}, args: []string{"--wait", "0"}, code: ExitDenied,
			out: []string{"timed out"}, sleeps: []time.Duration{}},
		{name: "interrupted",
			post: []answer{{201, gateJSON("pending", "")}}, gets: []answer{pending}, cancelAt: 2,
			code: ExitDenied, out: []string{"interrupted"}},
		{name: "the gate vanished",
			post: []answer{{201, gateJSON("pending", "")}}, gets: []answer{{404, `{"error":"no such gate"}`}},
			code: ExitCannot},
		{name: "the server fails, then answers",
			post: []answer{{500, `{"error":"internal error; try again"}`}, {201, gateJSON("approved", "")}},
			code: ExitApproved},
		{name: "the server keeps failing",
			post: []answer{{503, "unavailable"}}, code: ExitCannot},
		{name: "refused",
			post: []answer{{422, `{"error":"unknown repository: reloadly/x is owned by no team in roles.yaml"}`}},
			code: ExitCannot, sleeps: []time.Duration{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{post: tt.post, gets: tt.gets}
			r := runCLI(t, api, pipelineVars(), tt.args, tt.cancelAt)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.out, r.errOut)
			}
			for _, w := range tt.out {
				if !strings.Contains(r.out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.out)
				}
			}
			if tt.sleeps != nil && !slices.Equal(r.sleeps, tt.sleeps) && !(len(tt.sleeps) == 0 && len(r.sleeps) == 0) {
				t.Errorf("slept %v, want %v", r.sleeps, tt.sleeps)
			}
			if tt.code == ExitCannot && r.errOut == "" {
				t.Errorf("exit 2 without a word on stderr")
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"help", map[string]string{}, []string{"--help"}, ExitApproved, "usage: rolekeeper gate"},
		{"nothing set", map[string]string{"ROLEKEEPER_URL": ""}, nil, ExitCannot, "missing --server"},
		{"bad flag", pipelineVars(), []string{"--wiat", "1m"}, ExitCannot, "flag provided but not defined"},
		{"bad build number", pipelineVars(), []string{"--build-number", "x"}, ExitCannot, "--build-number"},
		{"negative wait", pipelineVars(), []string{"--wait", "-1m"}, ExitCannot, "--wait"},
		{"repository without workspace", pipelineVars(), []string{"--repo", "payments-api"}, ExitCannot, "--repo"},
		{"short commit", pipelineVars(), []string{"--commit", "abc12"}, ExitCannot, "--commit"},
		{"12-hex commit, as payloads carry", pipelineVars(), []string{"--commit", "0123456789ab"}, ExitCannot, "40 hexadecimal"},
		{"39-hex commit", pipelineVars(), []string{"--commit", strings.Repeat("a", 39)}, ExitCannot, "40 hexadecimal"},
		{"41-hex commit", pipelineVars(), []string{"--commit", strings.Repeat("a", 41)}, ExitCannot, "40 hexadecimal"},
		{"short BITBUCKET_COMMIT", map[string]string{"ROLEKEEPER_URL": "http://x", "ROLEKEEPER_API_TOKEN": "tok",
			"BITBUCKET_REPO_FULL_NAME": "reloadly/payments-api", "BITBUCKET_COMMIT": "0123456",
			"BITBUCKET_DEPLOYMENT_ENVIRONMENT": "production"}, nil, ExitCannot, "--commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{post: []answer{{201, gateJSON("approved", "")}}}
			r := runCLI(t, api, tt.vars, tt.args, 0)
			if r.code != tt.code || !strings.Contains(r.errOut, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.errOut, tt.code, tt.stderr)
			}
			if tt.code == ExitCannot && api.nPost != 0 {
				t.Errorf("asked the server despite bad usage")
			}
		})
	}
}
