package demo

import (
	"testing"

	"github.com/reloadly/rolekeeper/internal/browsertest"
)

// TestWeekReportInBrowser replays the sample week and opens its HTML
// report through the signed link the demo prints, as a person would: in
// headless Chromium, with no token, at a phone's and a laptop's width
// (dark mode and print are checked on the report package's pages). Nothing may overflow, every chart needs a title and a text
// alternative, no cell may be narrower than its longest word. The
// screenshots are saved for a person to look at.
func TestWeekReportInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	replayWeek(t, func(t *testing.T, s *session) {
		link, err := s.app.ReportLink(weekName)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []struct {
			name string
			view browsertest.View
		}{
			{"390", browsertest.View{Width: 390, Screenshot: true}},
			{"1280", browsertest.View{Width: 1280, Screenshot: true}},
		} {
			p := b.Load(t, link.URL, v.view)
			path := browsertest.SaveScreenshot(t, p, "demo-week-report-"+v.name)
			for _, problem := range p.Problems() {
				t.Errorf("demo week report at %s: %s", v.name, problem)
			}
			if p.Charts < 4 || p.Cells < 20 || p.Words < 200 {
				t.Errorf("demo week report at %s: only %d charts, %d cells, %d words measured (did the link open the report?)", v.name, p.Charts, p.Cells, p.Words)
			}
			t.Logf("demo week report at %s: %d elements, %d words, %d cells, %d charts; screenshot %s", v.name, p.Elements, p.Words, p.Cells, p.Charts, path)
		}
	})
}
