package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
)

// memSource is a hand-written in-memory store for the report: it filters
// like the store contract says.
type memSource struct {
	findings []model.Finding
	prs      []store.PRRecord
	gates    []store.Gate
}

func (m *memSource) ListFindings(_ context.Context, f store.FindingFilter) ([]model.Finding, error) {
	var out []model.Finding
	for _, x := range m.findings {
		if (!f.Since.IsZero() && x.OccurredAt.Before(f.Since)) || (!f.Until.IsZero() && !x.OccurredAt.Before(f.Until)) {
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

func (m *memSource) ListPRs(_ context.Context, f store.PRFilter) ([]store.PRRecord, error) {
	var out []store.PRRecord
	for _, x := range m.prs {
		if !f.UpdatedSince.IsZero() && x.UpdatedAt.Before(f.UpdatedSince) {
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

func (m *memSource) ListGates(_ context.Context, f store.GateFilter) ([]store.Gate, error) {
	var out []store.Gate
	for _, x := range m.gates {
		if (!f.Since.IsZero() && x.CreatedAt.Before(f.Since)) || (!f.Until.IsZero() && !x.CreatedAt.Before(f.Until)) {
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func testOrg() *roles.Org {
	codeReview := &roles.Rule{ID: "technical-lead/code-review", Kind: roles.KindCodeReview, Role: "technical-lead",
		Responsibility: "Reviews code written by the engineers in the team", Reviewers: 1, Approvals: 1}
	deploy := &roles.Rule{ID: "product-owner/deploy-approval", Kind: roles.KindDeployApproval, Role: "product-owner",
		Responsibility: "Performs and oversees production deployments", Environments: []string{"production"}}
	report := &roles.Rule{ID: "cto/report", Kind: roles.KindReport, Role: "cto", Responsibility: "Owns the entire engineering process"}
	org := &roles.Org{
		Organization: "Reloadly",
		Roles: []*roles.Role{
			{ID: "technical-lead", Title: "Technical lead", Responsibilities: []*roles.Responsibility{
				{Role: "technical-lead", Text: codeReview.Responsibility, Rules: []*roles.Rule{codeReview}},
				{Role: "technical-lead", Index: 1, Text: "Performs technical analysis for complex problems"},
			}},
			{ID: "product-owner", Title: "Product owner", Responsibilities: []*roles.Responsibility{
				{Role: "product-owner", Text: deploy.Responsibility, Rules: []*roles.Rule{deploy}},
			}},
			{ID: "cto", Title: "CTO", Scope: roles.ScopeOrganization, Responsibilities: []*roles.Responsibility{
				{Role: "cto", Text: report.Responsibility, Rules: []*roles.Rule{report}},
			}},
		},
		Teams: []*roles.Team{
			{ID: "payments", Name: "Payments", Repositories: []string{"reloadly/payments-api"}},
			{ID: "checkout", Name: "Checkout", Repositories: []string{"reloadly/checkout-web"}},
		},
		People: []*roles.Person{
			{ID: "mei", Name: "Mei Chen", AccountID: "acc-mei", Roles: []string{"technical-lead"}, Teams: []string{"payments"}},
			{ID: "kofi", Name: "Kofi Mensah", AccountID: "acc-kofi", Roles: []string{"technical-lead"}, Teams: []string{"payments"},
				Away: []roles.Period{{From: day("2026-11-20"), To: day("2026-12-02")}}},
			{ID: "ana", Name: "Ana Souza", AccountID: "acc-ana", Roles: []string{"product-owner"}, Teams: []string{"payments", "checkout"}},
			{ID: "raj", Name: "Raj Patel", AccountID: "acc-raj", Roles: []string{"cto"}},
		},
		Rules: []*roles.Rule{codeReview, deploy, report},
	}
	org.Index()
	return org
}

func TestParseWeek(t *testing.T) {
	tests := []struct {
		in        string
		wantStart string
		wantErr   string
	}{
		{"2026-W48", "2026-11-23", ""},
		{"2026-W01", "2025-12-29", ""},
		{"2020-W53", "2020-12-28", ""},
		{"2026-W53", "2026-12-28", ""},
		{"2025-W53", "", "has no week 53"},
		{"2026-W00", "", "01 to 53"},
		{"2026-48", "", "want YYYY-Www"},
		{"", "", "want YYYY-Www"},
	}
	for _, tt := range tests {
		w, err := ParseWeek(tt.in, time.UTC)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseWeek(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseWeek(%q): %v", tt.in, err)
		}
		if got := w.Start().Format("2006-01-02"); got != tt.wantStart {
			t.Errorf("ParseWeek(%q).Start() = %s, want %s", tt.in, got, tt.wantStart)
		}
		if w.String() != tt.in {
			t.Errorf("String() = %s, want %s", w, tt.in)
		}
	}
}

func TestLastCompleteAndZone(t *testing.T) {
	now := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC) // Thursday of W48
	if got := LastComplete(now, time.UTC).String(); got != "2026-W47" {
		t.Errorf("LastComplete = %s, want 2026-W47", got)
	}
	// Monday 00:30 in Auckland is still Sunday in UTC: weeks follow the zone.
	akl, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Skip("no tzdata")
	}
	mon := time.Date(2026, 11, 23, 0, 30, 0, 0, akl)
	if got := WeekOf(mon, akl).String(); got != "2026-W48" {
		t.Errorf("WeekOf in Auckland = %s, want 2026-W48", got)
	}
	if got := WeekOf(mon, time.UTC).String(); got != "2026-W47" {
		t.Errorf("WeekOf in UTC = %s, want 2026-W47", got)
	}
}

func sampleSource() *memSource {
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	return &memSource{
		findings: []model.Finding{
			{Key: "merge-approved:reloadly/payments-api#1", Kind: "code-review", RuleID: "technical-lead/code-review", Team: "payments",
				Subject: model.SubjectPullRequest, Ref: "reloadly/payments-api#1", Held: true, OccurredAt: at("2026-11-17T10:00:00Z")},
			{Key: "merge-unapproved:reloadly/payments-api#2", Kind: "code-review", RuleID: "technical-lead/code-review", Team: "payments",
				Subject: model.SubjectPullRequest, Ref: "reloadly/payments-api#2", URL: "https://bitbucket.org/reloadly/payments-api/pull-requests/2",
				Reason: "merged by Kofi Mensah with 0 of 1 approvals from technical-lead", Actor: "acc-kofi", OccurredAt: at("2026-11-18T15:30:00Z")},
			{Key: "merge-unapproved:reloadly/checkout-web#7", Kind: "code-review", RuleID: "technical-lead/code-review", Team: "checkout",
				Subject: model.SubjectPullRequest, Ref: "reloadly/checkout-web#7", Reason: "approved only by its author", OccurredAt: at("2026-11-19T09:00:00Z")},
			// previous week: only in the trend
			{Key: "old", Kind: "code-review", RuleID: "technical-lead/code-review", Team: "payments", Held: false, OccurredAt: at("2026-11-10T09:00:00Z")},
			// next week: nowhere
			{Key: "future", Kind: "code-review", RuleID: "technical-lead/code-review", Team: "payments", Held: false, OccurredAt: at("2026-11-24T09:00:00Z")},
			{Key: "break-glass:g1", Kind: "break-glass", Team: "payments", OccurredAt: at("2026-11-20T22:00:00Z")},
		},
		prs: []store.PRRecord{
			{Repository: "reloadly/payments-api", ID: 1, Team: "payments", State: model.PRMerged, Reviewers: []string{"acc-mei"},
				Approvals: []model.Approval{{AccountID: "acc-mei", State: model.ReviewApproved}},
				CreatedAt: at("2026-11-16T09:00:00Z"), FirstReviewAt: at("2026-11-16T11:00:00Z"), ApprovedAt: at("2026-11-16T11:00:00Z"),
				ClosedAt: at("2026-11-17T10:00:00Z"), UpdatedAt: at("2026-11-17T10:00:00Z")},
			{Repository: "reloadly/payments-api", ID: 2, Team: "payments", State: model.PRMerged, Reviewers: []string{"acc-mei"},
				CreatedAt: at("2026-11-18T09:00:00Z"), ClosedAt: at("2026-11-18T15:30:00Z"), UpdatedAt: at("2026-11-18T15:30:00Z")},
			{Repository: "reloadly/checkout-web", ID: 7, Team: "checkout", State: model.PROpen, Reviewers: []string{"acc-mei", "acc-kofi"},
				Approvals: []model.Approval{{AccountID: "acc-kofi", State: model.ReviewChangesRequested}},
				CreatedAt: at("2026-11-19T08:00:00Z"), FirstReviewAt: at("2026-11-19T12:00:00Z"), UpdatedAt: at("2026-11-19T12:00:00Z")},
		},
		gates: []store.Gate{
			{ID: "g1", Repository: "reloadly/payments-api", Commit: "0123456789abcdef0123456789abcdef01234567", Environment: "production",
				State: store.GateApproved, BreakGlass: true, DecidedBy: "acc-raj", Reason: "payments outage hotfix",
				CreatedAt: at("2026-11-20T21:50:00Z"), DecidedAt: at("2026-11-20T22:00:00Z"), FollowUp: "PAY-99",
				Data: json.RawMessage(`{"decision_public_id":"0123456789abcdef0123456789abcdef"}`)},
			{ID: "g2", Repository: "reloadly/payments-api", Commit: "abc", Environment: "production", State: store.GateApproved,
				Team: "payments", RuleID: "product-owner/deploy-approval",
				DecidedBy: "acc-ana", CreatedAt: at("2026-11-19T10:00:00Z"), DecidedAt: at("2026-11-19T11:00:00Z")},
		},
	}
}

func buildSample(t *testing.T) *Report {
	t.Helper()
	w, _ := ParseWeek("2026-W47", time.UTC)
	r, err := Build(context.Background(), sampleSource(), testOrg(), w,
		Options{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), PublicURL: "https://rk.example"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuild(t *testing.T) {
	r := buildSample(t)
	if r.Summary.Checked != 4 || r.Summary.Held != 2 || r.Summary.Violated != 2 {
		t.Errorf("summary = %+v, want 4 checked (3 findings, 1 gate), 2 held, 2 violated", r.Summary)
	}
	if r.Summary.BreakGlass != 1 || len(r.BreakGlass) != 1 || r.BreakGlass[0].ByName != "Raj Patel" || r.BreakGlass[0].FollowUp != "PAY-99" {
		t.Errorf("break glass = %+v", r.BreakGlass)
	}
	// The gate's public page, through its latest decision's public id: the
	// gate API needs a token a reader does not have.
	if r.BreakGlass[0].URL != "https://rk.example/gates/0123456789abcdef0123456789abcdef" {
		t.Errorf("break-glass url = %q", r.BreakGlass[0].URL)
	}
	if r.Summary.Gates != 2 || r.Summary.PRsOpened != 3 || r.Summary.PRsMerged != 2 {
		t.Errorf("summary counts = %+v", r.Summary)
	}
	if len(r.Teams) != 2 || r.Teams[0].Team != "payments" || r.Teams[1].Team != "checkout" {
		t.Fatalf("teams = %+v", r.Teams)
	}
	pay := r.Teams[0]
	if len(pay.Rules) != 2 { // code-review and deploy-approval; report is not per team
		t.Errorf("payments rules = %+v", pay.Rules)
	}
	if d := pay.Rules[1]; d.RuleID != "product-owner/deploy-approval" || d.Checked != 1 || d.Held != 1 {
		t.Errorf("payments deploy-approval (one gate approved by Ana) = %+v", d)
	}
	cr := pay.Rules[0]
	if cr.RuleID != "technical-lead/code-review" || cr.Checked != 2 || cr.Held != 1 || cr.Violated != 1 || cr.Role != "technical-lead" {
		t.Errorf("payments code-review = %+v", cr)
	}
	if len(r.Violations) != 2 || r.Violations[0].Ref != "reloadly/payments-api#2" || r.Violations[0].URL == "" {
		t.Errorf("violations = %+v", r.Violations)
	}
	// Mei reviewed on 3 PRs and approved 1; Kofi asked once, requested changes.
	if len(r.Reviewers) != 2 || r.Reviewers[0].Name != "Mei Chen" || r.Reviewers[0].Requested != 3 || r.Reviewers[0].Reviewed != 1 {
		t.Errorf("reviewers = %+v", r.Reviewers)
	}
	if r.Reviewers[1].Requested != 1 || r.Reviewers[1].Reviewed != 1 {
		t.Errorf("kofi load = %+v", r.Reviewers[1])
	}
	// First review: 2h and 4h → median 3h; approval: 2h.
	if r.Timing.MedianFirstReviewHours != 3 || r.Timing.FirstReviewSamples != 2 || r.Timing.MedianApprovalHours != 2 {
		t.Errorf("timing = %+v", r.Timing)
	}
	if len(r.Trend) != 5 || r.Trend[4].Week != "2026-W47" || r.Trend[3].Week != "2026-W46" || r.Trend[3].Violated != 1 || r.Trend[4].Checked != 4 {
		t.Errorf("trend = %+v", r.Trend)
	}
	var tl *RoleCoverage
	for i := range r.Coverage {
		if r.Coverage[i].Role == "technical-lead" {
			tl = &r.Coverage[i]
		}
	}
	if tl == nil || tl.Enforced != 1 || tl.Manual != 1 {
		t.Errorf("coverage = %+v", r.Coverage)
	}
	// Kofi is away on 25 Nov: one of two payments leads available; checkout has none.
	found := 0
	for _, bf := range r.BusFactor {
		if bf.RuleID == "technical-lead/code-review" && bf.Team == "payments" {
			found++
			if bf.Holders != 2 || bf.Available != 1 || len(bf.Away) != 1 {
				t.Errorf("payments bus factor = %+v", bf)
			}
		}
		if bf.RuleID == "technical-lead/code-review" && bf.Team == "checkout" {
			found++
			if bf.Holders != 0 || bf.Available != 0 {
				t.Errorf("checkout bus factor = %+v", bf)
			}
		}
	}
	if found != 2 {
		t.Errorf("bus factor rows missing: %+v", r.BusFactor)
	}
}

func TestRenderers(t *testing.T) {
	r := buildSample(t)
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Render(&buf, r, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out := buf.String()
		switch f {
		case "md":
			for _, want := range []string{"# Compliance report 2026-W47", "[reloadly/payments-api#2](https://bitbucket.org/reloadly/payments-api/pull-requests/2)",
				"**2 of 4 checks did not hold, 1 break-glass use: 3 things need attention.**",
				"| Technical lead: Reviews code written by the engineers in the team (technical-lead/code-review) | **1 / 2** | **0 / 1** |",
				"Raj Patel opened the production gate", "Median time to first review: 3.0 h",
				"| all teams | 3.0 h · 4.0 h (2 PRs) | 2.0 h · 2.0 h (1 PRs) |", "| Mei Chen | 1 | 3 |",
				"Who should act: Mei Chen, Kofi Mensah.", "nobody holds this role in Checkout",
				"<summary>Manual responsibilities", "- Performs technical analysis for complex problems"} {
				if !strings.Contains(out, want) {
					t.Errorf("markdown lacks %q:\n%s", want, out)
				}
			}
		case "html":
			for _, want := range []string{"<svg", "Payments: checks per week", "<desc>2026-W43: 0 checked", "Raj Patel", "payments outage hotfix",
				`href="https://bitbucket.org/reloadly/payments-api/pull-requests/2"><bdi>reloadly/<wbr>payments-<wbr>api#<wbr>2</bdi></a>`,
				`<p class="verdict attn" id="verdict">2 of 4 checks did not hold`, "<details><summary>Manual responsibilities",
				`<td class="c bad" data-label="Payments"><span class="nw">1 / 2</span>`, `median 3.0&nbsp;h · p90 4.0&nbsp;h <span class="muted">(2&nbsp;PRs)</span>`,
				"Mei Chen: asked on 3, reviewed 1"} {
				if !strings.Contains(out, want) {
					t.Errorf("html lacks %q", want)
				}
			}
			for _, bad := range []string{"<script", "src=\"http", "<link", "@import"} {
				if strings.Contains(out, bad) {
					t.Errorf("html is not self-contained: has %q", bad)
				}
			}
		case "json":
			var back Report
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if back.SchemaVersion != SchemaVersion || back.Summary != r.Summary || len(back.Teams) != len(r.Teams) {
				t.Errorf("json round trip differs: %+v", back.Summary)
			}
			if back.Verdict != r.Verdict || len(back.Attention) != 3 || back.Attention[2].Ref != "reloadly/payments-api#2" ||
				back.ReviewTimes != r.ReviewTimes || len(back.Teams[0].Trend) != 5 || len(back.Matrix.Rules) != 2 {
				t.Errorf("json lacks the version 2 facts: %+v", back)
			}
			for _, key := range []string{`"verdict"`, `"attention"`, `"who_should_act"`, `"open_hours"`, `"matrix"`, `"idle_rules"`, `"review_times"`, `"p90_hours"`} {
				if !strings.Contains(out, key) {
					t.Errorf("json lacks %s", key)
				}
			}
		case "csv":
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") || strings.Join(rows[0][:10], ",") != "week,team,rule_id,kind,subject,ref,url,occurred_at,actor,reason" {
				t.Errorf("csv header = %v", rows[0])
			}
			if rows[1][5] != "reloadly/payments-api#2" || rows[1][10] != "violation" || rows[1][13] != "Mei Chen; Kofi Mensah" {
				t.Errorf("csv first violation = %v", rows[1])
			}
			sections := map[string]int{}
			for _, row := range rows[1:] {
				sections[row[10]]++
			}
			want := map[string]int{"violation": 2, "verdict": 1, "break_glass": 1, "rule": 4, "trend": 15, "review_time": 18,
				"reviewer": 4, "coverage": 6, "manual_responsibility": 1, "bus_factor": 8}
			for k, n := range want {
				if sections[k] != n {
					t.Errorf("csv has %d %s rows, want %d (%v)", sections[k], k, n, sections)
				}
			}
		}
	}
	if err := Render(&bytes.Buffer{}, r, "pdf"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestHTMLEscapesUpstreamText(t *testing.T) {
	src := sampleSource()
	src.findings[1].Reason = `<script>alert(1)</script>`
	src.findings[1].URL = `javascript:alert(1)`
	w, _ := ParseWeek("2026-W47", time.UTC)
	r, err := Build(context.Background(), src, testOrg(), w, Options{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>") || strings.Contains(buf.String(), `href="javascript:`) {
		t.Error("html does not escape upstream text")
	}
}

// BenchmarkBuildAndRender builds and renders a week with 10,000 pull
// requests and 50,000 findings and decisions' worth of cases.
func BenchmarkBuildAndRender(b *testing.B) {
	org := testOrg()
	w, _ := ParseWeek("2026-W47", time.UTC)
	start := w.Start()
	src := &memSource{}
	accounts := []string{"acc-mei", "acc-kofi", "acc-ana", "acc-raj"}
	for i := 0; i < 10000; i++ {
		created := start.Add(time.Duration(i%(7*24*60)) * time.Minute)
		team := org.Teams[i%2].ID
		src.prs = append(src.prs, store.PRRecord{Repository: fmt.Sprintf("reloadly/repo-%d", i%20), ID: i, Team: team,
			State: model.PRMerged, Reviewers: []string{accounts[i%4], accounts[(i+1)%4]},
			Approvals: []model.Approval{{AccountID: accounts[i%4], State: model.ReviewApproved}},
			CreatedAt: created, FirstReviewAt: created.Add(time.Hour), ApprovedAt: created.Add(2 * time.Hour),
			ClosedAt: created.Add(3 * time.Hour), UpdatedAt: created.Add(3 * time.Hour)})
	}
	for i := 0; i < 50000; i++ {
		src.findings = append(src.findings, model.Finding{Key: fmt.Sprint(i), Kind: "code-review", RuleID: "technical-lead/code-review",
			Team: org.Teams[i%2].ID, Subject: model.SubjectPullRequest, Ref: fmt.Sprintf("reloadly/repo-%d#%d", i%20, i),
			URL: "https://bitbucket.org/x", Reason: "merged without approval", Held: i%10 != 0,
			OccurredAt: start.Add(time.Duration(i%(7*24*60)) * time.Minute)})
	}
	ctx := context.Background()
	now := start.AddDate(0, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Build(ctx, src, org, w, Options{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range Formats {
			if err := Render(&bytes.Buffer{}, r, f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// A break-glass through the API was done by whoever holds the admin token:
// the report says so and whom it named, never that the person named acted.
func TestBreakGlassThroughTheAdminToken(t *testing.T) {
	src := sampleSource()
	g := &src.gates[0]
	g.DecidedBy = "admin-token"
	g.Data = []byte(`{"via":"admin-token","named":"acc-raj","history":[]}`)
	w, _ := ParseWeek("2026-W47", time.UTC)
	r, err := Build(context.Background(), src, testOrg(), w, Options{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.BreakGlass) != 1 {
		t.Fatalf("break glass = %+v", r.BreakGlass)
	}
	u := r.BreakGlass[0]
	if u.ByName != "admin token, naming Raj Patel" || u.Via != "admin-token" || u.Named != "acc-raj" {
		t.Errorf("break glass = %+v, want who %q", u, "admin token, naming Raj Patel")
	}
	for _, it := range r.Attention {
		if it.Kind == AttentionBreakGlass && !strings.HasPrefix(it.What, "admin token, naming Raj Patel opened") {
			t.Errorf("attention item %q", it.What)
		}
	}
}
