// Package server is rolekeeper's HTTP face: health, readiness, metrics, the
// webhook intakes, the bearer-protected /api/v1, and the public read-only
// page of one decision (the link posted with commit statuses). Other
// packages add their routes with Mount.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/apiauth"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Store is what the server reads from the store.
type Store interface {
	Ping(ctx context.Context) error
	GetDecisionByPublicID(ctx context.Context, publicID string) (*store.DecisionRecord, error)
	ListDecisions(ctx context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error)
	ListDeliveries(ctx context.Context, state store.DeliveryState, limit int) ([]store.Delivery, error)
	GetGate(ctx context.Context, id string) (*store.Gate, error) // the public gate page
}

// Check is one line of /readyz.
type Check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Required checks make /readyz answer 503 when they fail; the others
	// only inform (a Jira field not discovered yet, say).
	Required bool `json:"required"`
}

// ReadinessDetail contributes named checks to /readyz. It is called on
// every request, so it must be quick (report state, do no I/O).
type ReadinessDetail func(ctx context.Context) map[string]Check

// Options configure a Server.
type Options struct {
	Listen    string // host:port; port 0 picks one (tests)
	PublicURL string
	Logger    *zap.Logger
	Gatherer  prometheus.Gatherer // /metrics
	// APIToken is the pipelines' token (ROLEKEEPER_API_TOKEN): it may
	// only create and read gates (PipelineRoutes). AdminToken
	// (ROLEKEEPER_ADMIN_TOKEN) may use every /api/ route. A token that is
	// empty opens nothing: the routes that need it answer 401.
	APIToken   string
	AdminToken string
	// People maps the account ids of roles.yaml to display names, so that
	// public decision pages show names instead of account ids (optional).
	People func() map[string]string
	// BreakGlassRole names the role that may break the glass of a gate of
	// team in environment (the break-glass rule of roles.yaml), "" when no
	// rule lets anyone (optional).
	BreakGlassRole func(team, environment string) string
	// BitbucketURL (bitbucket.base_url) and JiraURL (jira.base_url) make
	// the links from a decision page to its pull request or Jira issue.
	BitbucketURL string
	JiraURL      string
	Bitbucket    http.Handler // POST /webhooks/bitbucket
	Jira         http.Handler // POST /webhooks/jira
	Store        Store
	// Roles reports whether roles are loaded, with a detail line (hash,
	// counts) for /readyz.
	Roles func() (bool, string)
	// Redrive puts a dead delivery back in the queue (the inbox's Redrive,
	// which also wakes a worker); store.ErrNotFound when it is not dead.
	Redrive func(ctx context.Context, seq int64) error
}

// Server serves rolekeeper's routes.
type Server struct {
	opt    Options
	mux    *http.ServeMux
	srv    *http.Server
	tokens tokens

	mu      sync.Mutex
	details []ReadinessDetail
	ln      net.Listener
	done    chan error
}

// New builds the routes. It does not listen yet.
func New(opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Gatherer == nil {
		opt.Gatherer = prometheus.NewRegistry()
	}
	s := &Server{opt: opt, mux: http.NewServeMux(), tokens: newTokens(opt.APIToken, opt.AdminToken)}
	if s.tokens.collide {
		opt.Logger.Error("ROLEKEEPER_ADMIN_TOKEN equals ROLEKEEPER_API_TOKEN, which every pipeline holds: the admin routes stay closed (401) until it differs")
	}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(opt.Logger.Named("http")),
	}

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opt.Gatherer, promhttp.HandlerOpts{
		ErrorLog:          zap.NewStdLog(opt.Logger.Named("metrics")),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	}))
	// The intakes answer 405 themselves, with Allow: POST.
	s.mux.Handle("/webhooks/bitbucket", orUnavailable(opt.Bitbucket, "bitbucket webhooks are not wired"))
	s.mux.Handle("/webhooks/jira", orUnavailable(opt.Jira, "jira webhooks are not wired"))
	s.mux.HandleFunc("GET /decisions/{id}", s.decisionPage)
	s.mux.HandleFunc("GET /gates/{id}", s.gatePage)
	s.mux.HandleFunc("GET /{$}", s.index)

	// Everything under /api/ needs the admin token, even paths no one
	// serves, so that probing without it learns nothing.
	s.mux.Handle("/api/", s.auth(false, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	})))
	s.Mount("GET /api/v1/decisions", http.HandlerFunc(s.listDecisions))
	s.Mount("GET /api/v1/deliveries", http.HandlerFunc(s.listDeliveries))
	s.Mount("POST /api/v1/deliveries/{seq}/redrive", http.HandlerFunc(s.redrive))
	return s
}

// PipelineRoutes are the only routes ROLEKEEPER_API_TOKEN, which every
// pipeline holds, may use: asking for a deployment gate and reading it.
// Every other route under /api/ needs ROLEKEEPER_ADMIN_TOKEN, so that a
// route added later is closed to pipelines unless it is listed here.
var PipelineRoutes = []string{"POST /api/v1/gates", "GET /api/v1/gates/{id}"}

// Mount adds a route. pattern is a Go 1.22 ServeMux pattern such as
// "POST /api/v1/gates" or "GET /api/v1/gates/{id}"; a route under /api/ is
// wrapped in the bearer-token check (the admin token, or either token on
// PipelineRoutes). Mount before Start; it panics on a pattern that
// conflicts with another, as ServeMux does.
func (s *Server) Mount(pattern string, h http.Handler) {
	path := pattern
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		path = strings.TrimSpace(pattern[i+1:])
	}
	if i := strings.IndexByte(path, '/'); i > 0 { // a host before the path
		path = path[i:]
	}
	if strings.HasPrefix(path, "/api/") {
		h = s.auth(slices.Contains(PipelineRoutes, strings.Join(strings.Fields(pattern), " ")), h)
	}
	s.mux.Handle(pattern, h)
}

// AddReadiness adds named checks to /readyz.
func (s *Server) AddReadiness(f ReadinessDetail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.details = append(s.details, f)
}

// Handler returns the routes (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on Options.Listen and serves in the background until
// Shutdown.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opt.Listen, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.done = make(chan error, 1)
	s.mu.Unlock()
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return nil
}

// Addr is the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for requests in progress
// (bounded by ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serr := <-done; serr != nil && err == nil {
		err = serr
	}
	return err
}

// tokens holds the SHA-256 of each configured token: comparing digests of
// equal length in constant time tells nothing about a token's length or
// its first differing byte.
type tokens struct {
	api, admin       [sha256.Size]byte
	hasAPI, hasAdmin bool
	// collide: both tokens are the same string. Every pipeline would then
	// hold the admin token, so it opens nothing beyond the pipeline routes.
	collide bool
}

func newTokens(api, admin string) tokens {
	t := tokens{api: sha256.Sum256([]byte(api)), admin: sha256.Sum256([]byte(admin)), hasAPI: api != "", hasAdmin: admin != ""}
	if t.hasAPI && api == admin {
		t.collide, t.hasAdmin = true, false
	}
	return t
}

// scope is what the request's bearer token may do: ScopeAdmin,
// ScopePipeline, or ScopeNone when it is missing or matches no configured
// token. Both comparisons always run.
func (t tokens) scope(r *http.Request) apiauth.Scope {
	authz := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(authz) <= len(scheme) || !strings.EqualFold(authz[:len(scheme)], scheme) {
		return apiauth.ScopeNone
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(authz[len(scheme):])))
	admin := subtle.ConstantTimeCompare(got[:], t.admin[:]) == 1
	api := subtle.ConstantTimeCompare(got[:], t.api[:]) == 1
	switch {
	case admin && t.hasAdmin:
		return apiauth.ScopeAdmin
	case api && t.hasAPI:
		return apiauth.ScopePipeline
	}
	return apiauth.ScopeNone
}

// auth checks "Authorization: Bearer <token>": 401 without a valid token
// (or when the token the route needs is not configured), 403 when a valid
// token is not allowed on the route (the pipelines' token on an admin
// route). It puts the token's scope in the request context (apiauth) for
// handlers that record it. Nothing is read or changed before it passes.
func (s *Server) auth(pipeline bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := s.tokens
		if !t.hasAdmin && (!pipeline || !t.hasAPI) {
			need := config.EnvAdminToken
			if pipeline {
				need = config.EnvAPIToken + " or " + config.EnvAdminToken
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="rolekeeper"`)
			writeError(w, http.StatusUnauthorized, "this API route is disabled: "+need+" is not set")
			return
		}
		sc := t.scope(r)
		switch {
		case sc == apiauth.ScopeNone:
			w.Header().Set("WWW-Authenticate", `Bearer realm="rolekeeper"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		case sc == apiauth.ScopePipeline && !pipeline:
			s.opt.Logger.Warn("pipeline token refused on an admin route", zap.String("method", r.Method), zap.String("path", r.URL.Path))
			w.Header().Set("WWW-Authenticate", `Bearer realm="rolekeeper", error="insufficient_scope"`)
			writeError(w, http.StatusForbidden, config.EnvAPIToken+" may only create and read deployment gates; this route needs "+config.EnvAdminToken)
			return
		}
		h.ServeHTTP(w, r.WithContext(apiauth.WithScope(r.Context(), sc)))
	})
}

type readiness struct {
	Status string           `json:"status"` // ready | not ready
	Checks map[string]Check `json:"checks"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := readiness{Status: "ready", Checks: map[string]Check{}}

	roles := Check{Required: true, Detail: "not loaded"}
	if s.opt.Roles != nil {
		roles.OK, roles.Detail = s.opt.Roles()
	}
	res.Checks["roles"] = roles

	st := Check{Required: true, OK: true}
	switch {
	case s.opt.Store == nil:
		st.OK, st.Detail = false, "no store"
	default:
		if err := s.opt.Store.Ping(ctx); err != nil {
			st.OK, st.Detail = false, err.Error()
		}
	}
	res.Checks["store"] = st

	s.mu.Lock()
	details := append([]ReadinessDetail(nil), s.details...)
	s.mu.Unlock()
	for _, f := range details {
		for name, c := range f(ctx) {
			res.Checks[name] = c
		}
	}
	code := http.StatusOK
	for _, c := range res.Checks {
		if c.Required && !c.OK {
			res.Status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, res)
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "rolekeeper: roles and responsibilities enforced on Bitbucket and Jira.\n\n"+
		"GET  /healthz\nGET  /readyz\nGET  /metrics\nPOST /webhooks/bitbucket\nPOST /webhooks/jira\n"+
		"GET  /decisions/{id}\nGET  /gates/{id}\n/api/v1/* (Authorization: Bearer; pipelines' token: gates only)\n")
}

func orUnavailable(h http.Handler, msg string) http.Handler {
	if h != nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusServiceUnavailable, msg)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
