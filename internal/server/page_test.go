package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Account ids in the shapes Atlassian gives them.
const (
	accAmara   = "712020:3f1c2d9e-0b4a-4c55-9e0f-2b7d1c9a8e11" // in roles.yaml
	accCTO     = "712020:66950b65-57d0-4e02-9bb9-70b6601db958" // in roles.yaml
	accLegacy  = "102fbe228f87207ffc062e98"                    // in roles.yaml, older form
	accOutside = "557058:0d3f8b9c-71a2-4e5f-b6c3-9a8d7e6f5a4b" // in no roles.yaml
	accPicked  = "712020:9b1e5c3a-2d4f-4a6b-8c7d-0e1f2a3b4c5d" // named only by the decision's pick

	glassReason = "payments down in prod INC-4411 hotfix"
	pubPR       = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	pubGate     = "f9e8d7c6b5a4039281706f5e4d3c2b1a"
	pubShort    = "1234567890abcdef1234567890abcdef"
)

var testPeople = map[string]string{accAmara: "Amara Okafor", accCTO: "Ngozi Adeyemi", accLegacy: "Kofi Mensah"}

func prDecision(t *testing.T) json.RawMessage {
	t.Helper()
	d := rules.Decision{
		Repository: "reloadly/payments-api", Number: 12, Team: "payments",
		Rules: []rules.RuleResult{{
			RuleID: "technical-lead/code-review", Kind: "code-review", Role: "technical-lead",
			Responsibility: "Reviews code written by the engineers in the team",
			Triggered:      true, Reason: "pull request in a repository of team payments",
			Picks: []rules.Pick{
				{AccountID: accAmara, Person: "amara", Name: "Amara <Okafor>", Reason: "technical lead of team payments, least loaded"},
				{AccountID: accPicked, Person: "mei", Name: "Mei Chen", Reason: "asked " + accPicked + ": second reviewer"},
			},
			Required:   1,
			ApprovedBy: []string{accLegacy, accOutside},
			Ignored:    []string{"approval of " + accOutside + " does not count: not a technical lead", "approval of " + accLegacy + " does not count: away"},
			Shortfall:  "1 approval from a technical lead",
		}},
		Request:  []rules.Pick{{AccountID: accAmara, Person: "amara", Name: "Amara <Okafor>", Reason: "least loaded"}},
		Statuses: []rules.Status{{Key: rules.StatusReview, State: rules.StateFailed, Description: "0 of 1 approvals"}},
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gateDoc is a gate decision as the gate package records it.
func gateDoc(reason string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"gate": "g_0a1b2c3d4e5f607182", "change": "break-glass", "state": "approved",
		"repository": "reloadly/payments-api", "commit": "0123456789abcdef0123456789abcdef01234567", "environment": "production",
		"decided_by": accCTO, "reason": reason, "break_glass": true, "via": "admin-token", "pull_requests": []int{12},
		"policy": map[string]any{"authors": []string{accOutside}, "eligible": []map[string]string{{"account_id": accAmara, "name": "Amara Okafor"}},
			"excluded": []string{"account " + accOutside + " authored a pull request"}, "reason": "needs an approval from product-owner"},
		"history": []map[string]any{
			{"at": "2026-11-02T09:00:00Z", "what": "asked", "detail": "needs an approval from product-owner"},
			{"at": "2026-11-02T09:05:00Z", "what": "approved", "by": accCTO, "detail": reason},
		},
	})
	return b
}

func pageStore(t *testing.T) *fakeStore {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	return &fakeStore{decisions: []store.DecisionRecord{
		{ID: 7, PublicID: pubPR, Kind: model.SubjectPullRequest, Repository: "reloadly/payments-api", PR: 12, Commit: "0123456789abcdef0123",
			Summary: `<script>alert(1)</script> asked Amara`, Outcome: "requested 1 reviewer", Decision: prDecision(t), Trigger: "pr.created",
			DeliveryID: "delivery-secret-ish", Snapshot: json.RawMessage(`{"author":"` + accOutside + `"}`), CreatedAt: at},
		{ID: 9, PublicID: pubGate, Kind: model.SubjectGate, Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567",
			Summary: "gate g_0a1b2c3d4e5f607182: production deployment of reloadly/payments-api@0123456789ab opened by break-glass of Ngozi Adeyemi: " + glassReason,
			Outcome: "recorded", Trigger: "gate.break-glass", Decision: gateDoc(glassReason), CreatedAt: at},
		{ID: 10, PublicID: pubShort, Kind: model.SubjectGate, Repository: "reloadly/payments-api",
			Summary: "gate g_1: production deployment opened by break-glass of " + accCTO + ": fix", Decision: gateDoc("fix"), CreatedAt: at},
	}}
}

// TestDecisionPageByPublicIDOnly: a page is served by its public id; the
// numeric id, or any other spelling, is the same 404 as an unknown id.
func TestDecisionPageByPublicIDOnly(t *testing.T) {
	s, _ := newTestServer(t, pageStore(t), token, adminToken)
	if rec := do(t, s.Handler(), "GET", "/decisions/"+pubPR, ""); rec.Code != http.StatusOK {
		t.Fatalf("by public id: %d %s", rec.Code, rec.Body)
	}
	unknown := do(t, s.Handler(), "GET", "/decisions/"+store.NewPublicID(), "")
	if unknown.Code != http.StatusNotFound {
		t.Fatalf("unknown public id: %d", unknown.Code)
	}
	for _, p := range []string{"/decisions/7", "/decisions/9", "/decisions/0", "/decisions/-1", "/decisions/x",
		"/decisions/" + strings.ToUpper(pubPR), "/decisions/" + pubPR[:31], "/decisions/" + pubPR + "0",
		"/decisions/7?format=json", "/decisions/7?format=text"} {
		rec := do(t, s.Handler(), "GET", p, "")
		if rec.Code != http.StatusNotFound || rec.Body.String() != unknown.Body.String() {
			t.Errorf("%s: %d %q, want the 404 of an unknown id", p, rec.Code, rec.Body)
		}
	}
}

// TestDecisionPageShowsNamesNotAccounts: in every format, the public page
// names people and shows no account id, no break-glass reason, no delivery
// id and no snapshot.
func TestDecisionPageShowsNamesNotAccounts(t *testing.T) {
	s, _ := newTestServer(t, pageStore(t), token, adminToken)
	never := []string{accAmara, accCTO, accLegacy, accOutside, accPicked, "3f1c2d9e-0b4a", "66950b65", "0d3f8b9c", "9b1e5c3a",
		glassReason, "INC-4411", "delivery-secret-ish", `"id": 7`, "Decision 7"}
	formats := []struct {
		query, accept, ctype string
	}{{"", "", "text/html"}, {"?format=text", "", "text/plain"}, {"", "text/plain", "text/plain"}, {"?format=json", "", "application/json"}}
	for _, f := range formats {
		for pub, names := range map[string][]string{
			pubPR:    {"Amara", "Kofi Mensah", "Mei Chen", outsider},
			pubGate:  {"Ngozi Adeyemi", "break-glass", "withheld"},
			pubShort: {"Ngozi Adeyemi", "withheld"},
		} {
			req := "/decisions/" + pub + f.query
			rec := doAccept(t, s, req, f.accept)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), f.ctype) {
				t.Errorf("%s (Accept %q): %d %s", req, f.accept, rec.Code, rec.Header().Get("Content-Type"))
				continue
			}
			for _, bad := range never {
				if strings.Contains(body, bad) {
					t.Errorf("%s (Accept %q) shows %q:\n%s", req, f.accept, bad, body)
				}
			}
			if pub == pubShort && strings.Contains(body, ": fix") {
				t.Errorf("%s shows the short break-glass reason:\n%s", req, body)
			}
			for _, want := range names {
				if !strings.Contains(body, want) {
					t.Errorf("%s (Accept %q) lacks %q:\n%s", req, f.accept, want, body)
				}
			}
		}
	}
}

func doAccept(t *testing.T, s *Server, target, accept string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// TestDecisionPage: what the page shows of a pull-request decision, escaped.
func TestDecisionPage(t *testing.T) {
	s, _ := newTestServer(t, pageStore(t), token, adminToken)
	rec := do(t, s.Handler(), "GET", "/decisions/"+pubPR, "")
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d type %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"reloadly/payments-api#12", "technical-lead/code-review", "Amara &lt;Okafor&gt;", "least loaded", "rolekeeper-review", "0123456789ab",
		`href="https://bitbucket.org/reloadly/payments-api/pull-requests/12"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("summary not escaped")
	}
	rec = do(t, s.Handler(), "GET", "/decisions/"+pubPR+"?format=text", "")
	if !strings.Contains(rec.Body.String(), "reviewer Amara <Okafor>: technical lead of team payments, least loaded") {
		t.Errorf("text page:\n%s", rec.Body)
	}
	rec = do(t, s.Handler(), "GET", "/decisions/"+pubGate, "")
	if !strings.Contains(rec.Body.String(), "&#34;state&#34;: &#34;approved&#34;") || !strings.Contains(rec.Body.String(), "&#34;decided_by&#34;: &#34;Ngozi Adeyemi&#34;") {
		t.Errorf("other kinds show their JSON, with names:\n%s", rec.Body)
	}
	var v PublicDecisionView
	rec = do(t, s.Handler(), "GET", "/decisions/"+pubGate+"?format=json", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != pubGate || v.URL != "https://rk.example.com/decisions/"+pubGate || !strings.Contains(v.Summary, "opened by break-glass of Ngozi Adeyemi") {
		t.Errorf("json view %+v", v)
	}
}

// The admin API keeps everything: account ids, reasons, the numeric id.
func TestDecisionsAPIKeepsEverything(t *testing.T) {
	s, _ := newTestServer(t, pageStore(t), token, adminToken)
	rec := do(t, s.Handler(), "GET", "/api/v1/decisions?repository=reloadly/payments-api", "Bearer "+adminToken)
	for _, want := range []string{accCTO, glassReason, accOutside, `"public_id": "` + pubGate + `"`, `"url": "https://rk.example.com/decisions/` + pubGate + `"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("admin API lacks %q", want)
		}
	}
}
