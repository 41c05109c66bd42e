package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// The signed delivery published with the Jenkins Bitbucket plugin.
const (
	signedFixture = "bitbucket/webhooks/repo_push__jenkins-bbs-signed.json"
	fixtureSecret = "Gkvl$k$wyNpQAF42"
	fixtureSig    = "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035"
	badSig        = "sha256=f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a036"
)

// memInbox is an in-memory Enqueuer that dedupes as the real store does.
type memInbox struct {
	mu   sync.Mutex
	down bool
	rows []store.Delivery
}

func (m *memInbox) Enqueue(_ context.Context, d *store.Delivery) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return false, errors.New("database is locked")
	}
	for _, r := range m.rows {
		if r.Source == d.Source && r.DeliveryID == d.DeliveryID {
			return false, nil
		}
	}
	d.Seq = int64(len(m.rows) + 1)
	row := *d
	row.Body = bytes.Clone(d.Body) // the intake reuses the buffer (Enqueuer)
	m.rows = append(m.rows, row)
	return true, nil
}

func (m *memInbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

// parseJSON stands in for the vendor parsers: any JSON object is an event,
// its repository.full_name the repository.
func parseJSON(key string, body []byte) (*model.Event, error) {
	var v struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	return &model.Event{Key: key, Repository: strings.ToLower(v.Repository.FullName)}, nil
}

type request struct {
	method  string
	headers map[string]string
	body    []byte
	chunked bool // no Content-Length: only MaxBytesReader can stop it
}

func bbHeaders(sig string) map[string]string {
	h := map[string]string{"X-Event-Key": "repo:push", "X-Request-UUID": "0f9c2c3e-1111-2222-3333-444455556666"}
	if sig != "" {
		h[SignatureHeader] = sig
	}
	return h
}

func TestIntake(t *testing.T) {
	signed := fixtures.Read(t, signedFixture)
	big := bytes.Repeat([]byte("x"), 4096)
	jiraBody := fixtures.Read(t, "jira/webhooks/jira_issue_created__mattermost.json")
	jiraSecret := "jira-secret"

	tests := []struct {
		name          string
		source        Source
		secrets       []string
		allowUnsigned bool
		maxBody       int64
		storeDown     bool
		reqs          []request
		wantStatus    []int
		wantStored    int
		wantOutcome   string // of the last request
	}{
		{
			name:       "signed fixture accepted, repeat is a duplicate",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{headers: bbHeaders(fixtureSig), body: signed}, {headers: bbHeaders(fixtureSig), body: signed}},
			wantStatus: []int{http.StatusAccepted, http.StatusOK}, wantStored: 1, wantOutcome: OutcomeDuplicate,
		},
		{
			name:       "one digit off is refused",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{headers: bbHeaders(badSig), body: signed}},
			wantStatus: []int{http.StatusUnauthorized}, wantOutcome: OutcomeBadSignature,
		},
		{
			name:       "missing signature is refused",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{headers: bbHeaders(""), body: signed}},
			wantStatus: []int{http.StatusUnauthorized}, wantOutcome: OutcomeBadSignature,
		},
		{
			name:       "signature of another algorithm is refused",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{headers: bbHeaders("sha1=" + strings.TrimPrefix(fixtureSig, "sha256=")), body: signed}},
			wantStatus: []int{http.StatusUnauthorized}, wantOutcome: OutcomeBadSignature,
		},
		{
			name:       "rotation: the old secret still passes beside the new one",
			secrets:    []string{"the-new-secret", fixtureSecret},
			reqs:       []request{{headers: bbHeaders(fixtureSig), body: signed}},
			wantStatus: []int{http.StatusAccepted}, wantStored: 1, wantOutcome: OutcomeAccepted,
		},
		{
			name:       "rotation done: the old secret no longer passes",
			secrets:    []string{"the-new-secret"},
			reqs:       []request{{headers: bbHeaders(fixtureSig), body: signed}},
			wantStatus: []int{http.StatusUnauthorized}, wantOutcome: OutcomeBadSignature,
		},
		{
			name:       "GET is not allowed",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{method: http.MethodGet, headers: bbHeaders(fixtureSig)}},
			wantStatus: []int{http.StatusMethodNotAllowed}, wantOutcome: OutcomeMethodNotAllowed,
		},
		{
			name:       "missing X-Event-Key",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{headers: map[string]string{"X-Request-UUID": "u1", SignatureHeader: fixtureSig}, body: signed}},
			wantStatus: []int{http.StatusBadRequest}, wantOutcome: OutcomeMissingHeader,
		},
		{
			name:       "missing X-Request-UUID",
			secrets:    []string{fixtureSecret},
			reqs:       []request{{headers: map[string]string{"X-Event-Key": "repo:push", SignatureHeader: fixtureSig}, body: signed}},
			wantStatus: []int{http.StatusBadRequest}, wantOutcome: OutcomeMissingHeader,
		},
		{
			name:       "body over the cap, with Content-Length",
			secrets:    []string{"s"},
			maxBody:    1024,
			reqs:       []request{{headers: bbHeaders(SignatureFor(big, "s")), body: big}},
			wantStatus: []int{http.StatusRequestEntityTooLarge}, wantOutcome: OutcomeTooLarge,
		},
		{
			name:       "body over the cap, chunked",
			secrets:    []string{"s"},
			maxBody:    1024,
			reqs:       []request{{headers: bbHeaders(SignatureFor(big, "s")), body: big, chunked: true}},
			wantStatus: []int{http.StatusRequestEntityTooLarge}, wantOutcome: OutcomeTooLarge,
		},
		{
			name:       "no secret configured refuses everything",
			reqs:       []request{{headers: bbHeaders(fixtureSig), body: signed}},
			wantStatus: []int{http.StatusServiceUnavailable}, wantOutcome: OutcomeUnconfigured,
		},
		{
			name:          "allow_unsigned without a secret accepts",
			allowUnsigned: true,
			reqs:          []request{{headers: bbHeaders(""), body: signed}},
			wantStatus:    []int{http.StatusAccepted}, wantStored: 1, wantOutcome: OutcomeAccepted,
		},
		{
			name:          "allow_unsigned with a secret still checks it",
			allowUnsigned: true,
			secrets:       []string{fixtureSecret},
			reqs:          []request{{headers: bbHeaders(badSig), body: signed}},
			wantStatus:    []int{http.StatusUnauthorized}, wantOutcome: OutcomeBadSignature,
		},
		{
			name:       "malformed body",
			secrets:    []string{"s"},
			reqs:       []request{{headers: bbHeaders(SignatureFor([]byte("{not json"), "s")), body: []byte("{not json")}},
			wantStatus: []int{http.StatusBadRequest}, wantOutcome: OutcomeMalformed,
		},
		{
			name:       "store down answers 503 so that the sender retries",
			secrets:    []string{fixtureSecret},
			storeDown:  true,
			reqs:       []request{{headers: bbHeaders(fixtureSig), body: signed}},
			wantStatus: []int{http.StatusServiceUnavailable}, wantOutcome: OutcomeStoreError,
		},
		{
			name:    "jira: identifier header and webhookEvent from the body",
			source:  Jira(func(b []byte) (*model.Event, error) { return parseJSON("", b) }),
			secrets: []string{jiraSecret},
			reqs: []request{
				{headers: map[string]string{"X-Atlassian-Webhook-Identifier": "j-1", SignatureHeader: SignatureFor(jiraBody, jiraSecret)}, body: jiraBody},
				{headers: map[string]string{"X-Atlassian-Webhook-Identifier": "j-1", SignatureHeader: SignatureFor(jiraBody, jiraSecret)}, body: jiraBody},
			},
			wantStatus: []int{http.StatusAccepted, http.StatusOK}, wantStored: 1, wantOutcome: OutcomeDuplicate,
		},
		{
			name:       "jira: missing identifier",
			source:     Jira(func(b []byte) (*model.Event, error) { return parseJSON("", b) }),
			secrets:    []string{jiraSecret},
			reqs:       []request{{headers: map[string]string{SignatureHeader: SignatureFor(jiraBody, jiraSecret)}, body: jiraBody}},
			wantStatus: []int{http.StatusBadRequest}, wantOutcome: OutcomeMissingHeader,
		},
		{
			name:       "jira: no webhookEvent in the body",
			source:     Jira(func(b []byte) (*model.Event, error) { return parseJSON("", b) }),
			secrets:    []string{jiraSecret},
			reqs:       []request{{headers: map[string]string{"X-Atlassian-Webhook-Identifier": "j-2", SignatureHeader: SignatureFor([]byte(`{"a":1}`), jiraSecret)}, body: []byte(`{"a":1}`)}},
			wantStatus: []int{http.StatusBadRequest}, wantOutcome: OutcomeMissingHeader,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.source
			if src.Name == "" {
				src = Bitbucket(parseJSON)
			}
			inbox := &memInbox{down: tt.storeDown}
			reg := prometheus.NewRegistry()
			core, logs := observer.New(zap.DebugLevel)
			notified := 0
			h := New(Options{
				Source: src, Secrets: tt.secrets, AllowUnsigned: tt.allowUnsigned, MaxBodyBytes: tt.maxBody,
				Store: inbox, Notify: func() { notified++ }, Logger: zap.New(core), Metrics: NewMetrics(reg),
				Now: func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) },
			})
			var last *httptest.ResponseRecorder
			for i, rq := range tt.reqs {
				method := rq.method
				if method == "" {
					method = http.MethodPost
				}
				req := httptest.NewRequest(method, "/webhooks/x", bytes.NewReader(rq.body))
				if rq.chunked {
					req.ContentLength = -1
				}
				for k, v := range rq.headers {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tt.wantStatus[i] {
					t.Fatalf("request %d: status %d, want %d (body %s)", i, rec.Code, tt.wantStatus[i], rec.Body)
				}
				last = rec
			}
			if got := inbox.count(); got != tt.wantStored {
				t.Errorf("stored %d deliveries, want %d", got, tt.wantStored)
			}
			if notified != tt.wantStored {
				t.Errorf("notified %d times, want %d", notified, tt.wantStored)
			}
			var resp map[string]string
			if err := json.Unmarshal(last.Body.Bytes(), &resp); err != nil || resp["status"] != tt.wantOutcome {
				t.Errorf("answer %s, want status %q", last.Body, tt.wantOutcome)
			}
			if last.Code == http.StatusMethodNotAllowed && last.Header().Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST")
			}
			if n := testutil.CollectAndCount(reg, "rolekeeper_webhooks_total"); n == 0 {
				t.Error("no rolekeeper_webhooks_total series")
			}
			perDelivery := append(logs.FilterMessage("webhook received").All(), logs.FilterMessage("webhook refused").All()...)
			if len(perDelivery) != len(tt.reqs) {
				t.Errorf("%d per-delivery log lines for %d deliveries", len(perDelivery), len(tt.reqs))
			}
			for _, e := range perDelivery {
				if _, ok := e.ContextMap()["delivery_id"]; !ok {
					t.Errorf("log %q without delivery_id", e.Message)
				}
			}
		})
	}
}

// TestIntakeMetricsAndLog checks the counter labels and the log fields of an
// accepted delivery, and that an unverified sender cannot pick label values.
func TestIntakeMetricsAndLog(t *testing.T) {
	signed := fixtures.Read(t, signedFixture)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	core, logs := observer.New(zap.DebugLevel)
	h := New(Options{Source: Bitbucket(parseJSON), Secrets: []string{fixtureSecret}, Store: &memInbox{}, Logger: zap.New(core), Metrics: m})

	send := func(sig, event string) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", bytes.NewReader(signed))
		req.Header.Set("X-Event-Key", event)
		req.Header.Set("X-Request-UUID", "d-"+event)
		req.Header.Set(SignatureHeader, sig)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	send(fixtureSig, "repo:push")
	send(badSig, "attacker:chosen")

	if got := testutil.ToFloat64(m.total.WithLabelValues("bitbucket", "repo:push", OutcomeAccepted)); got != 1 {
		t.Errorf("accepted counter = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.total.WithLabelValues("bitbucket", "unknown", OutcomeBadSignature)); got != 1 {
		t.Errorf("bad signature counter = %v, want 1", got)
	}
	var want struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(signed, &want)
	stored := logs.FilterMessage("webhook received").All()
	if len(stored) != 1 {
		t.Fatalf("%d 'webhook stored' lines", len(stored))
	}
	if stored[0].Level != zap.DebugLevel {
		t.Errorf("accepted delivery logged at %v, want debug", stored[0].Level)
	}
	f := stored[0].ContextMap()
	if f["delivery_id"] != "d-repo:push" || f["event"] != "repo:push" || f["repo"] != strings.ToLower(want.Repository.FullName) || f["repo"] == "" {
		t.Errorf("log fields %v", f)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"a":1}`)
	tests := []struct {
		name    string
		header  string
		secrets []string
		ok      bool
	}{
		{"match", SignatureFor(body, "k"), []string{"k"}, true},
		{"second secret matches", SignatureFor(body, "old"), []string{"new", "old"}, true},
		{"upper-case hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(SignatureFor(body, "k"), "sha256=")), []string{"k"}, true},
		{"wrong secret", SignatureFor(body, "k"), []string{"x"}, false},
		{"empty", "", []string{"k"}, false},
		{"no prefix", strings.TrimPrefix(SignatureFor(body, "k"), "sha256="), []string{"k"}, false},
		{"truncated", SignatureFor(body, "k")[:20], []string{"k"}, false},
		{"not hex", "sha256=zz", []string{"k"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.header, body, tt.secrets)
			if (err == nil) != tt.ok {
				t.Errorf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
