package report

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/browsertest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Hostile text: markup of every format, right-to-left names with
// direction overrides, long hyphenated names.
const (
	hostileTeam   = `Payments <b>Core</b> *Team* {color:red}red{color} [x](javascript:alert(1))`
	hostileName   = "مريم العلي \u202Egnp.exe <img src=x onerror=alert(1)>"
	hostileReason = `merged by <script>alert(1)</script> **now** [~accountid:acc-raj] {noformat}x{noformat} | pipe`
	longRepo      = "reloadly/international-payments-gateway-settlement-reconciliation-service"
)

// hostileReport is the sample week with upstream text at its worst.
func hostileReport(t *testing.T) *Report {
	t.Helper()
	org := testOrg()
	org.Teams[0].Name = hostileTeam
	org.People[0].Name = hostileName
	org.Roles[0].Responsibilities[1].Text = "Performs technical analysis for *complex* problems <i>and</i> {code}documents{code} them"
	org.Index()
	src := sampleSource()
	src.findings[1].Reason = hostileReason
	src.findings[1].Ref = longRepo + "#1234"
	src.findings[1].URL = "https://bitbucket.org/" + longRepo + "/pull-requests/1234"
	src.gates = append(src.gates, store.Gate{ID: "g3", Repository: longRepo, Commit: "fedcba9876543210fedcba9876543210fedcba98",
		Environment: "production", State: store.GatePending, Team: "payments", RuleID: "product-owner/deploy-approval",
		Approvers: []string{"acc-ana", "acc-mei"}, CreatedAt: time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC),
		Data:      []byte(`{"decision_public_id":"fedcba9876543210fedcba9876543210"}`),
		ExpiresAt: time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)})
	src.prs = append(src.prs, store.PRRecord{Repository: longRepo, ID: 1234, Team: "payments", State: model.PROpen,
		Reviewers: []string{"acc-mei", "acc-ana"}, CreatedAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
		UpdatedAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)})
	w, _ := ParseWeek("2026-W47", time.UTC)
	r, err := Build(context.Background(), src, org, w, Options{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), PublicURL: "https://rk.example"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func emptyReport(t *testing.T) *Report {
	t.Helper()
	w, _ := ParseWeek("2026-W47", time.UTC)
	r, err := Build(context.Background(), &memSource{}, testOrg(), w, Options{Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReportInBrowser loads the HTML report in headless Chromium at a
// phone's and a laptop's width, dark, and as printed on A4, and checks
// what a reader would trip over. Screenshots go to the artifact directory.
func TestReportInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	reports := map[string]*Report{"sample": buildSample(t), "hostile": hostileReport(t), "empty": emptyReport(t)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := reports[strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/"), ".html")]
		if r == nil {
			http.NotFound(w, req)
			return
		}
		var buf bytes.Buffer
		if err := HTML(&buf, r); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	}))
	defer srv.Close()

	loads := []struct {
		report, name string
		view         browsertest.View
	}{
		{"sample", "390", browsertest.View{Width: 390, Screenshot: true}},
		{"sample", "1280", browsertest.View{Width: 1280, Screenshot: true}},
		{"sample", "390-dark", browsertest.View{Width: 390, Dark: true, Screenshot: true}},
		{"sample", "a4-print", browsertest.View{Width: 700, Print: true, Screenshot: true}},
		{"hostile", "390", browsertest.View{Width: 390, Screenshot: true}},
		{"hostile", "1280", browsertest.View{Width: 1280}},
		{"empty", "390", browsertest.View{Width: 390, Screenshot: true}},
	}
	for _, l := range loads {
		name, v := l.report, l
		p := b.Load(t, srv.URL+"/"+name+".html", v.view)
		for _, problem := range p.Problems() {
			t.Errorf("%s at %s: %s", name, v.name, problem)
		}
		// A measurement that saw nothing proves nothing.
		if p.Words < 50 || p.Elements < 30 {
			t.Errorf("%s at %s: measured only %d words in %d elements", name, v.name, p.Words, p.Elements)
		}
		if name != "empty" && (p.Charts < 3 || p.Cells < 10) {
			t.Errorf("%s at %s: %d charts and %d table cells, want the trend, load and coverage charts and tables", name, v.name, p.Charts, p.Cells)
		}
		shot := ""
		if v.view.Screenshot {
			shot = "; screenshot " + browsertest.SaveScreenshot(t, p, "report-"+name+"-"+v.name)
		}
		t.Logf("%s at %s: %d elements, %d words, %d cells, %d charts%s", name, v.name, p.Elements, p.Words, p.Cells, p.Charts, shot)
	}

	// The measurement itself fails a page with the faults the report had: a
	// table too wide for a phone, a cell breaking a name letter by letter,
	// a chart without a title or text alternative.
	faulty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1"><body>
<table style="width:100%"><tr><td style="overflow-wrap:anywhere;width:1px">reloadly/checkout-service#2</td><td>` + strings.Repeat("filler text ", 40) + `</td></tr></table>
<div style="width:600px">wide</div>
<svg viewBox="0 0 10 10" width="10"><rect width="10" height="10"/></svg></body>`))
	}))
	defer faulty.Close()
	p := b.Load(t, faulty.URL, browsertest.View{Width: 390})
	if len(p.Overflows) == 0 || len(p.Untitled) == 0 || len(p.Undescribed) == 0 || len(p.NarrowCells) == 0 || len(p.BrokenWords) == 0 {
		t.Errorf("the check missed a fault: %+v", p)
	}
}
