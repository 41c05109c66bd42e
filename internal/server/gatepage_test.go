package server

import (
	"encoding/json"
	stdhtml "html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/gate"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Hostile text, as names, titles and reasons may carry it: HTML, Markdown,
// Jira markup and right-to-left text with a direction override.
const (
	hostileName   = "مريم العلي \u202Egnp.exe <img src=x onerror=alert(1)>"
	hostileReason = `<script>alert(1)</script> **bold** [x](javascript:alert(1)) {color:red}red{color}`
)

const (
	pubWaiting  = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1" // the asked decision of a waiting gate
	pubWaiting2 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2" // a later decision of the same gate
	pubGlass    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1" // a gate opened by break-glass
	pubOrphan   = "ccccccccccccccccccccccccccccccc1" // a gate decision whose gate is gone
	pubRules    = "ddddddddddddddddddddddddddddddd1" // a pull request with rules that did and did not apply
	pubIssue    = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee1"
	gateWaiting = "g_0011223344556677aa"
	gateGlass   = "g_8899aabbccddeeff00"
)

func gateRecDoc(t *testing.T, id string, pol rules.DeployResult, extra map[string]any) json.RawMessage {
	t.Helper()
	m := map[string]any{"gate": id, "change": "asked", "state": "pending", "policy": pol, "history": []any{}}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gateData(t *testing.T, pub string, hist []gate.Entry, auth []rules.Authorship) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]any{"history": hist, "authorship": auth, "decision_public_id": pub})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// richStore has a pull-request decision whose rules did and did not apply
// (the one that did not listed first, as the engine may), a Jira issue
// decision, a waiting gate and a gate opened by break-glass.
func richStore(t *testing.T) *fakeStore {
	t.Helper()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	st := pageStore(t)
	pr := rules.Decision{Repository: "reloadly/checkout-service", Number: 2, Team: "checkout", Rules: []rules.RuleResult{
		{RuleID: "qa-lead/path-review", Kind: "path-review", Role: "qa-lead", Responsibility: "Creates automation tasks",
			Reason: `qa-lead/path-review (QA Lead: "Creates automation tasks"): not triggered, no changed file matches tests/e2e/**`},
		{RuleID: "technical-lead/code-review", Kind: "code-review", Role: "technical-lead", Responsibility: "Reviews code written by the engineers in the team",
			Triggered: true, Required: 1,
			Reason: `technical-lead/code-review (Technical lead: "Reviews code written by the engineers in the team"): every pull request in the repositories of team Checkout`,
			Picks: []rules.Pick{{AccountID: accAmara, Name: "Oluwaseun Adeyemi", Reason: "asked Oluwaseun Adeyemi: Technical lead of team Checkout, fewest open reviews (0)"},
				{AccountID: accOutside, Name: hostileName, Reason: "asked " + hostileName + ": " + hostileReason}},
			Excluded:  []string{"Kofi Mensah wrote a commit of the pull request"},
			Shortfall: "needs 1 approval from technical-lead"},
		{RuleID: "backend-engineer/unit-tests", Kind: "unit-tests", Role: "backend-engineer", Responsibility: "Writes unit tests",
			Triggered: true, Met: true, Reason: `backend-engineer/unit-tests (Back-end engineer: "Writes unit tests"): 1 source file changed (a.go) with 1 test file (a_test.go)`},
	}}
	prJSON, _ := json.Marshal(pr)
	issue := rules.IssueDecision{Issue: "PAY-7", Project: "PAY", Team: "payments", Rules: []rules.IssueRuleResult{
		{RuleID: "qa/test-plan", Kind: "test-plan", Role: "qa", RoleTitle: "QA engineer", Responsibility: "Writes test plans", Applies: true,
			NeedsTask: true, Reason: "PAY-7 is an Epic without a test plan", Picks: []rules.Pick{{AccountID: accAmara, Name: "Amara Okafor", Reason: "asked Amara Okafor: QA engineer of team Payments"}}},
		{RuleID: "designer/design-review", Kind: "design-review", Role: "designer", Responsibility: "Reviews designs", Reason: "PAY-7 is a Epic, not one of Design"},
	}}
	issueJSON, _ := json.Marshal(issue)
	pol := rules.DeployResult{Gated: true, Team: "payments", Environment: "production", RuleID: "product-owner/deploy-approval", Role: "product-owner",
		Eligible: []rules.Pick{{AccountID: accAmara, Name: "Amara Okafor"}}, Authors: []string{accOutside},
		Reason: `product-owner/deploy-approval (Product owner: "Performs and oversees production deployments"): ` +
			"deployments of team Payments to production need an approval from product-owner who did not author the change", InvalidateOnPush: true}
	st.decisions = append(st.decisions,
		store.DecisionRecord{ID: 20, PublicID: pubRules, Kind: model.SubjectPullRequest, Repository: "reloadly/checkout-service", PR: 2,
			Commit: "fedcba9876543210fedcba9876543210fedcba98", Team: "checkout", Trigger: "pr.updated", Summary: "asked Oluwaseun Adeyemi", Outcome: "requested 1 reviewer",
			Decision: prJSON, CreatedAt: at},
		store.DecisionRecord{ID: 21, PublicID: pubIssue, Kind: model.SubjectIssue, IssueKey: "PAY-7", Team: "payments", Trigger: "jira:issue_created",
			Summary: "PAY-7 is an Epic without a test plan", Outcome: "task PAY-8 created", Decision: issueJSON, CreatedAt: at},
		store.DecisionRecord{ID: 22, PublicID: pubWaiting, Kind: model.SubjectGate, Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567",
			Team: "payments", Trigger: "gate.asked", Summary: "gate " + gateWaiting + " asked", Decision: gateRecDoc(t, gateWaiting, pol, nil), CreatedAt: at},
		store.DecisionRecord{ID: 23, PublicID: pubWaiting2, Kind: model.SubjectGate, Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567",
			Team: "payments", Trigger: "gate.asked", Summary: "gate " + gateWaiting + " asked", Decision: gateRecDoc(t, gateWaiting, pol, nil), CreatedAt: at.Add(time.Minute)},
		store.DecisionRecord{ID: 24, PublicID: pubGlass, Kind: model.SubjectGate, Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567",
			Team: "payments", Trigger: "gate.break-glass", Summary: "gate " + gateGlass + " opened by break-glass by Ngozi Adeyemi: " + glassReason,
			Decision: gateRecDoc(t, gateGlass, pol, map[string]any{"state": "approved", "break_glass": true, "reason": glassReason, "decided_by": accCTO}), CreatedAt: at},
		store.DecisionRecord{ID: 25, PublicID: pubOrphan, Kind: model.SubjectGate, Summary: "gate g_gone asked",
			Decision: gateRecDoc(t, "g_gone", pol, nil), CreatedAt: at},
	)
	st.gates = []store.Gate{
		{ID: gateWaiting, Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567", Environment: "production",
			Team: "payments", RuleID: "product-owner/deploy-approval", State: store.GatePending, Approvers: []string{accAmara, accLegacy},
			Excluded: []string{accOutside}, PRs: []int{12}, CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour),
			Data: gateData(t, pubWaiting2, []gate.Entry{
				{At: at, What: "asked", Detail: "production of reloadly/payments-api@0123456789ab by build #318: " + pol.Reason},
				{At: at.Add(time.Minute), What: "pull requests", Detail: "carried by #12"},
				{At: at.Add(2 * time.Minute), What: "refused /approve-deploy", By: accOutside, PR: 12,
					Detail: "account " + accOutside + " authored a pull request that brought this commit and does not hold product-owner for team payments"},
			}, []rules.Authorship{{AccountID: accOutside, What: "authored pull request #12"}})},
		{ID: gateGlass, Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567", Environment: "production",
			Team: "payments", RuleID: "product-owner/deploy-approval", State: store.GateApproved, BreakGlass: true, DecidedBy: accCTO,
			DecidedAt: at.Add(5 * time.Minute), Reason: glassReason, Approvers: []string{accAmara}, PRs: []int{12}, CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour),
			Data: gateData(t, pubGlass, []gate.Entry{
				{At: at, What: "asked", Detail: pol.Reason},
				{At: at.Add(5 * time.Minute), What: "break-glass", By: accCTO, PR: 12, Detail: glassReason},
			}, nil)},
	}
	return st
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// visible is the page's text as a reader sees it, roughly.
func visible(html string) string {
	if i := strings.Index(html, "</head>"); i >= 0 {
		html = html[i:]
	}
	s := stdhtml.UnescapeString(tagRE.ReplaceAllString(html, " "))
	return strings.Join(strings.Fields(s), " ")
}

// TestDecisionPageVerdictFirstEachFactOnce: the verdict comes first, then
// the rules that applied, then one folded line for those that did not; a
// reviewer's name is said once per rule ("X: asked X: …" never), a rule's
// reason without its label, and the page links to the pull request.
func TestDecisionPageVerdictFirstEachFactOnce(t *testing.T) {
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	rec := do(t, s.Handler(), "GET", "/decisions/"+pubRules, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	order := []string{
		`href="https://bitbucket.org/reloadly/checkout-service/pull-requests/2"`,
		"Not yet: 1 of 2 rules that applied is open: technical-lead/code-review (needs 1 approval from technical-lead)",
		"Rules that applied", "<strong>technical-lead/code-review</strong>", "<strong>backend-engineer/unit-tests</strong>",
		"<details><summary>1 rule did not apply: qa-lead/path-review</summary>",
	}
	last := -1
	for _, want := range order {
		i := strings.Index(body, want)
		if i < 0 {
			t.Fatalf("page lacks %q:\n%s", want, body)
		}
		if i < last {
			t.Errorf("%q comes too early:\n%s", want, body)
		}
		last = i
	}
	text := visible(body)
	for _, want := range []string{
		"asked Oluwaseun Adeyemi : Technical lead of team Checkout, fewest open reviews (0)",
		"every pull request in the repositories of team Checkout",
		"not asked: Kofi Mensah wrote a commit of the pull request",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "Oluwaseun Adeyemi"); n != 1 {
		t.Errorf("the reviewer is named %d times, want once:\n%s", n, text)
	}
	if n := strings.Count(text, "Reviews code written by the engineers in the team"); n != 1 {
		t.Errorf("the responsibility is said %d times, want once:\n%s", n, text)
	}
	if strings.Contains(text, "needs 1 approval from technical-lead Missing") || strings.Count(text, "needs 1 approval from technical-lead") != 1 {
		t.Errorf("what is missing is said more than once:\n%s", text)
	}

	txt := do(t, s.Handler(), "GET", "/decisions/"+pubRules+"?format=text", "").Body.String()
	if !strings.HasPrefix(txt, "Not yet: 1 of 2 rules") || strings.Index(txt, "technical-lead/code-review (role") > strings.Index(txt, "did not apply: qa-lead/path-review") ||
		strings.Contains(txt, "Oluwaseun Adeyemi: asked Oluwaseun Adeyemi") {
		t.Errorf("text page:\n%s", txt)
	}
}

// TestIssueDecisionPage: a Jira decision names its verdict, the rule that
// applied and whom it asked, and links to the issue when the site is known.
func TestIssueDecisionPage(t *testing.T) {
	st := richStore(t)
	s := New(Options{PublicURL: "https://rk.example.com", Store: st, JiraURL: "https://acme.atlassian.net/",
		People:         func() map[string]string { return testPeople },
		BreakGlassRole: func(string, string) string { return "cto" }})
	body := do(t, s.Handler(), "GET", "/decisions/"+pubIssue, "").Body.String()
	text := visible(body)
	for _, want := range []string{`href="https://acme.atlassian.net/browse/PAY-7"`, "Not yet: 1 of 1 rule that applied is open: qa/test-plan"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	for _, want := range []string{"task asked for qa/test-plan", "asked Amara Okafor : QA engineer of team Payments", "1 rule did not apply: designer/design-review"} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
}

// TestGatePage: reached through any decision of the gate, it shows the
// gate as it is now: verdict, who may approve, how, until when, the
// history newest first; names, never account ids.
func TestGatePage(t *testing.T) {
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	for _, pub := range []string{pubWaiting, pubWaiting2} {
		rec := do(t, s.Handler(), "GET", "/gates/"+pub, "")
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("/gates/%s: %d %s", pub, rec.Code, rec.Body)
		}
		body := rec.Body.String()
		text := visible(body)
		for _, want := range []string{
			"Waiting for an approval, until Tue 1 Dec 09:00 UTC.",
			"Who may approve Amara Okafor , Kofi Mensah : deployments of team Payments to production need an approval from product-owner",
			"Not counted: " + outsider + " authored pull request #12",
			"comment /approve-deploy production on it (an approval given before the last push does not count)",
			"/reject-deploy production <reason>", "/break-glass production <reason>",
			"The gate expires on Tue 1 Dec 2026 09:00 UTC",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/gates/%s lacks %q:\n%s", pub, want, text)
			}
		}
		for _, want := range []string{`href="https://bitbucket.org/reloadly/payments-api/pull-requests/12"`,
			`href="https://rk.example.com/decisions/` + pubWaiting2 + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("/gates/%s lacks %q", pub, want)
			}
		}
		// The policy is said once, under who may approve, without the
		// rule's label: not again in the history.
		if strings.Count(text, "need an approval from product-owner") != 1 || strings.Contains(text, "Performs and oversees") ||
			!strings.Contains(text, "asked production of reloadly/payments-api@0123456789ab by build #318 ") {
			t.Errorf("the policy is not said once:\n%s", text)
		}
		if strings.Index(text, "refused /approve-deploy") > strings.Index(text, "carried by #12") {
			t.Errorf("history is not newest first:\n%s", text)
		}
		for _, bad := range []string{accAmara, accOutside, accLegacy, "3f1c2d9e", "0d3f8b9c", gateWaiting} {
			if strings.Contains(body, bad) {
				t.Errorf("/gates/%s shows %q", pub, bad)
			}
		}
	}
}

// TestGatePageBreakGlass: the verdict says who broke the glass; the reason
// is nowhere on the page.
func TestGatePageBreakGlass(t *testing.T) {
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	body := do(t, s.Handler(), "GET", "/gates/"+pubGlass, "").Body.String()
	text := visible(body)
	if !strings.Contains(text, "Opened by break-glass by Ngozi Adeyemi on 30 Nov 09:05 UTC") || strings.Count(text, withheld) != 1 {
		t.Errorf("verdict:\n%s", text)
	}
	for _, bad := range []string{glassReason, "INC-4411", accCTO, "Who may approve", "How"} {
		if strings.Contains(text, bad) {
			t.Errorf("break-glass gate page shows %q:\n%s", bad, text)
		}
	}
}

// TestGatePageOnlyThroughGateDecisions: a pull request's decision, a gate
// that is gone, an unknown or malformed id, a gate's own id: all the same
// 404.
func TestGatePageOnlyThroughGateDecisions(t *testing.T) {
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	unknown := do(t, s.Handler(), "GET", "/gates/"+store.NewPublicID(), "")
	if unknown.Code != http.StatusNotFound {
		t.Fatalf("unknown: %d", unknown.Code)
	}
	for _, id := range []string{pubRules, pubIssue, pubOrphan, gateWaiting, "22", strings.ToUpper(pubWaiting), pubWaiting[:31]} {
		rec := do(t, s.Handler(), "GET", "/gates/"+id, "")
		if rec.Code != http.StatusNotFound || rec.Body.String() != unknown.Body.String() {
			t.Errorf("/gates/%s: %d %q, want the 404 of an unknown id", id, rec.Code, rec.Body)
		}
	}
	// A gate decision's page points at the gate page.
	body := do(t, s.Handler(), "GET", "/decisions/"+pubWaiting, "").Body.String()
	if !strings.Contains(body, `href="https://rk.example.com/gates/`+pubWaiting+`"`) {
		t.Errorf("gate decision page does not link its gate:\n%s", body)
	}
}

// TestPagesRenderHostileTextAsText: names and reasons with HTML, Markdown,
// Jira markup and right-to-left overrides are escaped and isolated.
func TestPagesRenderHostileTextAsText(t *testing.T) {
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	body := do(t, s.Handler(), "GET", "/decisions/"+pubRules, "").Body.String()
	for _, bad := range []string{"<script>", "<img", `href="javascript`, "\u202E"} {
		if strings.Contains(body, bad) {
			t.Errorf("page carries %q raw", bad)
		}
	}
	// The gate page: a hostile rejection reason in the verdict and history.
	st := richStore(t)
	st.gates[0].State, st.gates[0].DecidedBy, st.gates[0].Reason = store.GateRejected, accAmara, hostileReason+" \u202Eevil"
	st.gates[0].DecidedAt = st.gates[0].CreatedAt.Add(time.Hour)
	gs, _ := newTestServer(t, st, token, adminToken)
	gbody := do(t, gs.Handler(), "GET", "/gates/"+pubWaiting, "").Body.String()
	if !strings.Contains(gbody, "Rejected by Amara Okafor on 30 Nov 10:00 UTC: &lt;script&gt;alert(1)&lt;/script&gt; **bold** [x](javascript:alert(1)) {color:red}red{color} evil") ||
		strings.Contains(gbody, "<script>") || strings.Contains(gbody, "\u202E") {
		t.Errorf("gate page with a hostile reason:\n%s", gbody)
	}
	for _, want := range []string{
		"<bdi>مريم العلي gnp.exe &lt;img src=x onerror=alert(1)&gt;</bdi>",
		"&lt;script&gt;alert(1)&lt;/script&gt; **bold** [x](javascript:alert(1)) {color:red}red{color}",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
}

// TestGateDecisionPageSaysItOnce: a gate decision's page leads with its
// summary, once, and links the gate page.
func TestGateDecisionPageSaysItOnce(t *testing.T) {
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	text := visible(do(t, s.Handler(), "GET", "/decisions/"+pubWaiting, "").Body.String())
	if n := strings.Count(text, "gate "+gateWaiting+" asked"); n != 1 {
		t.Errorf("summary said %d times:\n%s", n, text)
	}
}

// TestGatePageWithoutBreakGlassRule: where roles.yaml lets nobody break the
// glass, the page says so instead of naming a role.
func TestGatePageWithoutBreakGlassRule(t *testing.T) {
	s := New(Options{PublicURL: "https://rk.example.com", Store: richStore(t),
		People:         func() map[string]string { return testPeople },
		BreakGlassRole: func(string, string) string { return "" }})
	text := visible(do(t, s.Handler(), "GET", "/gates/"+pubWaiting, "").Body.String())
	if !strings.Contains(text, "No rule of roles.yaml lets anyone break the glass of this gate.") || strings.Contains(text, "/break-glass production") {
		t.Errorf("gate page without a break-glass rule:\n%s", text)
	}
}
