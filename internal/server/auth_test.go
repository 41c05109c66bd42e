package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/reloadly/rolekeeper/internal/apiauth"
	"github.com/reloadly/rolekeeper/internal/store"
)

// TestRouteTokenMatrix: every /api/v1 route, with no token, a wrong one,
// the pipelines' and the admin's, under every configuration of the two
// tokens. The pipelines' token opens only POST /api/v1/gates and
// GET /api/v1/gates/{id}; a refused request reaches no handler and gets a
// JSON error.
func TestRouteTokenMatrix(t *testing.T) {
	routes := []struct {
		method, pattern, path string
		pipeline              bool
		ok                    int
	}{
		{"GET", "", "/api/v1/decisions", false, http.StatusOK},
		{"GET", "", "/api/v1/deliveries", false, http.StatusOK},
		{"POST", "", "/api/v1/deliveries/1/redrive", false, http.StatusOK},
		{"GET", "GET /api/v1/reports/weekly", "/api/v1/reports/weekly", false, http.StatusOK},
		{"POST", "POST /api/v1/gates", "/api/v1/gates", true, http.StatusCreated},
		{"GET", "GET /api/v1/gates/{id}", "/api/v1/gates/g_1", true, http.StatusOK},
		{"POST", "POST /api/v1/gates/{id}/break-glass", "/api/v1/gates/g_1/break-glass", false, http.StatusOK},
		{"GET", "", "/api/v1/unknown", false, http.StatusNotFound},
	}
	configs := []struct {
		name       string
		api, admin string
	}{
		{"both set", token, adminToken},
		{"only the pipelines' token", token, ""},
		{"only the admin token", "", adminToken},
		{"neither", "", ""},
		{"the same token twice", token, token},
	}
	sent := map[string]string{"none": "", "wrong": "Bearer wrong-token", "pipeline": "Bearer " + token, "admin": "Bearer " + adminToken}

	for _, cfg := range configs {
		for _, rt := range routes {
			for who, auth := range sent {
				// The rule, as CONTRACT.md states it.
				adminSet := cfg.admin != "" && cfg.admin != cfg.api // the same token would hand every pipeline the admin routes
				isAdmin := who == "admin" && adminSet
				isPipeline := who == "pipeline" && cfg.api != ""
				want := http.StatusUnauthorized
				switch {
				case rt.pipeline && (isAdmin || isPipeline):
					want = rt.ok
				case !rt.pipeline && isAdmin:
					want = rt.ok
				case !rt.pipeline && adminSet && isPipeline:
					want = http.StatusForbidden
				}

				st := &fakeStore{}
				var calls int
				var scope apiauth.Scope
				s := New(Options{APIToken: cfg.api, AdminToken: cfg.admin, Store: st,
					Redrive: func(context.Context, int64) error { calls++; return nil }})
				for _, r := range routes {
					if r.pattern == "" {
						continue
					}
					s.Mount(r.pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
						calls++
						scope = apiauth.ScopeFrom(req.Context())
						w.WriteHeader(r.ok)
					}))
				}
				rec := do(t, s.Handler(), rt.method, rt.path, auth)
				name := cfg.name + ": " + who + " " + rt.method + " " + rt.path
				if rec.Code != want {
					t.Errorf("%s: %d, want %d (%s)", name, rec.Code, want, rec.Body)
					continue
				}
				if want == http.StatusUnauthorized || want == http.StatusForbidden {
					var e struct {
						Error string `json:"error"`
					}
					if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
						t.Errorf("%s: error body %q, want JSON {\"error\"}", name, rec.Body)
					}
					if rec.Header().Get("WWW-Authenticate") == "" {
						t.Errorf("%s: %d without WWW-Authenticate", name, rec.Code)
					}
					if calls != 0 || st.lastFilter != (store.DecisionFilter{}) {
						t.Errorf("%s: refused, yet a handler ran", name)
					}
					continue
				}
				if rt.pattern != "" && rt.ok != http.StatusNotFound {
					wantScope := apiauth.ScopePipeline
					if who == "admin" {
						wantScope = apiauth.ScopeAdmin
					}
					if calls != 1 || scope != wantScope {
						t.Errorf("%s: handler calls %d, scope %q, want 1 call with %q", name, calls, scope, wantScope)
					}
				}
			}
		}
	}
}

// TestPipelineRoutes: the list the middleware opens to the pipelines'
// token is exactly the gate routes of CONTRACT.md.
func TestPipelineRoutes(t *testing.T) {
	want := []string{"POST /api/v1/gates", "GET /api/v1/gates/{id}"}
	if len(PipelineRoutes) != len(want) || PipelineRoutes[0] != want[0] || PipelineRoutes[1] != want[1] {
		t.Errorf("PipelineRoutes = %q, want %q", PipelineRoutes, want)
	}
}
