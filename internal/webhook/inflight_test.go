package webhook

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/fixtures"
)

func inflightHandler(t *testing.T, inbox *memInbox, f *Inflight, bodyTimeout time.Duration) *Handler {
	t.Helper()
	return New(Options{Source: Bitbucket(parseJSON), Secrets: []string{fixtureSecret}, Store: inbox, Logger: zap.NewNop(),
		Metrics: NewMetrics(prometheus.NewRegistry()), Inflight: f, BodyTimeout: bodyTimeout})
}

// Past the bytes in flight, a delivery is answered 503 with Retry-After
// before its body is read, and nothing is stored; once the bytes are given
// back, deliveries are accepted again.
func TestInflightBoundRefusesWithRetryAfter(t *testing.T) {
	body := fixtures.Read(t, signedFixture)
	f := NewInflight(int64(len(body)) * 3 / 2)
	inbox := &memInbox{}
	h := inflightHandler(t, inbox, f, 0)
	send := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", bytes.NewReader(body))
		for k, v := range bbHeaders(fixtureSig) {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if !f.take(int64(len(body))) { // another body being read
		t.Fatal("could not reserve")
	}
	rec := send()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), OutcomeBusy) {
		t.Fatalf("answer %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if inbox.count() != 0 {
		t.Fatal("a refused delivery was stored")
	}
	f.give(int64(len(body)))
	if rec := send(); rec.Code != http.StatusAccepted {
		t.Fatalf("after release: %d %s", rec.Code, rec.Body)
	}
	if f.Held() != 0 {
		t.Errorf("%d bytes still held after the answers", f.Held())
	}
}

// A body sent without Content-Length is reserved as it arrives, and
// bounded by the same limit.
func TestInflightChunkedBody(t *testing.T) {
	f := NewInflight(100 << 10)
	big := bytes.Repeat([]byte("x"), 300<<10)
	got, held, err := f.readBody(io.MultiReader(bytes.NewReader(big)), -1, 1<<20)
	if err != errBusy || held > 100<<10 {
		t.Errorf("err %v held %d (read %d)", err, held, len(got))
	}
	f.give(held)
	small := []byte(`{"a":1}`)
	got, held, err = f.readBody(bytes.NewReader(small), -1, 1<<20)
	if err != nil || !bytes.Equal(got, small) {
		t.Errorf("got %q err %v", got, err)
	}
	f.give(held)
	if _, held, err = f.readBody(bytes.NewReader(big), int64(len(big)), 200<<10); err == nil {
		t.Error("a body over the size limit was read whole")
	}
	f.give(held)
	if f.Held() != 0 {
		t.Errorf("%d bytes held", f.Held())
	}
}

// A slow sender (slowloris) is cut off after BodyTimeout, costs no more
// than what it sent, and nothing of it is stored.
func TestSlowBodyIsCutOff(t *testing.T) {
	inbox := &memInbox{}
	f := NewInflight(0)
	h := inflightHandler(t, inbox, f, 300*time.Millisecond)
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/bitbucket HTTP/1.1\r\nHost: x\r\nX-Event-Key: repo:push\r\nX-Request-UUID: slow-1\r\n"+
		"X-Hub-Signature: %s\r\nContent-Length: 5000\r\n\r\n{\"repository\":", fixtureSig)
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cut off after %v", took)
	}
	for deadline := time.Now().Add(2 * time.Second); f.Held() != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the handler gives back after it answered
	}
	if inbox.count() != 0 || f.Held() != 0 {
		t.Errorf("stored %d, held %d bytes", inbox.count(), f.Held())
	}
}

// A small body is read into a pooled buffer of a power-of-two size; the
// bound counts the whole buffer, not only the announced length.
func TestInflightCountsPooledBuffers(t *testing.T) {
	f := NewInflight(10 << 10)
	body := bytes.Repeat([]byte("x"), 5000)
	got, held, err := f.readBody(bytes.NewReader(body), int64(len(body)), 5<<20)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("first body: %v", err)
	}
	if held != 8<<10 || f.Held() != 8<<10 {
		t.Fatalf("held %d (counter %d), want the 8 KiB buffer", held, f.Held())
	}
	if _, _, err := f.readBody(bytes.NewReader(body), int64(len(body)), 5<<20); !errors.Is(err, errBusy) {
		t.Errorf("second body while the first is held: %v, want errBusy", err)
	}
	f.give(held)
	f.recycle(got)
	again, held2, err := f.readBody(bytes.NewReader(body), int64(len(body)), 5<<20)
	if err != nil || !bytes.Equal(again, body) || held2 != 8<<10 {
		t.Errorf("after giving back: %d held, %v", held2, err)
	}
}
