package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/apiauth"
	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/gate/gatecli"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

const (
	apiToken   = "s3cret-token" // the pipeline's ROLEKEEPER_API_TOKEN
	adminToken = "4dmin-token"  // ROLEKEEPER_ADMIN_TOKEN
)

// bearer stands in for the server's authentication in front of /api/: it
// puts the token's scope in the context, and (unlike the server) lets the
// pipeline token reach break-glass, so that the handler's own check is
// what these tests exercise.
func bearer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var scope apiauth.Scope
		switch r.Header.Get("Authorization") {
		case "Bearer " + apiToken:
			scope = apiauth.ScopePipeline
		case "Bearer " + adminToken:
			scope = apiauth.ScopeAdmin
		default:
			writeErr(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r.WithContext(apiauth.WithScope(r.Context(), scope)))
	})
}

// e2e is rolekeeper's gate API on loopback, over SQLite, talking to a fake
// Bitbucket Cloud through the real client.
type e2e struct {
	bb     *bitbuckettest.Server
	client *bitbucket.Client
	st     *sqlite.Store
	svc    *Service
	api    *httptest.Server
	clk    *clock
	fu     *followUps
	user   map[string]model.Actor
}

func startE2E(t *testing.T) *e2e { t.Helper(); return startE2EOrg(t, orgYAML) }

// startE2EOrg starts it with another roles.yaml.
func startE2EOrg(t *testing.T, rolesYAML string) *e2e {
	t.Helper()
	org, err := roles.ParseAt("roles.yaml", []byte(rolesYAML), t0)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{clk: &clock{t: t0}, fu: &followUps{}, user: map[string]model.Actor{}}
	e.bb = bitbuckettest.New()
	t.Cleanup(e.bb.Close)
	e.bb.SetClock(e.clk.now)
	e.bb.RequireAuth("bot@example.com", "api-token")
	for _, p := range org.People {
		e.user[p.ID] = e.bb.AddUser(model.Actor{AccountID: p.AccountID, DisplayName: p.Name})
	}
	client, err := bitbucket.New(bitbucket.Options{BaseURL: e.bb.URL(), Username: "bot@example.com", Token: "api-token",
		MaxRetries: 1, Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	e.st = openStore(t)
	e.client = client
	e.svc = New(Options{Host: client, Store: e.st, Roles: roles.NewCurrent(org), FollowUps: e.fu,
		PublicURL: "https://rk.example", Now: e.clk.now})
	e.api = httptest.NewServer(bearer(Handler(e.svc)))
	t.Cleanup(e.api.Close)
	return e
}

// merged adds a pull request by author, approved by approvers before the
// merge, merged as mergeCommit.
func (e *e2e) merged(t *testing.T, author string, mergeCommit string, approvers ...string) int {
	t.Helper()
	id := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Change by " + author, Author: e.user[author],
		Files: []model.ChangedFile{{Path: "refunds.go", Status: model.FileAdded}}})
	e.clk.add(time.Second) // approvals come after the last push
	for _, a := range approvers {
		if err := e.bb.Approve(testRepo, id, e.user[a]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.bb.Merge(testRepo, id, e.user[author], mergeCommit); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *e2e) call(t *testing.T, method, path, body, token string) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d %q is not a JSON object", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, raw
}

func askBody(commit, env string) string {
	return `{"repository":"reloadly/payments-api","commit":"` + commit + `","environment":"` + env + `","pipeline_uuid":"{4b1c}","build_number":42}`
}

// deliver hands a webhook, rendered by the fake and parsed by the real
// parser, to the gate.
func (e *e2e) deliver(t *testing.T, key string, body []byte) {
	t.Helper()
	ev, err := bitbucket.ParseWebhook(key, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func (e *e2e) gateCount(t *testing.T) int {
	gs, err := e.st.ListGates(context.Background(), store.GateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(gs)
}

func TestEndToEndAPI(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()

	t.Run("an approval already on the merged pull request opens the gate at once", func(t *testing.T) {
		m := hex40(101)
		e.merged(t, "mei", m, "ana")
		code, g, raw := e.call(t, "POST", "/api/v1/gates", askBody(m, "production"), apiToken)
		if code != http.StatusCreated || g["state"] != "approved" || g["decided_by"] != "acc-ana" || g["decided_at"] == nil || g["reason"] == "" {
			t.Fatalf("POST = %d %s", code, raw)
		}
		code, again, raw2 := e.call(t, "POST", "/api/v1/gates", askBody(m, "production"), apiToken)
		if code != http.StatusOK || !reflect.DeepEqual(g, again) {
			t.Errorf("asking again = %d\n%s\nfirst\n%s", code, raw2, raw)
		}
		if st := e.bb.Statuses(testRepo, m)["rolekeeper-deploy-production"]; st.State != "SUCCESSFUL" || !strings.HasPrefix(st.URL, "https://rk.example/decisions/") {
			t.Errorf("status = %+v", st)
		}
	})

	m := hex40(102)
	pr := e.merged(t, "ana", m, "mei") // a product owner's own change, approved by a lead
	var id string
	t.Run("a product owner's own change waits for the other", func(t *testing.T) {
		code, g, raw := e.call(t, "POST", "/api/v1/gates", askBody(m, "production"), apiToken)
		if code != http.StatusCreated || g["state"] != "pending" {
			t.Fatalf("POST = %d %s", code, raw)
		}
		id = g["id"].(string)
		approvers, _ := json.Marshal(g["approvers"])
		if string(approvers) != `[{"account_id":"acc-bo","name":"Bo Lin"}]` || !strings.HasPrefix(g["url"].(string), "https://rk.example/decisions/") ||
			g["api_url"] != "https://rk.example/api/v1/gates/"+id {
			t.Errorf("approvers %s, url %v, api_url %v", approvers, g["url"], g["api_url"])
		}
		cs := e.bb.Comments(testRepo, pr)
		if len(cs) != 1 || !strings.Contains(cs[0].Body, "@{acc-bo}") || strings.Contains(cs[0].Body, "@{acc-ana}") {
			t.Fatalf("comments = %+v", cs)
		}
		if st := e.bb.Statuses(testRepo, m)["rolekeeper-deploy-production"]; st.State != "INPROGRESS" {
			t.Errorf("status = %+v", st)
		}
		code, again, _ := e.call(t, "POST", "/api/v1/gates", askBody(m, "production"), apiToken)
		if code != http.StatusOK || !reflect.DeepEqual(g, again) || len(e.bb.Comments(testRepo, pr)) != 1 {
			t.Errorf("asking again = %d %v", code, again)
		}
	})

	t.Run("a lead's /approve-deploy is refused once, with the reason", func(t *testing.T) {
		e.clk.add(time.Minute)
		cid := e.bb.AddComment(testRepo, pr, e.user["mei"], "/approve-deploy production")
		e.deliver(t, "pullrequest:comment_created", e.bb.WebhookCommentBody(testRepo, pr, cid))
		e.clk.add(time.Minute)
		_, g, _ := e.call(t, "GET", "/api/v1/gates/"+id, "", apiToken)
		if g["state"] != "pending" {
			t.Fatalf("GET = %v", g)
		}
		var replies []string
		for _, c := range e.bb.Comments(testRepo, pr) {
			if strings.Contains(c.Body, "changes nothing") {
				replies = append(replies, c.Body)
			}
		}
		if len(replies) != 1 || !strings.Contains(replies[0], "@{acc-mei}") || !strings.Contains(replies[0], "product-owner") {
			t.Errorf("replies = %q", replies)
		}
		// The reply mentions her by account id (Bitbucket needs it to
		// notify) and names her, by name, in the reason.
		if len(replies) == 1 && (strings.Count(replies[0], "acc-mei") != 1 || !strings.Contains(replies[0], "changes nothing: Mei Chen does not hold product-owner")) {
			t.Errorf("reply does not name the person: %q", replies[0])
		}
	})

	t.Run("the other product owner's /approve-deploy opens it; GET shows who, when, why", func(t *testing.T) {
		e.clk.add(time.Minute)
		e.bb.AddComment(testRepo, pr, e.user["bo"], "Dashboards are green.\n/approve-deploy production")
		e.clk.add(time.Minute) // no webhook this time: polling finds it
		code, g, raw := e.call(t, "GET", "/api/v1/gates/"+id, "", apiToken)
		if code != http.StatusOK || g["state"] != "approved" || g["decided_by"] != "acc-bo" || g["decided_by_name"] != "Bo Lin" ||
			g["decided_at"] == nil || !strings.Contains(g["reason"].(string), "approved by comment") {
			t.Fatalf("GET = %d %s", code, raw)
		}
		if st := e.bb.Statuses(testRepo, m)["rolekeeper-deploy-production"]; st.State != "SUCCESSFUL" {
			t.Errorf("status = %+v", st)
		}
		ds, _ := e.st.ListDecisions(ctx, store.DecisionFilter{Kind: model.SubjectGate, Repository: testRepo})
		found := false
		for _, d := range ds {
			found = found || (d.Trigger == "gate.approved" && strings.Contains(d.Summary, id) && strings.Contains(d.Summary, "Bo Lin"))
		}
		if !found {
			t.Errorf("no approval decision recorded: %+v", ds)
		}
	})

	t.Run("bad input: a clear 4xx and nothing stored", func(t *testing.T) {
		gates, calls := e.gateCount(t), e.bb.TotalCalls()
		for _, tt := range []struct {
			method, path, body, token string
			code                      int
		}{
			{"POST", "/api/v1/gates", askBody(m, "production"), "", 401},
			{"POST", "/api/v1/gates", askBody(m, "production"), "wrong", 401},
			{"POST", "/api/v1/gates", strings.Replace(askBody(m, "production"), "payments-api", "unknown", 1), apiToken, 422},
			{"POST", "/api/v1/gates", askBody("not-hex", "production"), apiToken, 400},
			{"POST", "/api/v1/gates", askBody(m[:6], "production"), apiToken, 400},
			{"POST", "/api/v1/gates", askBody(m, "pro duction"), apiToken, 400},
			{"POST", "/api/v1/gates", askBody(m, strings.Repeat("x", 65)), apiToken, 400},
			{"POST", "/api/v1/gates", `{"repository":`, apiToken, 400},
			{"POST", "/api/v1/gates", `{"repository":"reloadly/payments-api"} {}`, apiToken, 400},
			{"POST", "/api/v1/gates", `{"commit":"` + strings.Repeat("a", 70000) + `"}`, apiToken, 413},
			{"GET", "/api/v1/gates/g_nope", "", apiToken, 404},
			{"POST", "/api/v1/gates/g_nope/break-glass", `{"reason":"x","by":"acc-raj"}`, adminToken, 404},
			{"POST", "/api/v1/gates", askBody(m[:12], "production"), apiToken, 400}, // the short hash payloads carry
			{"POST", "/api/v1/gates", askBody(m[:39], "production"), apiToken, 400},
			{"POST", "/api/v1/gates", askBody(m, "staging"), apiToken, 422}, // no rule lists it
		} {
			code, out, raw := e.call(t, tt.method, tt.path, tt.body, tt.token)
			if code != tt.code || out["error"] == nil || out["error"] == "" {
				t.Errorf("%s %s %.60s = %d %s, want %d with an error", tt.method, tt.path, tt.body, code, raw, tt.code)
			}
		}
		if e.gateCount(t) != gates || e.bb.TotalCalls() != calls {
			t.Errorf("bad input stored %d gates, made %d Bitbucket calls", e.gateCount(t)-gates, e.bb.TotalCalls()-calls)
		}
	})

	t.Run("break-glass by the CTO, reported and followed up", func(t *testing.T) {
		m3 := hex40(103)
		e.merged(t, "tom", m3)
		_, g, _ := e.call(t, "POST", "/api/v1/gates", askBody(m3, "production"), apiToken)
		gid := g["id"].(string)
		for _, tt := range []struct {
			body string
			code int
		}{
			{`{"reason":"hurry","by":"acc-bo"}`, 403},
			{`{"reason":"","by":"acc-raj"}`, 400},
			{`{"reason":"x","by":"acc-raj","extra":`, 400},
		} {
			if code, out, _ := e.call(t, "POST", "/api/v1/gates/"+gid+"/break-glass", tt.body, adminToken); code != tt.code {
				t.Errorf("break-glass %s = %d %v, want %d", tt.body, code, out, tt.code)
			}
		}
		e.clk.add(time.Minute)
		code, g, raw := e.call(t, "POST", "/api/v1/gates/"+gid+"/break-glass", `{"reason":"payments are down","by":"acc-raj"}`, adminToken)
		if code != http.StatusOK || g["state"] != "approved" || g["break_glass"] != true || g["decided_by"] != AdminToken ||
			g["reason"] != "via admin token, naming Raj Patel: payments are down" || g["break_glass_via"] != "admin-token" {
			t.Fatalf("break-glass = %d %s", code, raw)
		}
		if g["follow_up"] != "PAY-41" || len(e.fu.created) != 1 || !strings.HasPrefix(e.fu.created[0], "PAY|acc-ana|") {
			t.Errorf("follow-up %v, created %q", g["follow_up"], e.fu.created)
		}
		if code, _, _ := e.call(t, "POST", "/api/v1/gates/"+gid+"/break-glass", `{"reason":"again","by":"acc-raj"}`, adminToken); code != http.StatusConflict {
			t.Errorf("second break-glass = %d", code)
		}
		f, _ := e.st.ListFindings(ctx, store.FindingFilter{Kind: "break-glass"})
		if len(f) != 1 || f[0].Key != "break-glass:"+gid {
			t.Errorf("findings = %+v", f)
		}
	})

	t.Run("rejected, then expired, then asked again", func(t *testing.T) {
		m4 := hex40(104)
		pr4 := e.merged(t, "tom", m4)
		_, g, _ := e.call(t, "POST", "/api/v1/gates", askBody(m4, "production"), apiToken)
		e.clk.add(time.Minute)
		cid := e.bb.AddComment(testRepo, pr4, e.user["bo"], "/reject-deploy production wait for the migration")
		e.deliver(t, "pullrequest:comment_created", e.bb.WebhookCommentBody(testRepo, pr4, cid))
		_, g, _ = e.call(t, "GET", "/api/v1/gates/"+g["id"].(string), "", apiToken)
		if g["state"] != "rejected" || g["reason"] != "wait for the migration" {
			t.Fatalf("rejected: %v", g)
		}
		if st := e.bb.Statuses(testRepo, m4)["rolekeeper-deploy-production"]; st.State != "FAILED" {
			t.Errorf("status = %+v", st)
		}
		code, g2, _ := e.call(t, "POST", "/api/v1/gates", askBody(m4, "production"), apiToken)
		if code != http.StatusCreated || g2["id"] == g["id"] || g2["state"] != "pending" {
			t.Fatalf("asked again = %d %v", code, g2)
		}
		e.clk.add(25 * time.Hour)
		_, g2, _ = e.call(t, "GET", "/api/v1/gates/"+g2["id"].(string), "", apiToken)
		if g2["state"] != "expired" || g2["decided_by"] != Automatic {
			t.Errorf("expired: %v", g2)
		}
	})

	t.Run("a branch build: approving the open pull request by webhook", func(t *testing.T) {
		head := hex40(105)
		pr5 := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Hotfix", Author: e.user["mei"], SourceCommit: head})
		_, g, _ := e.call(t, "POST", "/api/v1/gates", askBody(head, "production"), apiToken)
		if g["state"] != "pending" {
			t.Fatalf("gate = %v", g)
		}
		e.clk.add(time.Minute)
		if err := e.bb.Approve(testRepo, pr5, e.user["bo"]); err != nil {
			t.Fatal(err)
		}
		e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, pr5, e.user["bo"]))
		gate, err := e.st.GetGate(ctx, g["id"].(string))
		if err != nil || gate.State != store.GateApproved || gate.DecidedBy != "acc-bo" {
			t.Errorf("after the approval webhook: %+v %v", gate, err)
		}
	})
}

func TestEndToEndCLI(t *testing.T) {
	e := startE2E(t)
	pipeline := func(commit string) map[string]string {
		return map[string]string{
			"ROLEKEEPER_URL":                   e.api.URL,
			"ROLEKEEPER_API_TOKEN":             apiToken,
			"BITBUCKET_REPO_FULL_NAME":         "reloadly/payments-api",
			"BITBUCKET_COMMIT":                 commit,
			"BITBUCKET_DEPLOYMENT_ENVIRONMENT": "production",
			"BITBUCKET_PIPELINE_UUID":          "{9f2d}",
			"BITBUCKET_BUILD_NUMBER":           "318",
		}
	}
	run := func(vars map[string]string, args []string, onPoll func(n int)) (int, string, string) {
		var out, errOut bytes.Buffer
		polls := 0
		code := gatecli.RunWith(context.Background(), args, &out, &errOut, func(k string) string { return vars[k] }, gatecli.Options{
			Now: e.clk.now,
			Sleep: func(_ context.Context, d time.Duration) error {
				polls++
				e.clk.add(d)
				if onPoll != nil {
					onPoll(polls)
				}
				return nil
			},
		})
		return code, out.String(), errOut.String()
	}

	t.Run("waits, then a product owner approves", func(t *testing.T) {
		m := hex40(201)
		pr := e.merged(t, "ana", m)
		code, out, errOut := run(pipeline(m), []string{"--wait", "1h"}, func(n int) {
			if n == 3 {
				e.bb.AddComment(testRepo, pr, e.user["bo"], "/approve-deploy production")
			}
		})
		if code != gatecli.ExitApproved {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		for _, want := range []string{"is pending", "waiting for an approval from one of: Bo Lin", "pull request #" + strconv.Itoa(pr),
			`"/approve-deploy production"`, "details: https://rk.example/decisions/", "approved by Bo Lin"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		gs, _ := e.st.ListGates(context.Background(), store.GateFilter{})
		if g := gs[len(gs)-1]; g.PipelineUUID != "{9f2d}" || g.BuildNumber != 318 {
			t.Errorf("pipeline defaults not sent: %+v", g)
		}
		// Running the step again finds the approved gate: exit 0 at once.
		code, out, _ = run(pipeline(m), nil, func(int) { t.Error("slept for an approved gate") })
		if code != gatecli.ExitApproved || !strings.Contains(out, "approved by Bo Lin") {
			t.Errorf("rerun: exit %d\n%s", code, out)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		m := hex40(202)
		pr := e.merged(t, "tom", m)
		code, out, _ := run(pipeline(m), []string{"--wait", "30m"}, func(n int) {
			if n == 1 {
				e.bb.AddComment(testRepo, pr, e.user["ana"], "/reject-deploy production not during the sale")
			}
		})
		if code != gatecli.ExitDenied || !strings.Contains(out, "rejected by Ana Souza: not during the sale") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("times out", func(t *testing.T) {
		m := hex40(203)
		e.merged(t, "tom", m)
		code, out, _ := run(pipeline(m), []string{"--wait", "2m"}, nil)
		if code != gatecli.ExitDenied || !strings.Contains(out, "timed out after 2m0s") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	t.Run("could not ask", func(t *testing.T) {
		m := hex40(204)
		e.merged(t, "tom", m)
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		gates := e.gateCount(t)
		for name, tt := range map[string]struct {
			unset, set string
			args       []string
			stderr     string
		}{
			"no token":              {unset: "ROLEKEEPER_API_TOKEN", stderr: "missing ROLEKEEPER_API_TOKEN"},
			"wrong token":           {set: "ROLEKEEPER_API_TOKEN=nope", stderr: "401"},
			"no environment":        {unset: "BITBUCKET_DEPLOYMENT_ENVIRONMENT", stderr: "missing --environment"},
			"unknown repository":    {args: []string{"--repo", "reloadly/unknown"}, stderr: "422"},
			"malformed environment": {args: []string{"--environment", "prod/eu"}, stderr: "--environment"},
			"unknown environment":   {args: []string{"--environment", "prodution"}, stderr: "422"},
			"malformed commit":      {args: []string{"--commit", "HEAD"}, stderr: "--commit"},
			"short commit":          {args: []string{"--commit", m[:12]}, stderr: "40 hexadecimal"},
			"server down":           {args: []string{"--server", down.URL}, stderr: "could not ask"},
			"stray argument":        {args: []string{"now"}, stderr: "unexpected"},
		} {
			vars := pipeline(m)
			delete(vars, tt.unset)
			if k, v, ok := strings.Cut(tt.set, "="); ok {
				vars[k] = v
			}
			code, out, errOut := run(vars, tt.args, nil)
			if code != gatecli.ExitCannot || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("%s: exit %d, stderr %q (want 2 and %q); stdout %q", name, code, errOut, tt.stderr, out)
			}
		}
		if e.gateCount(t) != gates {
			t.Errorf("could-not-ask runs stored %d gates", e.gateCount(t)-gates)
		}
	})
}
