package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/gate/gatecli"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// The walk-arounds of issue 11, end to end: the gate API on loopback over
// SQLite, the real client, the shared fake Bitbucket and webhooks rendered
// by it. Each shows the walk-around fails and the honest path still works.

func (e *e2e) gate(t *testing.T, id string) map[string]any {
	t.Helper()
	code, g, raw := e.call(t, "GET", "/api/v1/gates/"+id, "", apiToken)
	if code != http.StatusOK {
		t.Fatalf("GET gate %s = %d %s", id, code, raw)
	}
	return g
}

func (e *e2e) ask(t *testing.T, commit, env string) map[string]any {
	t.Helper()
	code, g, raw := e.call(t, "POST", "/api/v1/gates", askBody(commit, env), apiToken)
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST gate %s %s = %d %s", short(commit), env, code, raw)
	}
	return g
}

func (e *e2e) findings(t *testing.T) int {
	t.Helper()
	f, err := e.st.ListFindings(context.Background(), store.FindingFilter{Kind: "break-glass"})
	if err != nil {
		t.Fatal(err)
	}
	return len(f)
}

func (e *e2e) decisions(t *testing.T, gateID string) []string {
	t.Helper()
	ds, err := e.st.ListDecisions(context.Background(), store.DecisionFilter{Kind: model.SubjectGate, Repository: testRepo})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		if strings.Contains(d.Summary, gateID) {
			out = append(out, d.Trigger+": "+d.Summary)
		}
	}
	return out
}

// approveAgain withdraws who's approval of pull request pr and gives it
// again, a minute apart each (a person approving what is there now), and
// delivers the approval webhook.
func (e *e2e) approveAgain(t *testing.T, pr int, who string) {
	t.Helper()
	e.clk.add(time.Minute)
	if err := e.bb.Unapprove(testRepo, pr, e.user[who]); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user[who]); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, pr, e.user[who]))
}

func historyHas(g map[string]any, what string) bool {
	raw, _ := json.Marshal(g["history"])
	return strings.Contains(string(raw), what)
}

func TestWalkAroundBreakGlassByClaim(t *testing.T) {
	e := startE2E(t)
	m := hex40(301)
	pr := e.merged(t, "tom", m)
	g := e.ask(t, m, "production")
	id := g["id"].(string)

	// Anyone who can edit bitbucket-pipelines.yml holds the pipeline token:
	// claiming to be the CTO through the API changes nothing at all.
	e.clk.add(time.Minute)
	findings, calls := e.findings(t), e.bb.TotalCalls()
	code, out, raw := e.call(t, "POST", "/api/v1/gates/"+id+"/break-glass", `{"reason":"hotfix","by":"acc-raj"}`, apiToken)
	if code != http.StatusForbidden || !strings.Contains(out["error"].(string), "admin token") {
		t.Fatalf("break-glass with the pipeline token = %d %s", code, raw)
	}
	if g = e.gate(t, id); g["state"] != "pending" || g["break_glass"] != false || historyHas(g, "break-glass") {
		t.Fatalf("the claim moved the gate: %v", g)
	}
	if e.findings(t) != findings || len(e.fu.created) != 0 || len(e.decisions(t, id)) != 1 || e.bb.TotalCalls()-calls > 3 {
		t.Errorf("the claim left traces: %d findings, follow-ups %q, decisions %q", e.findings(t)-findings, e.fu.created, e.decisions(t, id))
	}
	if st := e.bb.Statuses(testRepo, m)["rolekeeper-deploy-production"]; st.State != "INPROGRESS" {
		t.Errorf("status = %+v", st)
	}

	// A product owner's /break-glass, and a webhook claiming the CTO wrote
	// it: the author is read back from Bitbucket, so nothing opens.
	e.clk.add(time.Minute)
	cid := e.bb.AddComment(testRepo, pr, e.user["bo"], "/break-glass production trust me")
	body := e.bb.WebhookCommentBody(testRepo, pr, cid)
	forged := bytes.ReplaceAll(body, []byte(`"acc-bo"`), []byte(`"acc-raj"`))
	forged = bytes.ReplaceAll(forged, []byte(`"Bo Lin"`), []byte(`"Raj Patel"`))
	if bytes.Equal(forged, body) {
		t.Fatal("the forged body names the same author")
	}
	e.deliver(t, "pullrequest:comment_created", forged)
	if g = e.gate(t, id); g["state"] != "pending" {
		t.Fatalf("a relabelled comment author opened the gate: %v", g)
	}

	// The honest paths. The CTO's comment, which Bitbucket authenticates:
	e.clk.add(time.Minute)
	cid = e.bb.AddComment(testRepo, pr, e.user["raj"], "/break-glass production payments are down")
	e.deliver(t, "pullrequest:comment_created", e.bb.WebhookCommentBody(testRepo, pr, cid))
	g = e.gate(t, id)
	if g["state"] != "approved" || g["decided_by"] != "acc-raj" || g["break_glass_via"] != "comment" || g["reason"] != "payments are down" {
		t.Fatalf("the CTO's comment: %v", g)
	}
	if st := e.bb.Statuses(testRepo, m)["rolekeeper-deploy-production"]; st.State != "SUCCESSFUL" || !strings.HasPrefix(st.Description, "break-glass by Raj Patel") {
		t.Errorf("status = %+v", st)
	}

	// The admin token, naming the CTO: recorded as the token's act.
	m2 := hex40(302)
	e.merged(t, "tom", m2)
	id2 := e.ask(t, m2, "production")["id"].(string)
	e.clk.add(time.Minute)
	code, g, raw = e.call(t, "POST", "/api/v1/gates/"+id2+"/break-glass", `{"reason":"payments are down","by":"acc-raj"}`, adminToken)
	names, _ := json.Marshal(g["break_glass_names"])
	if code != http.StatusOK || g["state"] != "approved" || g["decided_by"] != AdminToken || g["break_glass_via"] != "admin-token" ||
		string(names) != `{"account_id":"acc-raj","name":"Raj Patel"}` || g["reason"] != "via admin token, naming Raj Patel: payments are down" {
		t.Fatalf("admin break-glass = %d %s", code, raw)
	}
	st := e.bb.Statuses(testRepo, m2)["rolekeeper-deploy-production"]
	if st.State != "SUCCESSFUL" || st.Description != "break-glass via admin token, naming Raj Patel: payments are down" {
		t.Errorf("status = %+v", st)
	}
	if len(e.fu.created) != 2 || strings.Contains(e.fu.created[1], "by Raj") {
		t.Errorf("follow-ups = %q", e.fu.created)
	}
	if ds := e.decisions(t, id2); len(ds) != 2 || !strings.Contains(ds[1], "opened by break-glass via admin token, naming Raj Patel") {
		t.Errorf("decisions = %q", ds)
	}
}

func TestWalkAroundStaleApproval(t *testing.T) {
	e := startE2E(t)
	a, b := hex40(311), hex40(312)
	pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Refunds", Author: e.user["mei"], SourceCommit: a})
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil { // Bo approves commit A
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	if err := e.bb.PushCommit(testRepo, pr, b, nil); err != nil { // Mei pushes B; Bitbucket keeps the approval
		t.Fatal(err)
	}
	e.clk.add(time.Minute)

	// A branch build of B: the approval of A does not open it.
	g := e.ask(t, b, "production")
	id := g["id"].(string)
	if g["state"] != "pending" || !historyHas(g, "before the last push") {
		t.Fatalf("the gate for B opened on the approval of A: %v", g)
	}
	e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, pr, e.user["bo"]))
	if g = e.gate(t, id); g["state"] != "pending" {
		t.Fatalf("a replayed approval event opened it: %v", g)
	}
	// Bo looks at B and approves again: it opens.
	e.approveAgain(t, pr, "bo")
	if g = e.gate(t, id); g["state"] != "approved" || g["decided_by"] != "acc-bo" {
		t.Fatalf("a fresh approval of B: %v", g)
	}
}

func TestWalkAroundPushOntoColleaguesBranch(t *testing.T) {
	e := startE2E(t)
	head, bos, merge := hex40(321), hex40(322), hex40(323)
	pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Checkout", Author: e.user["mei"], SourceCommit: head})
	e.clk.add(time.Minute)
	e.pushAs(t, pr, "bo", bos) // Bo, a product owner, pushes his own code onto Mei's branch
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	if err := e.bb.Merge(testRepo, pr, e.user["mei"], merge); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	g := e.ask(t, merge, "production")
	id := g["id"].(string)
	excluded, _ := json.Marshal(g["excluded"])
	approvers, _ := json.Marshal(g["approvers"])
	if g["state"] != "pending" || !strings.Contains(string(excluded), `"acc-bo"`) ||
		!strings.Contains(string(excluded), "Bo Lin authored commit "+short(bos)+" of pull request") ||
		string(approvers) != `[{"account_id":"acc-ana","name":"Ana Souza"}]` {
		t.Fatalf("Bo approved the deployment of his own code: %v\nexcluded %s approvers %s", g, excluded, approvers)
	}
	// His /approve-deploy is refused with the reason; Ana's opens it.
	e.clk.add(time.Minute)
	e.bb.AddComment(testRepo, pr, e.user["bo"], "/approve-deploy production")
	if g = e.gate(t, id); g["state"] != "pending" {
		t.Fatalf("Bo's command opened it: %v", g)
	}
	e.clk.add(time.Minute)
	e.bb.AddComment(testRepo, pr, e.user["ana"], "/approve-deploy production")
	if g = e.gate(t, id); g["state"] != "approved" || g["decided_by"] != "acc-ana" {
		t.Fatalf("Ana's approval: %v", g)
	}
}

func TestWalkAroundPrefixTwin(t *testing.T) {
	e := startE2E(t)
	head := hex40(331)
	twin := head[:12] + strings.Repeat("0", 28) // a different commit with the same 12-hex prefix, on no pull request
	if twin == head {
		t.Fatal("no twin")
	}
	pr := e.bb.AddPullRequest(testRepo, bitbuckettest.PR{Title: "Fees", Author: e.user["mei"], SourceCommit: head})
	e.clk.add(time.Minute)
	if err := e.bb.Approve(testRepo, pr, e.user["bo"]); err != nil {
		t.Fatal(err)
	}
	// rolekeeper's own record of the pull request carries the full head
	// (prflow resolves the payload's 12 hex); the store matches full
	// hashes only, so the twin finds no candidate there.
	if err := e.st.UpsertPR(context.Background(), &store.PRRecord{Repository: testRepo, ID: pr, AuthorAccountID: "acc-mei",
		State: model.PROpen, SourceCommit: head}); err != nil {
		t.Fatal(err)
	}
	e.clk.add(time.Minute)
	g := e.ask(t, twin, "production")
	id := g["id"].(string)
	e.deliver(t, "pullrequest:approved", e.bb.WebhookBody("pullrequest:approved", testRepo, pr, e.user["bo"]))
	e.clk.add(time.Minute)
	if g = e.gate(t, id); g["state"] != "pending" || len(g["pull_requests"].([]any)) != 0 {
		t.Fatalf("the twin rode the approval of %s: %v", short(head), g)
	}
	// The real head opens at once on the same approval.
	if g = e.ask(t, head, "production"); g["state"] != "approved" || g["decided_by"] != "acc-bo" {
		t.Fatalf("the real head: %v", g)
	}
}

func TestWalkAroundShortCommit(t *testing.T) {
	e := startE2E(t)
	m := hex40(341)
	e.merged(t, "tom", m, "ana")
	gates, calls := e.gateCount(t), e.bb.TotalCalls()
	for _, c := range []string{m[:7], m[:12], m[:39]} {
		code, out, raw := e.call(t, "POST", "/api/v1/gates", askBody(c, "production"), apiToken)
		if code != http.StatusBadRequest || !strings.Contains(out["error"].(string), "40 hexadecimal") {
			t.Errorf("POST with %s = %d %s", c, code, raw)
		}
		var stdout, stderr bytes.Buffer
		vars := map[string]string{"ROLEKEEPER_URL": e.api.URL, "ROLEKEEPER_API_TOKEN": apiToken, "BITBUCKET_REPO_FULL_NAME": testRepo,
			"BITBUCKET_COMMIT": c, "BITBUCKET_DEPLOYMENT_ENVIRONMENT": "production"}
		if code := gatecli.RunWith(context.Background(), nil, &stdout, &stderr, func(k string) string { return vars[k] },
			gatecli.Options{Now: e.clk.now, Sleep: func(context.Context, time.Duration) error { t.Error("slept"); return nil }}); code != gatecli.ExitCannot ||
			!strings.Contains(stderr.String(), "40 hexadecimal") {
			t.Errorf("rolekeeper gate with %s: exit %d, stderr %q", c, code, stderr.String())
		}
	}
	if e.gateCount(t) != gates || e.bb.TotalCalls() != calls {
		t.Errorf("short commits stored %d gates and made %d Bitbucket calls", e.gateCount(t)-gates, e.bb.TotalCalls()-calls)
	}
	// The full hash: approved at once (Ana approved the merged change).
	if g := e.ask(t, m, "production"); g["state"] != "approved" {
		t.Errorf("the full hash: %v", g)
	}
}

// longEnv is a 30-character environment: rolekeeper-deploy-<it> would be 48.
const longEnv = "production-eu-central-1-canary"

func TestLongEnvironmentStatusKey(t *testing.T) {
	org := strings.Replace(orgYAML, "deploy-approval: {environments: [production]}", "deploy-approval: {environments: [production, "+longEnv+"]}", 1)
	e := startE2EOrg(t, org)
	m := hex40(351)
	pr := e.merged(t, "tom", m)
	g := e.ask(t, m, longEnv)
	key, _ := g["status_key"].(string)
	if len(longEnv) != 30 || len(key) > 40 || key != StatusKey(longEnv) || !strings.HasPrefix(key, "rolekeeper-deploy-production-") {
		t.Fatalf("status_key %q (%d characters)", key, len(key))
	}
	if st := e.bb.Statuses(testRepo, m)[key]; st.State != "INPROGRESS" {
		t.Fatalf("no status under %q: %v", key, e.bb.Statuses(testRepo, m))
	}
	e.clk.add(time.Minute)
	e.bb.AddComment(testRepo, pr, e.user["ana"], "/approve-deploy "+longEnv)
	if g = e.gate(t, g["id"].(string)); g["state"] != "approved" {
		t.Fatalf("gate = %v", g)
	}
	if st := e.bb.Statuses(testRepo, m)[key]; st.State != "SUCCESSFUL" {
		t.Errorf("status = %+v", st)
	}
	// The fake refuses the full key, as Bitbucket does: the test above would
	// fail with it.
	err := e.client.SetCommitStatus(context.Background(), testRepo, m, model.CommitStatus{Key: "rolekeeper-deploy-" + longEnv,
		State: "INPROGRESS", URL: "https://rk.example/x"})
	if err == nil {
		t.Error("the fake accepted a 48-character status key")
	}
}

// pushAs pushes a commit authored (and pushed) by who onto a pull request.
func (e *e2e) pushAs(t *testing.T, pr int, who, hash string) {
	t.Helper()
	if _, err := e.bb.Push(testRepo, pr, bitbuckettest.Commit{Hash: hash, Author: e.user[who], Pusher: e.user[who]}); err != nil {
		t.Fatal(err)
	}
}
