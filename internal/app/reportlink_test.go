package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestReportLink: the signed link opens the week's HTML report with no
// token; the same URL tampered with, or without its signature, gets 403.
func TestReportLink(t *testing.T) {
	e := startApp(t)
	link, err := e.app.ReportLink("2026-W45")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link.URL, "https://rk.example.com/reports/weekly/2026-W45.html?") {
		t.Fatalf("link %s", link.URL)
	}
	path := strings.TrimPrefix(link.URL, "https://rk.example.com")
	if code, body := e.get(path, false); code != http.StatusOK || !strings.Contains(body, "Compliance report <span class=\"nw\">2026-W45</span>") {
		t.Errorf("signed link: %d %.200s", code, body)
	}
	for _, bad := range []string{
		"/reports/weekly/2026-W45.html",
		strings.Replace(path, "2026-W45", "2026-W44", 1),
		path[:len(path)-1] + map[bool]string{true: "1", false: "0"}[path[len(path)-1] == '0'],
	} {
		if code, body := e.get(bad, false); code != http.StatusForbidden || body != "forbidden\n" {
			t.Errorf("GET %s = %d %q, want 403", bad, code, body)
		}
	}
}

// TestWeeklyJobLogsReportLink: the weekly job logs the signed link of the
// week it reports, and the link opens that report.
func TestWeeklyJobLogsReportLink(t *testing.T) {
	e := startApp(t)
	if err := e.app.deliverWeeklyReport(context.Background()); err != nil {
		t.Fatal(err)
	}
	logged := e.logs.FilterMessage("weekly report link").All()
	if len(logged) != 1 {
		t.Fatalf("%d link logs", len(logged))
	}
	u, _ := logged[0].ContextMap()["url"].(string)
	if !strings.HasPrefix(u, "https://rk.example.com/reports/weekly/") {
		t.Fatalf("logged link %q", u)
	}
	if code, _ := e.get(strings.TrimPrefix(u, "https://rk.example.com"), false); code != http.StatusOK {
		t.Errorf("logged link answers %d", code)
	}
}
