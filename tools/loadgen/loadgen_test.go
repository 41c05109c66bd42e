package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/replicatest"
)

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, .5, 0},
		{"one", ms(7), .99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), .5, 2 * time.Millisecond},
		{"p90 of ten is the ninth", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), .9, 9 * time.Millisecond},
		{"p99 of ten is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), .99, 10 * time.Millisecond},
		{"max", ms(1, 5, 9), 1, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.q, got, tt.want)
			}
		})
	}
}

func TestBareHandler(t *testing.T) {
	const secret = "s3cret"
	body := []byte(`{"pullrequest":{"id":1}}`)
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    int
	}{
		{"signed", http.MethodPost, map[string]string{"X-Hub-Signature": bitbuckettest.Sign(secret, body)}, http.StatusAccepted},
		{"other secret", http.MethodPost, map[string]string{"X-Hub-Signature": bitbuckettest.Sign("other", body)}, http.StatusUnauthorized},
		{"no signature", http.MethodPost, nil, http.StatusUnauthorized},
		{"not hex", http.MethodPost, map[string]string{"X-Hub-Signature": "sha256=zz"}, http.StatusUnauthorized},
		{"no delivery id", http.MethodPost, map[string]string{"X-Request-UUID": "", "X-Hub-Signature": bitbuckettest.Sign(secret, body)}, http.StatusBadRequest},
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed},
	}
	h := bareHandler(secret, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/webhooks/bitbucket", strings.NewReader(string(body)))
			req.Header.Set("X-Event-Key", "pullrequest:created")
			req.Header.Set("X-Request-UUID", "{1}")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

// TestRunLoad fires a corpus at the bare server: every delivery is sent
// once and answered, signed ones 202, ones signed with another secret 401.
func TestRunLoad(t *testing.T) {
	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	if err := replicatest.AddPeople(bb); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, serverSecret string
		want               int
	}{
		{"same secret", "k1", http.StatusAccepted},
		{"other secret", "k2", http.StatusUnauthorized},
	}
	c := newCorpus(bb, "k1", replicatest.Repo, 5)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := startBare(tt.serverSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			ds := c.take(200)
			r := runLoad(context.Background(), tt.name, srv.URL(), ds, 4, time.Minute, 0)
			if r.Sent != len(ds) || len(r.Latency) != len(ds) || r.Codes[tt.want] != len(ds) {
				t.Errorf("sent %d, answered %d, codes %s; want %d answered %d", r.Sent, len(r.Latency), r.CodeString(), len(ds), tt.want)
			}
			if r.RPS() <= 0 || r.Percentile(.5) <= 0 || r.Percentile(.5) > r.Percentile(1) {
				t.Errorf("rps %v, p50 %v, max %v", r.RPS(), r.Percentile(.5), r.Percentile(1))
			}
		})
	}
}

// --rate paces the sends: delivery i is not sent before i/rate, so the run
// lasts at least (n-1)/rate, however fast the server answers.
func TestRunLoadPaced(t *testing.T) {
	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	if err := replicatest.AddPeople(bb); err != nil {
		t.Fatal(err)
	}
	srv, err := startBare("k", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ds := newCorpus(bb, "k", replicatest.Repo, 5).take(41)
	const rate = 200.0
	r := runLoad(context.Background(), "paced", srv.URL(), ds, 4, time.Minute, rate)
	if len(r.Latency) != len(ds) || r.Codes[http.StatusAccepted] != len(ds) {
		t.Fatalf("answered %d, codes %s; want %d × 202", len(r.Latency), r.CodeString(), len(ds))
	}
	if least := time.Duration(float64(len(ds)-1) / rate * float64(time.Second)); r.Elapsed < least {
		t.Errorf("%d deliveries at %v/s took %v, less than %v: not paced", len(ds), rate, r.Elapsed, least)
	}
}

func TestCorpusTake(t *testing.T) {
	bb := bitbuckettest.New()
	t.Cleanup(bb.Close)
	if err := replicatest.AddPeople(bb); err != nil {
		t.Fatal(err)
	}
	c := newCorpus(bb, "k", replicatest.Repo, 3)
	got := append(c.take(2), c.take(5)...)
	wantKeys := []string{"pullrequest:created", "pullrequest:created", "pullrequest:created",
		"pullrequest:updated", "pullrequest:updated", "pullrequest:updated", "pullrequest:updated"}
	wantPRs := []int{1, 2, 3, 1, 2, 3, 1}
	seen := map[string]bool{}
	for i, d := range got {
		if d.EventKey != wantKeys[i] || d.PR != wantPRs[i] {
			t.Errorf("delivery %d: %s about #%d, want %s about #%d", i, d.EventKey, d.PR, wantKeys[i], wantPRs[i])
		}
		if seen[d.UUID] {
			t.Errorf("delivery %d: id %s repeated", i, d.UUID)
		}
		seen[d.UUID] = true
		if d.Signature != bitbuckettest.Sign("k", d.Body) {
			t.Errorf("delivery %d: signature does not match the body", i)
		}
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/webhooks/bitbucket", true},
		{"http://localhost:8080/webhooks/bitbucket", true},
		{"http://[::1]:8080/webhooks/bitbucket", true},
		{"http://127.0.0.2:8080/", true},
		{"http://10.0.0.1:8080/", false},
		{"https://example.com/webhooks/bitbucket", false},
		{"ftp://127.0.0.1/", false},
	}
	for _, tt := range tests {
		if err := loopback(tt.url); (err == nil) != tt.ok {
			t.Errorf("loopback(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 16 connections\n" +
		"WRK requests=5000 duration_us=5000000 p50_us=1500 p90_us=4000 p99_us=12000 max_us=30000 status_errors=2 socket_errors=1\n"
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 5000, Duration: 5 * time.Second, P50: 1500 * time.Microsecond, P90: 4 * time.Millisecond,
		P99: 12 * time.Millisecond, Max: 30 * time.Millisecond, StatusErrors: 2, SocketErrors: 1}
	if got != want {
		t.Errorf("parseWrk = %+v, want %+v", got, want)
	}
	if got.RPS() != 1000 {
		t.Errorf("rps %v, want 1000", got.RPS())
	}
	if _, err := parseWrk("no summary"); err == nil {
		t.Error("parseWrk without a summary line: no error")
	}
}

func TestCheckOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"neither url nor spawn", []string{}, 2},
		{"both", []string{"--spawn", "--url", "http://127.0.0.1:1/"}, 2},
		{"remote url", []string{"--url", "http://192.0.2.1/", "--secret", "x"}, 2},
		{"upstream without spawn", []string{"--url", "http://127.0.0.1:1/", "--secret", "x", "--upstream"}, 2},
		{"bad store", []string{"--spawn", "--store", "mysql"}, 2},
		{"bad floor", []string{"--spawn", "--floor", "tmpfs"}, 2},
		{"unbounded duration", []string{"--spawn", "--duration", "1h"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			if got := run(context.Background(), tt.args, &out, &errb); got != tt.want {
				t.Errorf("exit %d, want %d (%s)", got, tt.want, errb.String())
			}
		})
	}
}

func TestMerge(t *testing.T) {
	a := result{Name: "x", Sent: 3, Elapsed: time.Second, Latency: []time.Duration{1, 5, 9},
		Codes: map[int]int{202: 2, 503: 1}, Failures: map[string]int{}}
	b := result{Name: "x", Sent: 3, Elapsed: 2 * time.Second, Latency: []time.Duration{2, 3},
		Codes: map[int]int{202: 2}, Failures: map[string]int{"reset": 1}}
	got := merge(merge(result{Name: "x"}, a), b)
	if got.Sent != 6 || got.Elapsed != 3*time.Second || got.RPS() != 5.0/3 {
		t.Errorf("sent %d elapsed %v rps %v", got.Sent, got.Elapsed, got.RPS())
	}
	if want := []time.Duration{1, 2, 3, 5, 9}; !slices.Equal(got.Latency, want) {
		t.Errorf("latency %v, want %v (sorted)", got.Latency, want)
	}
	if got.CodeString() != "202:4 503:1 reset:1" {
		t.Errorf("codes %q", got.CodeString())
	}
}

// wrk sends what Bitbucket would: the body and signature it was given and
// a random version-4 UUID per request, none repeated, across threads and
// across runs (not numbered in order, which spares the store's index the
// random writes real deliveries cost it). Needs wrk on PATH.
func TestWrkScriptSendsRandomUUIDs(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install wrk): the script is not run")
	}
	d := replicatest.Delivery{EventKey: "pullrequest:updated", Body: []byte(`{"k":1}`), Signature: "sha256=abc"}
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) != string(d.Body) || r.Header.Get("X-Hub-Signature") != d.Signature || r.Header.Get("X-Event-Key") != d.EventKey {
			http.Error(w, "not the delivery", http.StatusBadRequest)
			return
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("X-Request-UUID"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	for run := range 2 {
		res, err := runWrk(context.Background(), t.TempDir(), srv.URL, d, 2, 4, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests == 0 || res.StatusErrors != 0 {
			t.Fatalf("run %d: %+v", run, res)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	v4 := regexp.MustCompile(`^\{[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\}$`)
	seen := map[string]bool{}
	for _, id := range ids {
		if !v4.MatchString(id) {
			t.Fatalf("X-Request-UUID %q is not a version-4 UUID in braces", id)
		}
		if seen[id] {
			t.Fatalf("X-Request-UUID %q sent twice (of %d)", id, len(ids))
		}
		seen[id] = true
	}
	if len(ids) < 200 {
		t.Fatalf("only %d requests", len(ids))
	}
	if slices.IsSorted(ids[:100]) || slices.IsSorted(ids[len(ids)-100:]) {
		t.Error("ids sent in order: numbered, not random")
	}
}
