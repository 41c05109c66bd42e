package report

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

func TestWriteFiles(t *testing.T) {
	r := buildSample(t)
	dir := filepath.Join(t.TempDir(), "reports")
	paths, err := WriteFiles(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(Formats) {
		t.Fatalf("paths = %v", paths)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", p, err, len(b))
		}
		if !strings.Contains(filepath.Base(p), "2026-W47") {
			t.Errorf("file name %s lacks the week", p)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(Formats) {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

type fakeFiler struct {
	mu       sync.Mutex
	created  []string // project|summary|assignee
	bodies   []string
	attached []string
	failOn   string
}

func (f *fakeFiler) CreateReportIssue(_ context.Context, project, summary, body, assignee string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, project+"|"+summary+"|"+assignee)
	f.bodies = append(f.bodies, body)
	return project + "-1", nil
}

func (f *fakeFiler) AddAttachment(_ context.Context, key, name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.HasPrefix(string(data), "<!doctype html>") {
		return os.ErrInvalid
	}
	f.attached = append(f.attached, key+"|"+name)
	return nil
}

type memMarks struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *memMarks) PutIfAbsent(_ context.Context, k, v string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[k]; ok {
		return false, nil
	}
	m.m[k] = v
	return true, nil
}
func (m *memMarks) Get(_ context.Context, k string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok, nil
}
func (m *memMarks) Set(_ context.Context, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[k] = v
	return nil
}

func TestDeliverToJira(t *testing.T) {
	org := testOrg()
	org.Rules[2].Project = "PLAT"
	r := buildSample(t)
	filer := &fakeFiler{}
	marks := &memMarks{m: map[string]string{}}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	link := Link{URL: "https://rk.example/reports/weekly/2026-W47.html?exp=1&sig=ab", Expires: now.Add(LinkTTL)}
	key, err := DeliverToJira(context.Background(), filer, marks, org, r, "", now, link)
	if err != nil {
		t.Fatal(err)
	}
	if key != "PLAT-1" || len(filer.created) != 1 || !strings.HasSuffix(filer.created[0], "|acc-raj") {
		t.Fatalf("created = %v, key %s", filer.created, key)
	}
	if !strings.Contains(filer.bodies[0], "h2. Compliance report 2026-W47") || !strings.Contains(filer.bodies[0], "[~accountid:acc-raj]") ||
		!strings.Contains(filer.bodies[0], "[Read the full report|"+link.URL+"]") || !strings.Contains(filer.bodies[0], "*"+jiraEscape(r.Verdict)+"*") {
		t.Errorf("body = %s", filer.bodies[0])
	}
	if len(filer.attached) != 1 || filer.attached[0] != "PLAT-1|rolekeeper-report-2026-W47.html" {
		t.Errorf("attached = %v", filer.attached)
	}
	// The weekly job running again files nothing new.
	key2, err := DeliverToJira(context.Background(), filer, marks, org, r, "", now, link)
	if err != nil || key2 != "PLAT-1" || len(filer.created) != 1 {
		t.Errorf("second delivery: key %s err %v created %v", key2, err, filer.created)
	}
	// The configured project wins over the rule's; no project at all: nothing.
	org.Rules[2].Project = ""
	r.Week = "2026-W46"
	if key, err := DeliverToJira(context.Background(), filer, marks, org, r, "", now, Link{}); key != "" || err != nil {
		t.Errorf("no project: key %q err %v", key, err)
	}
	if key, _ := DeliverToJira(context.Background(), filer, marks, org, r, "OPS", now, Link{}); key != "OPS-1" {
		t.Errorf("configured project: key %q", key)
	}
}

func TestRecipientsSkipAway(t *testing.T) {
	org := testOrg()
	raj := org.Person("raj")
	raj.Away = []roles.Period{{From: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}}
	if _, people := Recipients(org, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)); len(people) != 0 {
		t.Errorf("away recipient kept: %v", people)
	}
	if _, people := Recipients(org, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)); len(people) != 1 {
		t.Errorf("recipients = %v", people)
	}
}

func TestHandler(t *testing.T) {
	org := testOrg()
	now := func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	srv := httptest.NewServer(Handler(sampleSource(), func() *roles.Org { return org }, time.UTC, "", now))
	defer srv.Close()
	tests := []struct {
		query    string
		code     int
		ctype    string
		contains string
	}{
		{"", 200, "application/json", `"week": "2026-W47"`},
		{"?week=2026-W47&format=md", 200, "text/markdown", "# Compliance report 2026-W47"},
		{"?week=2026-W47&format=html", 200, "text/html", "<svg"},
		{"?week=2026-W47&format=csv", 200, "text/csv", "reloadly/payments-api#2"},
		{"?week=2026-47", 400, "application/json", "want YYYY-Www"},
		{"?format=pdf", 400, "application/json", "format must be"},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		buf := make([]byte, 1<<16)
		for {
			n, err := resp.Body.Read(buf)
			body.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(body.String(), tt.contains) {
			t.Errorf("GET %s = %d %s, body %.200s", tt.query, resp.StatusCode, resp.Header.Get("Content-Type"), body.String())
		}
		if tt.code == 400 {
			var e map[string]string
			if json.Unmarshal([]byte(body.String()), &e) != nil || e["error"] == "" {
				t.Errorf("error body not JSON: %s", body.String())
			}
		}
	}
}
