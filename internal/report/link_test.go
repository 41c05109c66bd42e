package report

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

func TestSignedLink(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	links := NewLinks("s3cret", 0)
	u, exp, err := links.URL("https://rk.example/", "2026-W47", now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Errorf("expires %v, want 30 days on", exp)
	}
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host != "rk.example" || parsed.Path != "/reports/weekly/2026-W47.html" {
		t.Fatalf("link %s", u)
	}
	q := parsed.Query()
	if !links.Check("2026-W47", q.Get("exp"), q.Get("sig"), now) {
		t.Error("a fresh link does not check")
	}
	if links.Check("2026-W46", q.Get("exp"), q.Get("sig"), now) {
		t.Error("the signature works for another week")
	}
	later := strconv.FormatInt(exp.Unix()+3600, 10)
	if links.Check("2026-W47", later, q.Get("sig"), now) {
		t.Error("a later expiry passes with the old signature")
	}
	if links.Check("2026-W47", q.Get("exp"), q.Get("sig"), exp) {
		t.Error("the link works at its expiry")
	}
	if NewLinks("other", 0).Check("2026-W47", q.Get("exp"), q.Get("sig"), now) {
		t.Error("another secret accepts the link")
	}
	if _, _, err := (Links{}).URL("https://rk.example", "2026-W47", now); err == nil {
		t.Error("no secret signed a link")
	}
	if (Links{}).Check("2026-W47", q.Get("exp"), q.Get("sig"), now) {
		t.Error("no secret accepted a link")
	}
}

func TestLinkHandler(t *testing.T) {
	org := testOrg()
	clock := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	links := NewLinks("s3cret", 0)
	mux := http.NewServeMux()
	mux.Handle("GET "+LinkPath+"{file}", LinkHandler(links, sampleSource(), func() *roles.Org { return org }, time.UTC, "https://rk.example", now))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	good, exp, _ := links.URL(srv.URL, "2026-W47", clock)
	gu, _ := url.Parse(good)
	q := gu.Query()
	sig := q.Get("sig")
	flipped := []byte(sig)
	if flipped[0] == 'a' {
		flipped[0] = 'b'
	} else {
		flipped[0] = 'a'
	}
	base := srv.URL + LinkPath
	expired, _, _ := links.URL(srv.URL, "2026-W47", clock.Add(-31*24*time.Hour))
	tests := []struct {
		name string
		url  string
		code int
	}{
		{"signed", good, 200},
		{"unsigned", base + "2026-W47.html", 403},
		{"no expiry", base + "2026-W47.html?sig=" + sig, 403},
		{"tampered signature", base + "2026-W47.html?exp=" + q.Get("exp") + "&sig=" + string(flipped), 403},
		{"longer expiry", base + "2026-W47.html?exp=" + strconv.FormatInt(exp.Unix()+86400, 10) + "&sig=" + sig, 403},
		{"other week", base + "2026-W46.html?exp=" + q.Get("exp") + "&sig=" + sig, 403},
		{"expired", expired, 403},
		{"not a week", base + "etc-passwd.html?exp=" + q.Get("exp") + "&sig=" + sig, 403},
		{"two signatures", good + "&sig=00", 403},
		{"no .html", base + "2026-W47?exp=" + q.Get("exp") + "&sig=" + sig, 403},
	}
	for _, tt := range tests {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.code)
			continue
		}
		if tt.code == 403 && string(body) != "forbidden\n" {
			t.Errorf("%s: 403 says more than forbidden: %q", tt.name, body)
		}
		if tt.code == 200 {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "Compliance report 2026-W47") {
				t.Errorf("%s: %s %.100s", tt.name, resp.Header.Get("Content-Type"), body)
			}
			if resp.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("%s: headers %v", tt.name, resp.Header)
			}
		}
	}
	// A server without a secret refuses even a well-formed link.
	mux2 := http.NewServeMux()
	mux2.Handle("GET "+LinkPath+"{file}", LinkHandler(Links{}, sampleSource(), func() *roles.Org { return org }, time.UTC, "", now))
	srv2 := httptest.NewServer(mux2)
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + strings.TrimPrefix(good, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("no secret: %d", resp.StatusCode)
	}
}
