package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/rules"
	"github.com/reloadly/rolekeeper/internal/store"
)

type fakeStore struct {
	pingErr    error
	gates      []store.Gate
	decisions  []store.DecisionRecord
	deliveries []store.Delivery
	lastFilter store.DecisionFilter
}

func (f *fakeStore) Ping(context.Context) error { return f.pingErr }

func (f *fakeStore) GetDecisionByPublicID(_ context.Context, id string) (*store.DecisionRecord, error) {
	for _, d := range f.decisions {
		if d.PublicID == id {
			return &d, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeStore) ListDecisions(_ context.Context, flt store.DecisionFilter) ([]store.DecisionRecord, error) {
	f.lastFilter = flt
	var out []store.DecisionRecord
	for _, d := range f.decisions {
		if (flt.Repository == "" || d.Repository == flt.Repository) && (flt.PR == 0 || d.PR == flt.PR) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeStore) GetGate(_ context.Context, id string) (*store.Gate, error) {
	for _, g := range f.gates {
		if g.ID == id {
			return &g, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeStore) ListDeliveries(_ context.Context, st store.DeliveryState, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	for _, d := range f.deliveries {
		if d.State == st {
			d.Body, d.BodyBytes = nil, len(d.Body) // lists leave bodies out (store.Inbox)
			out = append(out, d)
		}
	}
	return out, nil
}

const (
	token      = "test-api-token"
	adminToken = "test-admin-token"
)

func newTestServer(t *testing.T, st *fakeStore, apiToken, admin string) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "rolekeeper_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	s := New(Options{
		Listen: "127.0.0.1:0", PublicURL: "https://rk.example.com/", Gatherer: reg, APIToken: apiToken, AdminToken: admin, Store: st,
		Roles:  func() (bool, string) { return true, "hash abc123" },
		People: func() map[string]string { return testPeople },
		BreakGlassRole: func(_, env string) string {
			if env == "production" {
				return "cto"
			}
			return ""
		},
		Redrive: func(_ context.Context, seq int64) error {
			for i, d := range st.deliveries {
				if d.Seq == seq && d.State == store.DeliveryDead {
					st.deliveries[i].State = store.DeliveryPending
					return nil
				}
			}
			return store.ErrNotFound
		},
		Bitbucket: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }),
	})
	return s, reg
}

func do(t *testing.T, h http.Handler, method, target, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name   string
		admin  string
		method string
		path   string
		auth   string
		want   int
	}{
		{"no token configured: always 401", "", "GET", "/api/v1/decisions", "Bearer ", http.StatusUnauthorized},
		{"no token configured, even with one sent", "", "GET", "/api/v1/decisions", "Bearer x", http.StatusUnauthorized},
		{"missing header", adminToken, "GET", "/api/v1/decisions", "", http.StatusUnauthorized},
		{"wrong token", adminToken, "GET", "/api/v1/decisions", "Bearer nope", http.StatusUnauthorized},
		{"token prefix is not the token", adminToken, "GET", "/api/v1/decisions", "Bearer " + adminToken[:4], http.StatusUnauthorized},
		{"token with a suffix is not the token", adminToken, "GET", "/api/v1/decisions", "Bearer " + adminToken + "x", http.StatusUnauthorized},
		{"basic scheme", adminToken, "GET", "/api/v1/decisions", "Basic " + adminToken, http.StatusUnauthorized},
		{"right token", adminToken, "GET", "/api/v1/decisions", "Bearer " + adminToken, http.StatusOK},
		{"scheme is case-insensitive", adminToken, "GET", "/api/v1/decisions", "bearer " + adminToken, http.StatusOK},
		{"pipeline token on decisions", adminToken, "GET", "/api/v1/decisions", "Bearer " + token, http.StatusForbidden},
		{"unknown API path without token", adminToken, "GET", "/api/v1/secrets", "", http.StatusUnauthorized},
		{"unknown API path with the pipeline token", adminToken, "GET", "/api/v1/secrets", "Bearer " + token, http.StatusForbidden},
		{"unknown API path with the admin token", adminToken, "GET", "/api/v1/secrets", "Bearer " + adminToken, http.StatusNotFound},
		{"gates: another method is an admin path", adminToken, "DELETE", "/api/v1/gates/g_1", "Bearer " + token, http.StatusForbidden},
		{"mounted API route needs the token", adminToken, "POST", "/api/v1/gates", "", http.StatusUnauthorized},
		{"mounted API route with the pipeline token", adminToken, "POST", "/api/v1/gates", "Bearer " + token, http.StatusCreated},
		{"mounted API route with the admin token", adminToken, "POST", "/api/v1/gates", "Bearer " + adminToken, http.StatusCreated},
		{"mounted public route needs none", adminToken, "GET", "/public/thing", "", http.StatusOK},
		{"healthz is public", adminToken, "GET", "/healthz", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, &fakeStore{}, token, tt.admin)
			s.Mount("POST /api/v1/gates", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }))
			s.Mount("GET /public/thing", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
			rec := do(t, s.Handler(), tt.method, tt.path, tt.auth)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
			if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name      string
		pingErr   error
		roles     bool
		extra     map[string]Check
		want      int
		wantCheck map[string]bool
	}{
		{"ready", nil, true, nil, http.StatusOK, map[string]bool{"roles": true, "store": true}},
		{"store down", errors.New("database is closed"), true, nil, http.StatusServiceUnavailable, map[string]bool{"store": false}},
		{"roles not loaded", nil, false, nil, http.StatusServiceUnavailable, map[string]bool{"roles": false}},
		{"informational check failing keeps ready", nil, true, map[string]Check{"jira.story_points_field": {OK: false, Detail: "not discovered yet"}}, http.StatusOK, map[string]bool{"jira.story_points_field": false}},
		{"required extra check failing", nil, true, map[string]Check{"jira": {OK: false, Required: true}}, http.StatusServiceUnavailable, map[string]bool{"jira": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Store: &fakeStore{pingErr: tt.pingErr}, Roles: func() (bool, string) { return tt.roles, "" }})
			if tt.extra != nil {
				s.AddReadiness(func(context.Context) map[string]Check { return tt.extra })
			}
			rec := do(t, s.Handler(), "GET", "/readyz", "")
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
			var body readiness
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			for name, ok := range tt.wantCheck {
				if c, found := body.Checks[name]; !found || c.OK != ok {
					t.Errorf("check %s = %+v, want ok=%v", name, c, ok)
				}
			}
		})
	}
}

func TestMetricsAndHealth(t *testing.T) {
	s, _ := newTestServer(t, &fakeStore{}, token, adminToken)
	rec := do(t, s.Handler(), "GET", "/metrics", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "rolekeeper_test_total 1") {
		t.Errorf("metrics: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, s.Handler(), "POST", "/webhooks/bitbucket", ""); rec.Code != http.StatusAccepted {
		t.Errorf("bitbucket intake not routed: %d", rec.Code)
	}
	if rec := do(t, s.Handler(), "POST", "/webhooks/jira", ""); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("unwired jira intake: %d, want 503", rec.Code)
	}
}

const pub7 = "5f0c8e2a9b7d4c1e8a3f6b2d9c0e7a41"

func TestDecisionsAPI(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	st := &fakeStore{decisions: []store.DecisionRecord{
		{ID: 7, PublicID: pub7, Kind: model.SubjectPullRequest, Repository: "reloadly/payments-api", PR: 12, Summary: "asked Amara", Outcome: "dry-run", Decision: prDecision(t), Snapshot: json.RawMessage(`{"n":1}`), CreatedAt: at},
		{ID: 8, Kind: model.SubjectPullRequest, Repository: "reloadly/other", PR: 3, Summary: "x", CreatedAt: at},
	}}
	s, _ := newTestServer(t, st, token, adminToken)
	auth := "Bearer " + adminToken

	rec := do(t, s.Handler(), "GET", "/api/v1/decisions?repository=Reloadly/Payments-API&pr=12", auth)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	if st.lastFilter.Repository != "reloadly/payments-api" || st.lastFilter.PR != 12 {
		t.Errorf("filter %+v", st.lastFilter)
	}
	var got []struct {
		ID       int64           `json:"id"`
		URL      string          `json:"url"`
		Outcome  string          `json:"outcome"`
		Decision rules.Decision  `json:"decision"`
		Snapshot json.RawMessage `json:"snapshot"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != 7 || got[0].URL != "https://rk.example.com/decisions/"+pub7 || got[0].Outcome != "dry-run" {
		t.Fatalf("got %+v", got)
	}
	if len(got[0].Decision.Rules) != 1 || got[0].Decision.Rules[0].Reason == "" || got[0].Snapshot != nil {
		t.Errorf("decision not inline, or snapshot shown: %+v", got[0])
	}

	for _, bad := range []string{"?pr=12", "?repository=a/b&pr=x", "?limit=0", "?since=yesterday"} {
		if rec := do(t, s.Handler(), "GET", "/api/v1/decisions"+bad, auth); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, rec.Code)
		}
	}
}

func TestDeliveriesAPI(t *testing.T) {
	st := &fakeStore{deliveries: []store.Delivery{
		{Seq: 1, Source: model.SourceBitbucket, DeliveryID: "a", EventKey: "repo:push", State: store.DeliveryDead, Attempts: 8, LastError: "boom", Body: []byte("secret-ish body")},
		{Seq: 2, Source: model.SourceJira, DeliveryID: "b", State: store.DeliveryDone},
	}}
	s, _ := newTestServer(t, st, token, adminToken)
	auth := "Bearer " + adminToken

	rec := do(t, s.Handler(), "GET", "/api/v1/deliveries", auth)
	var got []DeliveryView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 1 || got[0].LastError != "boom" || got[0].Bytes != len("secret-ish body") {
		t.Errorf("dead deliveries %+v", got)
	}
	if strings.Contains(rec.Body.String(), "secret-ish") {
		t.Error("delivery body listed")
	}
	if rec := do(t, s.Handler(), "GET", "/api/v1/deliveries?state=lost", auth); rec.Code != http.StatusBadRequest {
		t.Errorf("bad state: %d", rec.Code)
	}

	tests := []struct {
		path string
		want int
	}{
		{"/api/v1/deliveries/1/redrive", http.StatusOK},
		{"/api/v1/deliveries/1/redrive", http.StatusNotFound}, // not dead any more
		{"/api/v1/deliveries/2/redrive", http.StatusNotFound},
		{"/api/v1/deliveries/x/redrive", http.StatusBadRequest},
	}
	for _, tt := range tests {
		if rec := do(t, s.Handler(), "POST", tt.path, auth); rec.Code != tt.want {
			t.Errorf("POST %s: %d, want %d", tt.path, rec.Code, tt.want)
		}
	}
	if st.deliveries[0].State != store.DeliveryPending {
		t.Errorf("redrive did not reach the inbox")
	}
}

func TestStartShutdown(t *testing.T) {
	s, _ := newTestServer(t, &fakeStore{}, token, adminToken)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "ok") {
		t.Errorf("healthz %d %s", resp.StatusCode, b)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Error("still serving after Shutdown")
	}
}
