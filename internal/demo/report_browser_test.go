package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reloadly/rolekeeper/internal/browsertest"
)

// TestWeekReportInBrowser replays the sample week and loads its HTML
// report, as the daemon serves it, in headless Chromium at a phone's and a
// laptop's width (and dark): nothing may overflow, every chart needs a
// title and a text alternative, no cell may be narrower than its longest
// word. The screenshots are saved for a person to look at.
func TestWeekReportInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	var page []byte
	replayWeek(t, func(t *testing.T, s *session) {
		var err error
		if page, err = s.daemon.weeklyReport(context.Background(), weekName, "html"); err != nil {
			t.Fatal(err)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	defer srv.Close()
	for _, v := range []struct {
		name string
		view browsertest.View
	}{
		{"390", browsertest.View{Width: 390, Screenshot: true}},
		{"1280", browsertest.View{Width: 1280, Screenshot: true}},
		{"390-dark", browsertest.View{Width: 390, Dark: true, Screenshot: true}},
	} {
		p := b.Load(t, srv.URL, v.view)
		path := browsertest.SaveScreenshot(t, p, "demo-week-report-"+v.name)
		for _, problem := range p.Problems() {
			t.Errorf("demo week report at %s: %s", v.name, problem)
		}
		if p.Charts < 4 || p.Cells < 20 || p.Words < 200 {
			t.Errorf("demo week report at %s: only %d charts, %d cells, %d words measured", v.name, p.Charts, p.Cells, p.Words)
		}
		t.Logf("demo week report at %s: %d elements, %d words, %d cells, %d charts; screenshot %s", v.name, p.Elements, p.Words, p.Cells, p.Charts, path)
	}
}
