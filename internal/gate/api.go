package gate

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/apiauth"
	"github.com/reloadly/rolekeeper/internal/store"
)

// maxBody bounds the JSON bodies the API reads.
const maxBody = 64 << 10

// Register mounts the gate API on mux with Go 1.22 patterns:
//
//	POST /api/v1/gates                   ask for a gate (201 new, 200 the same gate again)
//	GET  /api/v1/gates/{id}              the gate, re-read from Bitbucket while pending
//	POST /api/v1/gates/{id}/break-glass  {"reason": "…", "by": "<account id of a cto>"} (admin token only)
//
// Bearer authentication is the server's business (it wraps /api/ and puts
// the token's scope in the context); the break-glass handler checks the
// scope again. The handlers read bounded bodies and answer JSON errors
// {"error": "…"}.
func Register(mux interface {
	Handle(pattern string, h http.Handler)
}, s *Service) {
	mux.Handle("POST /api/v1/gates", http.HandlerFunc(s.serveAsk))
	mux.Handle("GET /api/v1/gates/{id}", http.HandlerFunc(s.serveGet))
	mux.Handle("POST /api/v1/gates/{id}/break-glass", http.HandlerFunc(s.serveBreakGlass))
}

// Handler returns the gate API on its own mux (without authentication).
func Handler(s *Service) http.Handler {
	mux := http.NewServeMux()
	Register(mux, s)
	return mux
}

// Person is someone the API names, with their name from roles.yaml (and,
// for an excluded person, why).
type Person struct {
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	Why       string `json:"why,omitempty"`
}

// View is a gate as the API shows it.
type View struct {
	ID            string     `json:"id"`
	State         string     `json:"state"`
	Repository    string     `json:"repository"`
	Commit        string     `json:"commit"`
	Environment   string     `json:"environment"`
	Team          string     `json:"team"`
	Rule          string     `json:"rule,omitempty"`
	Approvers     []Person   `json:"approvers"`
	Excluded      []Person   `json:"excluded"`
	DecidedBy     string     `json:"decided_by"`
	DecidedByName string     `json:"decided_by_name,omitempty"`
	DecidedAt     *time.Time `json:"decided_at"`
	Reason        string     `json:"reason"`
	BreakGlass    bool       `json:"break_glass"`
	BreakGlassVia string     `json:"break_glass_via,omitempty"`   // "comment" or "admin-token"
	Names         *Person    `json:"break_glass_names,omitempty"` // break-glass via the admin token: whom it named
	FollowUp      string     `json:"follow_up,omitempty"`
	PRs           []int      `json:"pull_requests"`
	PipelineUUID  string     `json:"pipeline_uuid,omitempty"`
	BuildNumber   int        `json:"build_number,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	StatusKey     string     `json:"status_key"`
	URL           string     `json:"url"`     // a page a person can read (the latest decision)
	APIURL        string     `json:"api_url"` // this resource
	History       []Entry    `json:"history"`
}

// View renders a gate for the API.
func (s *Service) View(g *store.Gate) View {
	d := readDetails(g)
	v := View{ID: g.ID, State: g.State, Repository: g.Repository, Commit: g.Commit, Environment: g.Environment, Team: g.Team,
		Rule: g.RuleID, Approvers: []Person{}, Excluded: []Person{}, DecidedBy: g.DecidedBy, Reason: g.Reason,
		BreakGlass: g.BreakGlass, FollowUp: g.FollowUp, PRs: g.PRs, PipelineUUID: g.PipelineUUID, BuildNumber: g.BuildNumber,
		CreatedAt: g.CreatedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(), StatusKey: StatusKey(g.Environment),
		URL: s.link(g, d.DecisionPublicID), APIURL: strings.TrimRight(s.o.PublicURL, "/") + "/api/v1/gates/" + g.ID, History: d.History}
	if v.PRs == nil {
		v.PRs = []int{}
	}
	if v.History == nil {
		v.History = []Entry{}
	}
	if !g.DecidedAt.IsZero() {
		t := g.DecidedAt.UTC()
		v.DecidedAt = &t
		v.DecidedByName = s.name(g.DecidedBy)
	}
	for _, a := range g.Approvers {
		v.Approvers = append(v.Approvers, Person{AccountID: a, Name: s.name(a)})
	}
	why := map[string]string{}
	for _, a := range authorshipOf(d) {
		why[a.AccountID] = s.name(a.AccountID) + " " + a.What
	}
	for _, a := range g.Excluded {
		v.Excluded = append(v.Excluded, Person{AccountID: a, Name: s.name(a), Why: why[a]})
	}
	if g.BreakGlass {
		v.BreakGlassVia = d.Via
		if d.Named != "" {
			v.Names = &Person{AccountID: d.Named, Name: s.name(d.Named)}
		}
	}
	return v
}

func (s *Service) serveAsk(w http.ResponseWriter, r *http.Request) {
	var req AskRequest
	if !readJSON(w, r, &req, `{"repository": "ws/slug", "commit": "<sha>", "environment": "production", "pipeline_uuid": "…", "build_number": 42}`) {
		return
	}
	g, created, err := s.Ask(r.Context(), req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, s.View(g))
}

func (s *Service) serveGet(w http.ResponseWriter, r *http.Request) {
	g, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.View(g))
}

func (s *Service) serveBreakGlass(w http.ResponseWriter, r *http.Request) {
	// Every pipeline holds the API token: a break-glass through the API
	// needs the admin token (the server checks too; this is the second
	// lock). The CTO's /break-glass comment is the normal path.
	if apiauth.ScopeFrom(r.Context()) != apiauth.ScopeAdmin {
		writeErr(w, http.StatusForbidden, "a break-glass through the API needs the admin token (ROLEKEEPER_ADMIN_TOKEN); "+
			"a CTO breaks the glass with a /break-glass <environment> <reason> comment on the pull request")
		return
	}
	var body struct {
		Reason string `json:"reason"`
		By     string `json:"by"`
	}
	if !readJSON(w, r, &body, `{"reason": "…", "by": "<account id of a cto>"}`) {
		return
	}
	g, err := s.BreakGlass(r.Context(), r.PathValue("id"), body.By, body.Reason)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.View(g))
}

// readJSON decodes one bounded JSON object, answering 400 or 413 itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeErr(w, http.StatusRequestEntityTooLarge, "body larger than 64 KiB")
		return false
	case err != nil:
		writeErr(w, http.StatusBadRequest, "body must be JSON "+shape+": "+err.Error())
		return false
	}
	return true
}

// writeErr maps an error to its answer. Errors of the caller's making are
// 4xx; Bitbucket trouble is 502 and the store's 500, logged here once.
func (s *Service) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var up *UpstreamError
	switch {
	case errors.Is(err, ErrBadRequest):
		writeErr(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrUnknownRepository), errors.Is(err, ErrUnknownEnvironment):
		writeErr(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, ErrForbidden):
		writeErr(w, http.StatusForbidden, err.Error())
	case errors.Is(err, ErrDecided):
		writeErr(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, http.StatusNotFound, "no such gate")
	case errors.As(err, &up):
		s.log.Error("gate api", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeErr(w, http.StatusBadGateway, err.Error())
	default:
		s.log.Error("gate api", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeErr(w, http.StatusInternalServerError, "internal error; try again")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
