package demo

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/browsertest"
)

// TestDecisionAndGatePagesInBrowser replays the sample week and opens, as
// a person following a link would (no token), the latest decision of the
// refunds pull request and the public page of the production gate, in
// headless Chromium at a phone's and a laptop's width: nothing may
// overflow, no cell may be narrower than its longest word, no word may
// break. The screenshots are saved for a person to look at.
func TestDecisionAndGatePagesInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	replayWeek(t, func(t *testing.T, s *session) {
		ctx := context.Background()
		prs, err := s.daemon.decisions(ctx, url.Values{"repository": {repoPayments}, "pr": {strconv.Itoa(s.replay.prs["refunds"])}})
		if err != nil || len(prs) == 0 {
			t.Fatalf("decisions of the refunds pull request: %v (%d)", err, len(prs))
		}
		gates, err := s.daemon.decisions(ctx, url.Values{"kind": {"gate"}})
		if err != nil || len(gates) == 0 {
			t.Fatalf("gate decisions: %v (%d)", err, len(gates))
		}
		pages := []struct{ name, url, want string }{
			{"demo-decision-page", prs[len(prs)-1].URL, "Rules that applied"},
			{"demo-gate-page", s.daemon.base + "/gates/" + gates[0].PublicID, "Approved by"},
		}
		for _, pg := range pages {
			for _, width := range []int64{390, 1280} {
				p := b.Load(t, pg.url, browsertest.View{Width: width, Screenshot: true})
				name := pg.name + "-" + strconv.FormatInt(width, 10)
				path := browsertest.SaveScreenshot(t, p, name)
				for _, problem := range p.Problems() {
					t.Errorf("%s: %s", name, problem)
				}
				if p.Words < 40 {
					t.Errorf("%s: only %d words (did the page open?)", name, p.Words)
				}
				t.Logf("%s: %d elements, %d words, %d cells; screenshot %s", name, p.Elements, p.Words, p.Cells, path)
			}
			// Without a token, as the person clicking the link.
			resp, err := http.Get(pg.url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), pg.want) {
				t.Errorf("%s: %d, lacks %q", pg.url, resp.StatusCode, pg.want)
			}
		}
	})
}
