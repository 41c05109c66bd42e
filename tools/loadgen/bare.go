package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// maxBody is the daemon's default webhooks.max_body_bytes.
const maxBody = 5 << 20

// bareHandler does the least a webhook endpoint must: read the body,
// check the headers and the HMAC, answer 202. It is the floor the daemon's
// intake (which also parses and stores durably) is measured against. With
// a log, it also appends the delivery to it before answering: the least a
// durable endpoint must do.
func bareHandler(secret string, log floorStore) http.Handler {
	key := []byte(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			reply(w, http.StatusMethodNotAllowed, "method_not_allowed")
			return
		}
		if r.Header.Get("X-Request-UUID") == "" || r.Header.Get("X-Event-Key") == "" {
			reply(w, http.StatusBadRequest, "missing_header")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			reply(w, http.StatusRequestEntityTooLarge, "too_large")
			return
		}
		if !validSignature(key, r.Header.Get("X-Hub-Signature"), body) {
			reply(w, http.StatusUnauthorized, "bad_signature")
			return
		}
		if log != nil {
			if err := log.Append(record{id: r.Header.Get("X-Request-UUID"), body: body}); err != nil {
				reply(w, http.StatusServiceUnavailable, "not_stored")
				return
			}
		}
		reply(w, http.StatusAccepted, "accepted")
	})
}

func validSignature(key []byte, header string, body []byte) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// reply answers as the daemon does: a small JSON object.
func reply(w http.ResponseWriter, status int, outcome string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"status":"`+outcome+`"}`)
}

// bareServer serves bareHandler on 127.0.0.1:0.
type bareServer struct {
	srv *http.Server
	ln  net.Listener
	log floorStore
}

// startBare starts the bare handler; with a log, the durable floor.
func startBare(secret string, log floorStore) (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &bareServer{
		srv: &http.Server{Handler: bareHandler(secret, log), ReadHeaderTimeout: 10 * time.Second},
		ln:  ln,
		log: log,
	}
	// Serve ends with ErrServerClosed at Close; any other failure shows
	// as failed requests in the run.
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the webhook URL of the bare server.
func (s *bareServer) URL() string { return "http://" + s.ln.Addr().String() + "/webhooks/bitbucket" }

func (s *bareServer) Close() error {
	err := s.srv.Close()
	if s.log != nil {
		err = errors.Join(err, s.log.Close())
	}
	return err
}
