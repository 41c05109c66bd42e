package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/store"
)

// TestAPITokensEndToEnd: through the running daemon, a request with a
// missing or wrong token, or with the pipelines' token on an admin route,
// is refused with a JSON error and stores or changes nothing; the
// pipelines' token creates and reads gates.
func TestAPITokensEndToEnd(t *testing.T) {
	e := startApp(t)
	ctx := context.Background()
	call := func(method, path, token, body string) (int, string) {
		req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return e.send(req)
	}
	gates := func() []store.Gate {
		gs, err := e.app.Store().ListGates(ctx, store.GateFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	ask := `{"repository":"acme/payments-api","commit":"0123456789abcdef0123456789abcdef01234567","environment":"production"}`

	for _, tok := range []string{"", "wrong", adminToken + "x"} {
		code, body := call(http.MethodPost, "/api/v1/gates", tok, ask)
		var e struct {
			Error string `json:"error"`
		}
		if code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("POST /api/v1/gates with token %q: %d %s, want 401 with a JSON error", tok, code, body)
		}
	}
	if gs := gates(); len(gs) != 0 {
		t.Fatalf("a refused request stored %d gates", len(gs))
	}

	code, body := call(http.MethodPost, "/api/v1/gates", apiToken, ask)
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST /api/v1/gates with the pipelines' token: %d %s", code, body)
	}
	var g struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &g); err != nil || g.ID == "" {
		t.Fatalf("gate answer %s: %v", body, err)
	}
	if code, body := call(http.MethodGet, "/api/v1/gates/"+g.ID, apiToken, ""); code != http.StatusOK {
		t.Errorf("GET the gate with the pipelines' token: %d %s", code, body)
	}
	before, err := e.app.Store().GetGate(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Break-glass is an admin route: the pipelines' token, which anyone who
	// edits bitbucket-pipelines.yml can use, gets 403 and changes nothing.
	glass := `{"by":"` + amara.AccountID + `","reason":"walk around the gate"}`
	code, body = call(http.MethodPost, "/api/v1/gates/"+g.ID+"/break-glass", apiToken, glass)
	if code != http.StatusForbidden || !strings.Contains(body, "ROLEKEEPER_ADMIN_TOKEN") {
		t.Errorf("break-glass with the pipelines' token: %d %s, want 403 naming the admin token", code, body)
	}
	after, err := e.app.Store().GetGate(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != before.State || after.Version != before.Version || after.BreakGlass {
		t.Errorf("a refused break-glass changed the gate: %+v -> %+v", before, after)
	}
	for _, path := range []string{"/api/v1/decisions?kind=gate", "/api/v1/deliveries", "/api/v1/reports/weekly"} {
		if code, _ := call(http.MethodGet, path, apiToken, ""); code != http.StatusForbidden {
			t.Errorf("GET %s with the pipelines' token: %d, want 403", path, code)
		}
		if code, _ := call(http.MethodGet, path, adminToken, ""); code != http.StatusOK {
			t.Errorf("GET %s with the admin token: %d, want 200", path, code)
		}
	}
	if code, _ := call(http.MethodPost, "/api/v1/deliveries/1/redrive", apiToken, ""); code != http.StatusForbidden {
		t.Errorf("redrive with the pipelines' token: %d, want 403", code)
	}
	// The admin token passes the middleware on break-glass (what the gate
	// then decides is the gate's business).
	code, body = call(http.MethodPost, "/api/v1/gates/"+g.ID+"/break-glass", adminToken, glass)
	if code == http.StatusUnauthorized || strings.Contains(body, "may only create and read") {
		t.Errorf("break-glass with the admin token refused by the middleware: %d %s", code, body)
	}
}
