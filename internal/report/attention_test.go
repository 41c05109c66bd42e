package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store"
)

func TestAttentionAndMatrix(t *testing.T) {
	r := hostileReport(t)
	if r.SchemaVersion != 2 {
		t.Errorf("schema version %d", r.SchemaVersion)
	}
	// Newest first: the waiting gate (Sun 22 Nov), the break-glass use
	// (Fri 20), then the violations (Thu 19, Wed 18).
	var kinds []string
	for _, it := range r.Attention {
		kinds = append(kinds, it.Kind)
	}
	if strings.Join(kinds, ",") != "gate_waiting,break_glass,violation,violation" {
		t.Fatalf("attention kinds = %v", kinds)
	}
	gate := r.Attention[0]
	if strings.Join(gate.WhoShouldAct, "|") != "Ana Souza|"+hostileName || gate.RoleTitle != "Product owner" ||
		gate.Responsibility != "Performs and oversees production deployments" || gate.URL != "https://rk.example/gates/fedcba9876543210fedcba9876543210" ||
		gate.OpenHours != 66 || !strings.Contains(gate.Action, "Sun 29 Nov 18:00 UTC") {
		t.Errorf("gate item = %+v", gate)
	}
	// The break-glass use has no rule: the report's recipients should act.
	if bg := r.Attention[1]; strings.Join(bg.WhoShouldAct, ",") != "Raj Patel" || !strings.Contains(bg.Action, "PAY-99") {
		t.Errorf("break-glass item = %+v", bg)
	}
	// Nobody holds the technical lead role in checkout: said, not hidden.
	if v := r.Attention[2]; v.Team != "checkout" || len(v.WhoShouldAct) != 0 || v.OpenHours != 147 {
		t.Errorf("checkout violation = %+v", v)
	}
	if v := r.Attention[3]; v.Ref != longRepo+"#1234" || strings.Join(v.WhoShouldAct, ",") != hostileName+",Kofi Mensah" || v.RoleTitle != "Technical lead" {
		t.Errorf("payments violation = %+v", v)
	}
	if !strings.Contains(r.Verdict, "2 of 4 checks did not hold, 1 break-glass use, 1 gate still waiting: 4 things need attention") {
		t.Errorf("verdict = %q", r.Verdict)
	}
	if strings.Join(r.Matrix.Rules, ",") != "technical-lead/code-review,product-owner/deploy-approval" || len(r.Matrix.Idle) != 0 {
		t.Errorf("matrix = %+v", r.Matrix)
	}
	// Per team trend: payments had a violation in W46 and 1+1 in W47.
	pay := r.Teams[0]
	if len(pay.Trend) != 5 || pay.Trend[3].Violated != 1 || pay.Trend[4].Checked != 3 || r.Teams[1].Trend[4].Checked != 1 {
		t.Errorf("team trends = %+v / %+v", pay.Trend, r.Teams[1].Trend)
	}
	// Review times: payments 2h (PR 1); checkout 4h (PR 7); all: 2h, 4h.
	if rt := r.ReviewTimes.FirstReview; rt.MedianHours != 3 || rt.P90Hours != 4 || rt.Samples != 2 {
		t.Errorf("org first review = %+v", rt)
	}
	if rt := pay.ReviewTimes.FirstReview; rt.MedianHours != 2 || rt.Samples != 1 {
		t.Errorf("payments first review = %+v", rt)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{10, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if p := percentile(xs, 0.9); p != 9 {
		t.Errorf("p90 of 1..10 = %v, want 9", p)
	}
	if p := percentile([]float64{5}, 0.9); p != 5 {
		t.Errorf("p90 of one = %v", p)
	}
	if p := percentile(nil, 0.9); p != 0 {
		t.Errorf("p90 of none = %v", p)
	}
}

// TestBadInputRendersAsText: names, titles and reasons holding HTML,
// Markdown, Jira markup or direction overrides show as the text they are
// in every format.
func TestBadInputRendersAsText(t *testing.T) {
	r := hostileReport(t)
	render := func(f string) string {
		var buf bytes.Buffer
		if err := Render(&buf, r, f); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	page := render("html")
	for _, bad := range []string{"<script>", "<img", "<b>Core", "\u202e", `href="javascript:`} {
		if strings.Contains(page, bad) {
			t.Errorf("html carries %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "Payments &lt;b&gt;Core&lt;/b&gt;", "<bdi>مريم العلي gnp.exe &lt;img"} {
		if !strings.Contains(page, want) {
			t.Errorf("html lacks %q", want)
		}
	}

	md := render("md")
	for _, bad := range []string{"<script>", "**now**", "[~accountid:acc-raj]", "[x](javascript", "<b>", "\u202e", "} | pipe"} {
		if strings.Contains(md, bad) {
			t.Errorf("markdown carries %q", bad)
		}
	}
	for _, want := range []string{`&lt;script&gt;`, `\*\*now\*\*`, `\[\~accountid:acc-raj\]`, `\| pipe`, "\u2068مريم العلي gnp.exe &lt;img"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}

	var wiki bytes.Buffer
	if err := JiraWiki(&wiki, r, Link{}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"{noformat}", "[~accountid:acc-raj]", "{color:red}", "*Team*", "} | pipe"} {
		if strings.Contains(wiki.String(), bad) {
			t.Errorf("jira body carries %q:\n%s", bad, wiki.String())
		}
	}
	for _, want := range []string{`\{noformat\}`, `\[\~accountid:acc\-raj\]`, `\{color:red\}`, `\*Team\*`} {
		if !strings.Contains(wiki.String(), want) {
			t.Errorf("jira body lacks %q", want)
		}
	}

	rows, err := csv.NewReader(strings.NewReader(render("csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, row := range rows {
		for _, cell := range row {
			if strings.ContainsRune(cell, '\u202e') {
				t.Errorf("csv keeps a direction override: %q", cell)
			}
			found = found || cell == hostileReason
		}
	}
	if !found {
		t.Error("csv does not carry the reason verbatim")
	}
	var back Report
	if err := json.Unmarshal([]byte(render("json")), &back); err != nil || back.Attention[3].What != hostileReason {
		t.Errorf("json does not carry the reason verbatim: %v", err)
	}
}

// TestEmptyWeek: a week with nothing recorded says so in every format and
// draws no empty chart.
func TestEmptyWeek(t *testing.T) {
	r := emptyReport(t)
	if !r.Empty || !strings.HasPrefix(r.Verdict, "Nothing was recorded this week") || len(r.Attention) != 0 || len(r.Matrix.Rules) != 0 {
		t.Fatalf("empty week = %+v", r)
	}
	var page, md, wiki bytes.Buffer
	if err := HTML(&page, r); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := JiraWiki(&wiki, r, Link{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Nothing was recorded this week", "no trend to draw", "review times are not measured", "Nobody was asked to review", "No rule had anything to check"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(page.String(), "class=\"chart trend\"") || strings.Contains(page.String(), "asked on") {
		t.Error("html draws empty charts")
	}
	for _, want := range []string{"Nothing was recorded this week", "No checks were recorded in these five weeks", "review times are not measured"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if !strings.Contains(wiki.String(), "Nothing was recorded this week") {
		t.Errorf("jira body: %s", wiki.String())
	}
}

// TestQuietTeamInOneLine: a team with no check in five weeks is named in
// one line, not drawn as an empty chart.
func TestQuietTeamInOneLine(t *testing.T) {
	org := testOrg()
	org.Teams = append(org.Teams, &roles.Team{ID: "platform", Name: "Platform"})
	org.Index()
	w, _ := ParseWeek("2026-W47", time.UTC)
	r, err := Build(context.Background(), sampleSource(), org, w, Options{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := HTML(&page, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "No checks in these five weeks: <bdi>Platform</bdi>.") ||
		strings.Count(page.String(), `class="chart trend"`) != 2 {
		t.Errorf("quiet team: %d trend charts", strings.Count(page.String(), `class="chart trend"`))
	}
}

// TestGatePageLink: a gate's link is its public page, through its latest
// decision's public id; without one there is no link (never the API's,
// which answers 401 to a reader).
func TestGatePageLink(t *testing.T) {
	for _, c := range []struct {
		data, public, want string
	}{
		{`{"decision_public_id":"0123456789abcdef0123456789abcdef"}`, "https://rk.example", "https://rk.example/gates/0123456789abcdef0123456789abcdef"},
		{`{"decision_public_id":"0123456789abcdef0123456789abcdef"}`, "", ""},
		{`{"decision_public_id":"42"}`, "https://rk.example", ""},
		{`{}`, "https://rk.example", ""},
		{``, "https://rk.example", ""},
	} {
		if got := gatePage(c.public, store.Gate{ID: "g1", Data: []byte(c.data)}); got != c.want {
			t.Errorf("gatePage(%q, %s) = %q, want %q", c.public, c.data, got, c.want)
		}
	}
}
