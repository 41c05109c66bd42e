package server

import (
	"net/http/httptest"
	"testing"

	"github.com/reloadly/rolekeeper/internal/browsertest"
)

// TestPagesInBrowser opens a decision page (rules that did and did not
// apply, a right-to-left name with markup), a Jira decision page and gate
// pages (waiting, and opened by break-glass) in headless Chromium, served
// on 127.0.0.1, at a phone's and a laptop's width, light and dark: nothing
// may overflow, every chart needs a title and a text alternative, no cell
// may be narrower than its longest word, no word may break. The
// screenshots are saved for a person to look at.
func TestPagesInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	s, _ := newTestServer(t, richStore(t), token, adminToken)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	pages := []struct {
		name, path string
		minWords   int
	}{
		{"decision-page", "/decisions/" + pubRules, 60},
		{"decision-page-issue", "/decisions/" + pubIssue, 30},
		{"gate-page", "/gates/" + pubWaiting, 80},
		{"gate-page-break-glass", "/gates/" + pubGlass, 30},
	}
	for _, pg := range pages {
		for _, v := range []struct {
			name string
			view browsertest.View
		}{
			{"390", browsertest.View{Width: 390, Screenshot: true}},
			{"1280", browsertest.View{Width: 1280, Screenshot: true}},
			{"390-dark", browsertest.View{Width: 390, Dark: true, Screenshot: true}},
		} {
			p := b.Load(t, srv.URL+pg.path, v.view)
			for _, problem := range p.Problems() {
				t.Errorf("%s at %s: %s", pg.name, v.name, problem)
			}
			if p.Words < pg.minWords {
				t.Errorf("%s at %s: only %d words measured (did the page load?)", pg.name, v.name, p.Words)
			}
			if v.view.Screenshot {
				path := browsertest.SaveScreenshot(t, p, pg.name+"-"+v.name)
				t.Logf("%s at %s: %d elements, %d words, %d cells, %d charts; screenshot %s", pg.name, v.name, p.Elements, p.Words, p.Cells, p.Charts, path)
			}
		}
	}
}
