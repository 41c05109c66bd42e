package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// DecisionView is a stored decision as the API shows it: the engine's
// decision inline, its reasons and what was done.
type DecisionView struct {
	ID         int64           `json:"id"`
	PublicID   string          `json:"public_id"` // names the public page: url
	Kind       string          `json:"kind"`
	Repository string          `json:"repository,omitempty"`
	PR         int             `json:"pr,omitempty"`
	Commit     string          `json:"commit,omitempty"`
	Issue      string          `json:"issue,omitempty"`
	Team       string          `json:"team,omitempty"`
	Trigger    string          `json:"trigger,omitempty"`
	DeliveryID string          `json:"delivery_id,omitempty"`
	Summary    string          `json:"summary"`
	Outcome    string          `json:"outcome"`
	CreatedAt  time.Time       `json:"created_at"`
	URL        string          `json:"url"` // the public page of this decision (by its public id)
	Decision   json.RawMessage `json:"decision,omitempty"`
	Snapshot   json.RawMessage `json:"snapshot,omitempty"` // only with ?snapshot=true
}

func (s *Server) view(d store.DecisionRecord, withSnapshot bool) DecisionView {
	v := DecisionView{
		ID: d.ID, PublicID: d.PublicID, Kind: string(d.Kind), Repository: d.Repository, PR: d.PR, Commit: d.Commit,
		Issue: d.IssueKey, Team: d.Team, Trigger: d.Trigger, DeliveryID: d.DeliveryID,
		Summary: d.Summary, Outcome: d.Outcome, CreatedAt: d.CreatedAt,
		URL: store.DecisionURL(s.opt.PublicURL, d.PublicID),
	}
	if json.Valid(d.Decision) {
		v.Decision = d.Decision
	}
	if withSnapshot && json.Valid(d.Snapshot) {
		v.Snapshot = d.Snapshot
	}
	return v
}

// listDecisions: GET /api/v1/decisions?repository=ws/slug&pr=N (also
// issue, kind, since, until as RFC 3339, limit).
func (s *Server) listDecisions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.DecisionFilter{
		Kind:       model.SubjectKind(q.Get("kind")),
		Repository: strings.ToLower(strings.TrimSpace(q.Get("repository"))),
		IssueKey:   strings.ToUpper(strings.TrimSpace(q.Get("issue"))),
		Limit:      500,
	}
	var bad []string
	if v := q.Get("pr"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad = append(bad, "pr must be a pull request number")
		}
		f.PR = n
		if f.Repository == "" {
			bad = append(bad, "pr needs repository")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 5000 {
			bad = append(bad, "limit must be between 1 and 5000")
		}
		f.Limit = n
	}
	for _, p := range []struct {
		key string
		dst *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad = append(bad, p.key+" must be an RFC 3339 time")
			}
			*p.dst = t
		}
	}
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, strings.Join(bad, "; "))
		return
	}
	recs, err := s.opt.Store.ListDecisions(r.Context(), f)
	if err != nil {
		s.opt.Logger.Error("list decisions", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "could not read decisions")
		return
	}
	withSnapshot := q.Get("snapshot") == "true"
	out := make([]DecisionView, 0, len(recs))
	for _, d := range recs {
		out = append(out, s.view(d, withSnapshot))
	}
	writeJSON(w, http.StatusOK, out)
}

// DeliveryView is a stored delivery without its body.
type DeliveryView struct {
	Seq           int64     `json:"seq"`
	Source        string    `json:"source"`
	DeliveryID    string    `json:"delivery_id"`
	Event         string    `json:"event"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	Bytes         int       `json:"bytes"`
	ReceivedAt    time.Time `json:"received_at"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	DoneAt        time.Time `json:"done_at,omitzero"`
}

// ViewDelivery drops a delivery's body.
func ViewDelivery(d store.Delivery) DeliveryView {
	return DeliveryView{
		Seq: d.Seq, Source: string(d.Source), DeliveryID: d.DeliveryID, Event: d.EventKey,
		State: string(d.State), Attempts: d.Attempts, Bytes: d.BodyBytes, ReceivedAt: d.ReceivedAt,
		NextAttemptAt: d.NextAttemptAt, LastError: d.LastError, DoneAt: d.DoneAt,
	}
}

// listDeliveries: GET /api/v1/deliveries?state=dead&limit=N.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := store.DeliveryState(q.Get("state"))
	if state == "" {
		state = store.DeliveryDead
	}
	switch state {
	case store.DeliveryPending, store.DeliveryProcessing, store.DeliveryDone, store.DeliveryDead:
	default:
		writeError(w, http.StatusBadRequest, "state must be pending, processing, done or dead")
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 5000 {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and 5000")
			return
		}
		limit = n
	}
	ds, err := s.opt.Store.ListDeliveries(r.Context(), state, limit)
	if err != nil {
		s.opt.Logger.Error("list deliveries", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "could not read deliveries")
		return
	}
	out := make([]DeliveryView, 0, len(ds))
	for _, d := range ds {
		out = append(out, ViewDelivery(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// redrive: POST /api/v1/deliveries/{seq}/redrive.
func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq <= 0 {
		writeError(w, http.StatusBadRequest, "seq must be a delivery number")
		return
	}
	if s.opt.Redrive == nil {
		writeError(w, http.StatusServiceUnavailable, "redrive is not wired")
		return
	}
	switch err := s.opt.Redrive(r.Context(), seq); {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no dead delivery with that seq")
	case err != nil:
		s.opt.Logger.Error("redrive", zap.Int64("seq", seq), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "could not redrive")
	default:
		s.opt.Logger.Info("delivery redriven", zap.Int64("seq", seq))
		writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "state": store.DeliveryPending})
	}
}
