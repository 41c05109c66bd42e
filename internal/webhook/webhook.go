// Package webhook is the one intake gate for Bitbucket and Jira deliveries.
// Every delivery goes through the same steps in a fixed order: POST only;
// the delivery (and event) headers; the body read through
// http.MaxBytesReader; the X-Hub-Signature HMAC; the body checked against
// its event key (Source.Check, or the whole parse); the durable store.
// Only then is it acknowledged: 202 when new, 200 when the delivery id was
// seen before. Anything refused is not stored.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256(secret, raw body)>" on
// both Bitbucket Cloud and Jira Cloud deliveries.
const SignatureHeader = "X-Hub-Signature"

// ParseFunc turns a raw body into a domain event. A parse error means the
// body is malformed: the delivery is refused with 400.
type ParseFunc func(eventKey string, body []byte) (*model.Event, error)

// CheckFunc is what the intake checks of a body before storing it, when
// that is cheaper than the whole parse (bitbucket.CheckWebhook): an error
// refuses the delivery with 400, as a ParseFunc error does. It returns the
// event's repository, for the log.
type CheckFunc func(eventKey string, body []byte) (repo string, err error)

// EventCheckFunc is CheckFunc for a source whose event key is in the body
// (jira.CheckWebhook): it returns the key too, read in the same pass, even
// when it refuses the body (then "" if the body is not JSON).
type EventCheckFunc func(body []byte) (eventKey string, err error)

// Source describes where deliveries come from and how to read them.
type Source struct {
	Name           model.Source
	DeliveryHeader string // header holding the delivery id (dedupe key)
	EventHeader    string // header holding the event key; "" when it is the body's webhookEvent
	SecretVar      string // environment variable of the secret, named in messages
	Parse          ParseFunc
	// Check, when set, stands for Parse at the intake: the workers parse
	// the stored body anyway, so the intake checks only what must refuse
	// a delivery before it is acknowledged.
	Check CheckFunc
	// CheckEvent, when set for a source without EventHeader, stands for
	// decoding the event key and for Parse at the intake, as Check does.
	// An error wrapping NoEvent is a body without an event key: refused
	// as a missing event header is.
	CheckEvent EventCheckFunc
	NoEvent    error
}

// Bitbucket is Bitbucket Cloud: X-Request-UUID and X-Event-Key.
func Bitbucket(parse func(eventKey string, body []byte) (*model.Event, error)) Source {
	return Source{
		Name:           model.SourceBitbucket,
		DeliveryHeader: "X-Request-UUID",
		EventHeader:    "X-Event-Key",
		SecretVar:      "ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET",
		Parse:          parse,
	}
}

// Jira is Jira Cloud: X-Atlassian-Webhook-Identifier (the same on every
// retry), the event key in the body's webhookEvent.
func Jira(parse func(body []byte) (*model.Event, error)) Source {
	return Source{
		Name:           model.SourceJira,
		DeliveryHeader: "X-Atlassian-Webhook-Identifier",
		SecretVar:      "ROLEKEEPER_JIRA_WEBHOOK_SECRET",
		Parse:          func(_ string, body []byte) (*model.Event, error) { return parse(body) },
	}
}

// Enqueuer is the part of the store the intake needs. Enqueue must keep no
// reference to d.Body once it returns: the intake reuses the buffer.
type Enqueuer interface {
	Enqueue(ctx context.Context, d *store.Delivery) (bool, error)
}

// Options configure a Handler.
type Options struct {
	Source Source
	// Secrets are the accepted webhook secrets: one, or two while one
	// rotates. With none, every delivery is refused with 503 unless
	// AllowUnsigned.
	Secrets       []string
	AllowUnsigned bool
	MaxBodyBytes  int64 // default 5 MiB
	Store         Enqueuer
	// Notify is called after a new delivery is stored (wakes the inbox).
	Notify       func()
	Now          func() time.Time
	Logger       *zap.Logger
	Metrics      *Metrics      // required; one Metrics serves every source
	StoreTimeout time.Duration // default 8 s: Bitbucket gives up after 10 s
	// Inflight bounds the bytes of bodies read and not yet verified,
	// shared by every source; nil: a bound of DefaultMaxInflightBytes of
	// this handler's own.
	Inflight *Inflight
	// BodyTimeout bounds reading the body from the end of the headers
	// (default 10 s, Bitbucket's own delivery timeout): a slow sender is
	// cut off and nothing of it is stored.
	BodyTimeout time.Duration
}

// Handler is the intake of one source.
type Handler struct {
	opt Options
}

// Outcomes, the values of the outcome label.
const (
	OutcomeAccepted         = "accepted"
	OutcomeDuplicate        = "duplicate"
	OutcomeMethodNotAllowed = "method_not_allowed"
	OutcomeMissingHeader    = "missing_header"
	OutcomeTooLarge         = "too_large"
	OutcomeReadError        = "read_error"
	OutcomeUnconfigured     = "unconfigured"
	OutcomeBadSignature     = "bad_signature"
	OutcomeMalformed        = "malformed"
	OutcomeStoreError       = "store_error"
	OutcomeBusy             = "busy"
)

// New returns the intake handler for one source. It logs, once, how the
// endpoint treats signatures.
func New(opt Options) *Handler {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 5 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.StoreTimeout <= 0 {
		opt.StoreTimeout = 8 * time.Second
	}
	if opt.Notify == nil {
		opt.Notify = func() {}
	}
	if opt.Inflight == nil {
		opt.Inflight = NewInflight(0)
	}
	if opt.BodyTimeout <= 0 {
		opt.BodyTimeout = 10 * time.Second
	}
	opt.Logger = opt.Logger.With(zap.String("source", string(opt.Source.Name)))
	switch {
	case len(opt.Secrets) == 0 && opt.AllowUnsigned:
		opt.Logger.Warn("webhook secret not set and webhooks.allow_unsigned is true: unsigned deliveries are accepted (local demos only)",
			zap.String("variable", opt.Source.SecretVar))
	case len(opt.Secrets) == 0:
		opt.Logger.Info("webhook secret not set: every delivery is refused with 503",
			zap.String("variable", opt.Source.SecretVar))
	}
	return &Handler{opt: opt}
}

// delivery is what the handler learnt about one request, for the log and
// the metrics.
type delivery struct {
	id, event, repo string
	verified        bool
	size            int
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var d delivery
	status, outcome, err := h.intake(w, r, &d)

	event := "unknown" // an unverified sender must not choose label values
	if d.verified && d.event != "" && len(d.event) <= 64 {
		event = d.event
	}
	src := string(h.opt.Source.Name)
	h.opt.Metrics.total.WithLabelValues(src, event, outcome).Inc()
	h.opt.Metrics.duration.WithLabelValues(src).Observe(time.Since(start).Seconds())

	level := zap.DebugLevel
	switch {
	case outcome == OutcomeStoreError:
		level = zap.ErrorLevel
	case status >= 400:
		level = zap.WarnLevel
	}
	if !h.opt.Logger.Core().Enabled(level) {
		return // the fields below cost allocations at thousands a second
	}
	fields := []zap.Field{
		zap.String("delivery_id", d.id),
		zap.String("event", d.event),
		zap.String("repo", d.repo),
		zap.Int("status", status),
		zap.String("outcome", outcome),
		zap.Int("bytes", d.size),
		zap.Duration("took", time.Since(start)),
	}
	switch {
	case outcome == OutcomeStoreError:
		h.opt.Logger.Error("webhook refused", append(fields, zap.Error(err))...)
	case status >= 400:
		h.opt.Logger.Warn("webhook refused", append(fields, zap.Error(err))...)
	default:
		// Debug: at thousands a second a line each costs the intake a
		// fifth of its throughput; rolekeeper_webhooks_total counts them.
		h.opt.Logger.Debug("webhook received", fields...)
	}
}

// intake runs the steps in order and writes the answer.
func (h *Handler) intake(w http.ResponseWriter, r *http.Request, d *delivery) (int, string, error) {
	src := h.opt.Source
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return reply(w, http.StatusMethodNotAllowed, OutcomeMethodNotAllowed, "method not allowed: use POST")
	}

	d.id = strings.TrimSpace(r.Header.Get(src.DeliveryHeader))
	if src.EventHeader != "" {
		d.event = strings.TrimSpace(r.Header.Get(src.EventHeader))
	}
	if d.id == "" || len(d.id) > 200 {
		return reply(w, http.StatusBadRequest, OutcomeMissingHeader, "missing or oversized "+src.DeliveryHeader+" header")
	}
	if src.EventHeader != "" && (d.event == "" || len(d.event) > 200) {
		return reply(w, http.StatusBadRequest, OutcomeMissingHeader, "missing or oversized "+src.EventHeader+" header")
	}

	if r.ContentLength > h.opt.MaxBodyBytes {
		return reply(w, http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over "+strconv.FormatInt(h.opt.MaxBodyBytes, 10)+" bytes")
	}
	// A slow sender is cut off: the server's ReadTimeout is longer than
	// any delivery needs.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.opt.BodyTimeout))
	body, held, err := h.opt.Inflight.readBody(http.MaxBytesReader(w, r.Body, h.opt.MaxBodyBytes), r.ContentLength, h.opt.MaxBodyBytes)
	defer h.opt.Inflight.give(held)
	// Nothing keeps the body once the store has it (Enqueuer) or it is
	// refused: its buffer serves the next request. A large signed body is
	// left to the collector: only a flood of unverified ones is worth
	// keeping memory for (recycle keeps up to the in-flight limit).
	defer func() {
		if !d.verified || cap(body) <= maxSmall {
			h.opt.Inflight.recycle(body)
		}
	}()
	d.size = len(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		var over *tooLarge
		switch {
		case errors.Is(err, errBusy):
			// Bitbucket and Jira retry a 5xx; the body is left unread.
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Connection", "close")
			return reply(w, http.StatusServiceUnavailable, OutcomeBusy, "too many deliveries being received, try again")
		case errors.As(err, &tooBig) || errors.As(err, &over):
			return reply(w, http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over "+strconv.FormatInt(h.opt.MaxBodyBytes, 10)+" bytes")
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			return replyErr(w, http.StatusRequestTimeout, OutcomeReadError, "body not received in time", err)
		}
		return replyErr(w, http.StatusBadRequest, OutcomeReadError, "could not read the body", err)
	}

	switch {
	case len(h.opt.Secrets) > 0:
		if err := Verify(r.Header.Get(SignatureHeader), body, h.opt.Secrets); err != nil {
			return replyErr(w, http.StatusUnauthorized, OutcomeBadSignature, "bad or missing "+SignatureHeader, err)
		}
	case !h.opt.AllowUnsigned:
		return reply(w, http.StatusServiceUnavailable, OutcomeUnconfigured, "webhook secret not configured: set "+src.SecretVar)
	}
	d.verified = true

	checkEvent := src.EventHeader == "" && src.CheckEvent != nil
	if checkEvent {
		d.event, err = src.CheckEvent(body)
		switch {
		case err != nil && d.event == "" && !errors.Is(err, src.NoEvent):
			return replyErr(w, http.StatusBadRequest, OutcomeMalformed, "body is not a JSON object", err)
		case d.event == "" || len(d.event) > 200:
			return reply(w, http.StatusBadRequest, OutcomeMissingHeader, "missing webhookEvent in the body")
		case err != nil:
			return replyErr(w, http.StatusBadRequest, OutcomeMalformed, "malformed payload", err)
		}
	} else if src.EventHeader == "" {
		var head struct {
			WebhookEvent string `json:"webhookEvent"`
		}
		if err := json.Unmarshal(body, &head); err != nil {
			return replyErr(w, http.StatusBadRequest, OutcomeMalformed, "body is not a JSON object", err)
		}
		d.event = head.WebhookEvent
		if d.event == "" || len(d.event) > 200 {
			return reply(w, http.StatusBadRequest, OutcomeMissingHeader, "missing webhookEvent in the body")
		}
	}

	switch {
	case checkEvent: // done
	case src.Check != nil:
		if d.repo, err = src.Check(d.event, body); err != nil {
			return replyErr(w, http.StatusBadRequest, OutcomeMalformed, "malformed payload", err)
		}
	default:
		ev, err := src.Parse(d.event, body)
		if err != nil {
			return replyErr(w, http.StatusBadRequest, OutcomeMalformed, "malformed payload", err)
		}
		if ev != nil {
			d.repo = ev.Repository
		}
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.opt.StoreTimeout)
	defer cancel()
	isNew, err := h.opt.Store.Enqueue(ctx, &store.Delivery{
		Source:     src.Name,
		DeliveryID: d.id,
		EventKey:   d.event,
		Body:       body,
		ReceivedAt: h.opt.Now().UTC(),
	})
	if err != nil {
		// 5xx: Bitbucket retries (twice), Jira too.
		return replyErr(w, http.StatusServiceUnavailable, OutcomeStoreError, "could not store the delivery, try again", err)
	}
	if !isNew {
		return reply(w, http.StatusOK, OutcomeDuplicate, "")
	}
	h.opt.Notify()
	return reply(w, http.StatusAccepted, OutcomeAccepted, "")
}

// Verify checks a "sha256=<hex>" signature over body against each secret,
// in constant time. It returns nil when one of them matches.
func Verify(header string, body []byte, secrets []string) error {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		if header == "" {
			return errors.New("no signature")
		}
		return errors.New("signature is not sha256=<hex>")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return errors.New("signature is not a hex sha256 digest")
	}
	for _, s := range secrets {
		if hmac.Equal(got, Sign(body, s)) {
			return nil
		}
	}
	return errors.New("signature does not match")
}

// Sign returns HMAC-SHA256(secret, body).
func Sign(body []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// SignatureFor returns the X-Hub-Signature value for body (for tests and
// the demo's sender).
func SignatureFor(body []byte, secret string) string {
	return "sha256=" + hex.EncodeToString(Sign(body, secret))
}

func reply(w http.ResponseWriter, status int, outcome, msg string) (int, string, error) {
	var err error
	if status >= 400 {
		err = errors.New(msg)
	}
	writeJSON(w, status, outcome, msg)
	return status, outcome, err
}

func replyErr(w http.ResponseWriter, status int, outcome, msg string, err error) (int, string, error) {
	writeJSON(w, status, outcome, msg)
	return status, outcome, err
}

var (
	contentJSON = []string{"application/json"}
	noSniff     = []string{"nosniff"}
)

func writeJSON(w http.ResponseWriter, status int, outcome, msg string) {
	h := w.Header()
	h["Content-Type"] = contentJSON // canonical keys, shared values: no allocation
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	if msg == "" { // the answer to every accepted delivery: as the encoder writes it
		_, _ = io.WriteString(w, `{"status":"`+outcome+"\"}\n")
		return
	}
	body := map[string]string{"status": outcome}
	if msg != "" {
		body["error"] = msg
	}
	_ = json.NewEncoder(w).Encode(body)
}
