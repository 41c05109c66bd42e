package webhook

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/reloadly/rolekeeper/internal/fixtures"
	"github.com/reloadly/rolekeeper/internal/jira"
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

// Jira's intake with jira.CheckWebhook answers as it did with the whole
// parse: a string timestamp is accepted (issue 13 item 7), a body without
// webhookEvent refused as a missing event, one that is not JSON as such.
func TestJiraCheckEventAnswersAsTheParse(t *testing.T) {
	fixture := string(fixtures.Read(t, "jira/webhooks/jira_issue_updated__mattermost-summary.json"))
	stringTimestamp := strings.Replace(fixture, `"timestamp": 1550286471789`, `"timestamp": "1550286471789"`, 1)
	if stringTimestamp == fixture {
		t.Fatal("fixture without the timestamp to edit")
	}
	checked := Jira(func([]byte) (*model.Event, error) {
		t.Error("the intake parsed a body it had a CheckEvent for")
		return nil, errors.New("not here")
	})
	checked.CheckEvent, checked.NoEvent = jira.CheckWebhook, jira.ErrNoWebhookEvent
	parsed := Jira(jira.ParseWebhook)

	answer := func(src Source, body string) (int, map[string]string) {
		h := New(Options{Source: src, AllowUnsigned: true, Store: &memInbox{}, Logger: zap.NewNop(), Metrics: NewMetrics(prometheus.NewRegistry())})
		req := httptest.NewRequest(http.MethodPost, "/webhooks/jira", strings.NewReader(body))
		req.Header.Set("X-Atlassian-Webhook-Identifier", "j-1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		return rec.Code, resp
	}
	for _, c := range []struct {
		name, body, outcome string
		status              int
	}{
		{"string timestamp", stringTimestamp, OutcomeAccepted, http.StatusAccepted},
		{"no webhookEvent", `{"timestamp":1,"issue":{"key":"A-1"}}`, OutcomeMissingHeader, http.StatusBadRequest},
		{"empty webhookEvent", `{"webhookEvent":"","issue":{"key":"A-1"}}`, OutcomeMissingHeader, http.StatusBadRequest},
		{"webhookEvent too long", `{"webhookEvent":"` + strings.Repeat("e", 201) + `"}`, OutcomeMissingHeader, http.StatusBadRequest},
		{"webhookEvent a number", `{"webhookEvent":5}`, OutcomeMalformed, http.StatusBadRequest},
		{"not JSON", `{"webhookEvent":"jira:issue_created"`, OutcomeMalformed, http.StatusBadRequest},
		{"trailing data", `{"webhookEvent":"comment_deleted"} x`, OutcomeMalformed, http.StatusBadRequest},
		{"issue event without a key", `{"webhookEvent":"jira:issue_created","issue":{}}`, OutcomeMalformed, http.StatusBadRequest},
	} {
		status, resp := answer(checked, c.body)
		if status != c.status || resp["status"] != c.outcome {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, resp, c.status, c.outcome)
		}
		if wantStatus, want := answer(parsed, c.body); status != wantStatus || resp["error"] != want["error"] {
			t.Errorf("%s: %d %v; with the whole parse %d %v", c.name, status, resp, wantStatus, want)
		}
	}
}
