package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// With a Check, the intake checks with it and never parses: what Check
// refuses is answered 400 and not stored.
func TestCheckStandsForParse(t *testing.T) {
	src := Bitbucket(func(string, []byte) (*model.Event, error) {
		t.Error("the intake parsed a body it had a Check for")
		return nil, errors.New("not here")
	})
	src.Check = func(key string, body []byte) (string, error) {
		if bytes.Contains(body, []byte("forged")) {
			return "", errors.New("body does not match its event key")
		}
		return "team/repo", nil
	}
	st := &memInbox{}
	h := New(Options{Source: src, AllowUnsigned: true, Store: st, Logger: zap.NewNop(), Metrics: NewMetrics(prometheus.NewRegistry())})
	for i, c := range []struct {
		body string
		want int
	}{{`{"forged":1}`, http.StatusBadRequest}, {`{"honest":1}`, http.StatusAccepted}} {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", strings.NewReader(c.body))
		req.Header.Set("X-Event-Key", "repo:push")
		req.Header.Set("X-Request-UUID", fmt.Sprint("id-", i))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.body, rec.Code, c.want, rec.Body)
		}
	}
	if n := st.count(); n != 1 {
		t.Errorf("%d stored, want only the honest one", n)
	}
}

// The intake reuses body buffers once the store has a delivery: every
// stored body must still be the one that was sent, whatever its size and
// however many requests run at once.
func TestStoredBodiesSurviveBufferReuse(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "reuse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := New(Options{Source: Bitbucket(parseJSON), AllowUnsigned: true, Store: st, Logger: zap.NewNop(), Metrics: NewMetrics(prometheus.NewRegistry())})
	sent := map[string][]byte{}
	for i := range 60 {
		pad := strings.Repeat(string(rune('a'+i%26)), []int{100, 3000, 6000, 20000, 70000}[i%5]+i)
		sent[fmt.Sprint("d-", i)] = []byte(fmt.Sprintf(`{"repository":{"full_name":"team/r%d"},"pad":%q}`, i, pad))
	}
	var wg sync.WaitGroup
	for id, body := range sent {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/webhooks/bitbucket", bytes.NewReader(body))
			req.Header.Set("X-Event-Key", "repo:push")
			req.Header.Set("X-Request-UUID", id)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				t.Errorf("%s: status %d: %s", id, rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	list, err := st.ListDeliveries(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(sent) {
		t.Fatalf("%d stored, %d sent", len(list), len(sent))
	}
	for _, d := range list {
		got, err := st.GetDelivery(context.Background(), d.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Body, sent[got.DeliveryID]) {
			t.Errorf("%s: stored body differs from the one sent (%d bytes, sent %d)", got.DeliveryID, len(got.Body), len(sent[got.DeliveryID]))
		}
		if got.State != store.DeliveryPending {
			t.Errorf("%s: state %s", got.DeliveryID, got.State)
		}
	}
}
