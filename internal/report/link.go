package report

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// LinkTTL is how long a signed report link works by default.
const LinkTTL = 30 * 24 * time.Hour

// LinkPath is the route of the signed HTML report: GET
// /reports/weekly/{week}.html?exp=<unix seconds>&sig=<hex HMAC-SHA256>.
// It is outside /api/, so it needs no bearer token: the signature is the
// permission, for that week only and until exp.
const LinkPath = "/reports/weekly/"

// Links signs and checks report links. The zero value (no secret) signs
// nothing and refuses every link.
type Links struct {
	key []byte
	ttl time.Duration
}

// NewLinks returns a signer with the secret; ttl <= 0 means LinkTTL.
func NewLinks(secret string, ttl time.Duration) Links {
	if ttl <= 0 {
		ttl = LinkTTL
	}
	if secret == "" {
		return Links{ttl: ttl}
	}
	return Links{key: []byte(secret), ttl: ttl}
}

// Enabled reports whether links can be signed.
func (l Links) Enabled() bool { return len(l.key) > 0 }

// ErrLinksDisabled: no secret to sign with.
var ErrLinksDisabled = errors.New("report links are disabled: no secret")

func (l Links) mac(week string, exp int64) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("rolekeeper report link v1\n" + week + "\n" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// URL returns the signed link to the week's HTML report under publicURL,
// valid until now plus the TTL (rounded down to the second), and that
// expiry.
func (l Links) URL(publicURL, week string, now time.Time) (string, time.Time, error) {
	if !l.Enabled() {
		return "", time.Time{}, ErrLinksDisabled
	}
	if _, err := ParseWeek(week, time.UTC); err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(l.ttl).Unix()
	q := url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {hex.EncodeToString(l.mac(week, exp))}}
	return strings.TrimRight(publicURL, "/") + LinkPath + week + ".html?" + q.Encode(), time.Unix(exp, 0).UTC(), nil
}

// Check reports whether sig signs week until exp and exp has not passed.
func (l Links) Check(week, exp, sig string, now time.Time) bool {
	if !l.Enabled() {
		return false
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || strconv.FormatInt(e, 10) != exp || now.Unix() >= e {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, l.mac(week, e))
}

// LinkHandler serves GET /reports/weekly/{file} (file "YYYY-Www.html") to
// whoever holds a valid signed link, with no bearer token. An unsigned,
// tampered or expired link gets 403 and nothing else: not whether the week
// exists, not why.
func LinkHandler(links Links, src Source, org func() *roles.Org, loc *time.Location, publicURL string, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		file := strings.TrimPrefix(req.URL.Path, LinkPath)
		week, ok := strings.CutSuffix(file, ".html")
		q := req.URL.Query()
		t := now()
		if !ok || len(q["exp"]) != 1 || len(q["sig"]) != 1 || !links.Check(week, q.Get("exp"), q.Get("sig"), t) {
			forbidden(w)
			return
		}
		wk, err := ParseWeek(week, loc)
		if err != nil { // signed by us, so cannot happen; still refuse
			forbidden(w)
			return
		}
		r, err := Build(req.Context(), src, org(), wk, Options{Now: t, PublicURL: publicURL})
		if err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("the report could not be built now; try again later\n"))
			return
		}
		var buf bytes.Buffer
		if err := HTML(&buf, r); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The link is the credential: keep it out of Referer headers and
		// shared caches; the page loads nothing from anywhere.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "private, no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Write(buf.Bytes())
	})
}

func forbidden(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte("forbidden\n"))
}
