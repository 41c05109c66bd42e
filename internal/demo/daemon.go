package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/webhook"
)

// daemon talks to the running rolekeeper the way Bitbucket, Jira, a
// pipeline and an admin would: signed webhooks to the intake, bearer calls
// to /api/v1 (the pipelines' token for gates, the admin token for the rest).
type daemon struct {
	base       string // http://host:port
	token      string // ROLEKEEPER_API_TOKEN: gates
	adminToken string // ROLEKEEPER_ADMIN_TOKEN: decisions, deliveries, reports
	bbSecret   string
	jiraSecret string
	client     *http.Client
	// processTimeout bounds the wait for one delivery to be processed.
	processTimeout time.Duration
}

// errDead is a delivery the inbox gave up on.
var errDead = errors.New("delivery dead-lettered")

// sendBitbucket posts a Bitbucket webhook, signed, and returns its delivery
// id once the intake stored it (202).
func (d *daemon) sendBitbucket(ctx context.Context, eventKey string, body []byte) (string, error) {
	if body == nil {
		return "", fmt.Errorf("sandbox rendered no %s body", eventKey)
	}
	id := newUUID()
	hdr := http.Header{}
	hdr.Set("X-Event-Key", eventKey)
	hdr.Set("X-Request-UUID", id)
	hdr.Set("X-Attempt-Number", "1")
	hdr.Set("User-Agent", "Bitbucket-Webhooks/2.0")
	hdr.Set(webhook.SignatureHeader, webhook.SignatureFor(body, d.bbSecret))
	return id, d.deliver(ctx, "/webhooks/bitbucket", hdr, body)
}

// sendJira posts a Jira webhook, signed, and returns its delivery id.
func (d *daemon) sendJira(ctx context.Context, body []byte) (string, error) {
	id := newUUID()
	hdr := http.Header{}
	hdr.Set("X-Atlassian-Webhook-Identifier", id)
	hdr.Set("User-Agent", "Atlassian Webhook HTTP Client")
	hdr.Set(webhook.SignatureHeader, webhook.SignatureFor(body, d.jiraSecret))
	return id, d.deliver(ctx, "/webhooks/jira", hdr, body)
}

func (d *daemon) deliver(ctx context.Context, path string, hdr http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %s %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// waitProcessed polls the deliveries API until the delivery is done (every
// handler ran) and fails when it is dead-lettered or takes too long.
func (d *daemon) waitProcessed(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, d.processTimeout)
	defer cancel()
	for wait := 2 * time.Millisecond; ; wait = min(wait*2, 25*time.Millisecond) {
		for _, state := range []string{"done", "dead"} {
			var ds []server.DeliveryView
			if err := d.get(ctx, "/api/v1/deliveries?limit=5000&state="+state, &ds); err != nil {
				return err
			}
			for _, v := range ds {
				if v.DeliveryID != id {
					continue
				}
				if state == "dead" {
					return fmt.Errorf("%w after %d attempts: %s", errDead, v.Attempts, v.LastError)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delivery %s not processed within %s: %w", id, d.processTimeout, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// decisions lists the decisions of a pull request, an issue or a kind,
// oldest first.
func (d *daemon) decisions(ctx context.Context, q url.Values) ([]server.DecisionView, error) {
	var out []server.DecisionView
	err := d.get(ctx, "/api/v1/decisions?"+q.Encode(), &out)
	return out, err
}

// gateView is the part of the gate API's answer the demo shows.
type gateView struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Repository  string `json:"repository"`
	Environment string `json:"environment"`
	Approvers   []struct {
		AccountID string `json:"account_id"`
		Name      string `json:"name"`
	} `json:"approvers"`
	DecidedBy string `json:"decided_by"`
	Reason    string `json:"reason"`
	PRs       []int  `json:"pull_requests"`
	URL       string `json:"url"`
	History   []struct {
		What   string `json:"what"`
		By     string `json:"by"`
		Detail string `json:"detail"`
	} `json:"history"`
}

// askGate is what a pipeline step does before a deployment.
func (d *daemon) askGate(ctx context.Context, repo, commit, env string, build int) (gateView, error) {
	body, _ := json.Marshal(map[string]any{
		"repository": repo, "commit": commit, "environment": env,
		"pipeline_uuid": "{" + strings.Trim(newUUID(), "{}") + "}", "build_number": build,
	})
	var g gateView
	err := d.callAs(ctx, d.token, http.MethodPost, "/api/v1/gates", body, http.StatusCreated, &g)
	return g, err
}

func (d *daemon) gate(ctx context.Context, id string) (gateView, error) {
	var g gateView
	err := d.callAs(ctx, d.token, http.MethodGet, "/api/v1/gates/"+url.PathEscape(id), nil, http.StatusOK, &g)
	return g, err
}

// weeklyReport fetches the report of a week in a format (md, html, json,
// csv).
func (d *daemon) weeklyReport(ctx context.Context, week, format string) ([]byte, error) {
	path := "/api/v1/reports/weekly?week=" + url.QueryEscape(week) + "&format=" + url.QueryEscape(format)
	req, err := d.request(ctx, d.adminToken, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s %.200s", path, resp.Status, b)
	}
	return b, err
}

// get reads an admin route.
func (d *daemon) get(ctx context.Context, path string, out any) error {
	return d.callAs(ctx, d.adminToken, http.MethodGet, path, nil, http.StatusOK, out)
}

func (d *daemon) request(ctx context.Context, token, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func (d *daemon) callAs(ctx context.Context, token, method, path string, body []byte, want int, out any) error {
	req, err := d.request(ctx, token, method, path, body)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// newUUID returns a random version-4 UUID, as Bitbucket's X-Request-UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// randomHex returns n random bytes in hex (secrets and tokens).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
