package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	gojira "github.com/andygrunwald/go-jira"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/upstream"
)

// Service is the metrics and error label of this client.
const Service = "jira"

// Options configure a Client.
type Options struct {
	// BaseURL is the site (https://x.atlassian.net) or, for scoped tokens,
	// https://api.atlassian.com/ex/jira/{cloudId}.
	BaseURL string
	// SiteURL is where people browse issues; "" means BaseURL.
	SiteURL string
	Email   string // Basic auth user (the Atlassian account email)
	Token   string // API token

	HTTPClient *http.Client  // its Transport is the base transport; nil: http.DefaultTransport
	Timeout    time.Duration // per call, retries included; 0: 60s
	MaxRetries int           // 0: 3; <0: none
	MaxWait    time.Duration // longest Retry-After waited in place; 0: 20s (longer: the error carries it)

	// Metrics is shared with other clients; nil: created on Registerer.
	Metrics    *upstream.Metrics
	Registerer prometheus.Registerer
	Logger     *zap.Logger
	Sleep      func(ctx context.Context, d time.Duration) error // backoff waits; nil: real timers
	Now        func() time.Time
}

// Client is a Jira Cloud REST v2 client. Errors are *upstream.Error (with
// Temporary, RetryAfter, Permanent) unless the context ended.
type Client struct {
	jc   *gojira.Client // builds requests (base URL, auth); a few services are used as is
	hc   *http.Client
	base *url.URL
	site string
	log  *zap.Logger
	now  func() time.Time

	mu    sync.RWMutex
	metas map[string]ProjectMeta // by project key, from Discover
}

// New returns a client. It makes no request.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("jira: no base url")
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/") + "/")
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("jira: bad base url %q", opts.BaseURL)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 20 * time.Second
	}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = upstream.NewMetrics(opts.Registerer)
	}
	var baseRT http.RoundTripper
	if opts.HTTPClient != nil {
		baseRT = opts.HTTPClient.Transport
	}
	c := &Client{base: base, log: opts.Logger, now: opts.Now, metas: map[string]ProjectMeta{}}
	c.site = strings.TrimRight(opts.SiteURL, "/")
	if c.site == "" {
		c.site = strings.TrimRight(opts.BaseURL, "/")
	}
	retrying := &upstream.Transport{
		Base: baseRT, Service: Service, Metrics: metrics, Endpoint: c.endpoint,
		MaxRetries: opts.MaxRetries, MaxWait: opts.MaxWait, Sleep: opts.Sleep, Now: opts.Now,
	}
	auth := &gojira.BasicAuthTransport{Username: opts.Email, Password: opts.Token, Transport: retrying}
	c.hc = &http.Client{Transport: auth, Timeout: opts.Timeout}
	if opts.HTTPClient != nil && opts.HTTPClient.Jar != nil {
		c.hc.Jar = opts.HTTPClient.Jar
	}
	c.jc, err = gojira.NewClient(c.hc, base.String())
	if err != nil {
		return nil, fmt.Errorf("jira: %w", err)
	}
	return c, nil
}

// BrowseURL returns the link a person follows to see an issue.
func (c *Client) BrowseURL(key string) string { return c.site + "/browse/" + key }

// endpoint names a request without ids, relative to the base URL, for
// metrics and errors: "GET /rest/api/2/issue/{key}/comment".
func (c *Client) endpoint(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(c.base.Path, "/"))
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i := 1; i < len(segs); i++ {
		switch segs[i-1] {
		case "issue":
			if segs[i] != "createmeta" {
				segs[i] = "{key}"
			}
		case "createmeta", "project":
			segs[i] = "{project}"
		case "issuetypes":
			segs[i] = "{id}"
		case "comment", "version":
			segs[i] = "{id}"
		}
	}
	return r.Method + " /" + strings.Join(segs, "/")
}

// do sends a request built by go-jira (base URL and auth) through the
// retrying client and decodes a 2xx answer into out (nil: discarded).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req, err := c.jc.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("jira: %w", err)
	}
	if query != nil {
		req.URL.RawQuery = query.Encode()
	}
	req.Header.Set("Accept", "application/json")
	return c.send(ctx, req, out)
}

func (c *Client) send(ctx context.Context, req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &upstream.Error{Service: Service, Method: req.Method, Endpoint: c.endpoint(req), Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return upstream.ErrorFromResponse(Service, c.endpoint(req), resp, c.now(), errorMessage)
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &upstream.Error{Service: Service, Method: req.Method, Endpoint: c.endpoint(req), StatusCode: resp.StatusCode,
			Message: "undecodable answer", Err: err}
	}
	return nil
}

// fromGoJira turns the error of a go-jira service call into an
// *upstream.Error, keeping the status and Retry-After go-jira leaves on
// its response.
func (c *Client) fromGoJira(endpoint string, resp *gojira.Response, err error) error {
	e := &upstream.Error{Service: Service, Endpoint: endpoint}
	var je *gojira.Error
	if errors.As(err, &je) {
		e.Message = collectionMessage(je.ErrorMessages, je.Errors)
	}
	if resp == nil || resp.Response == nil {
		e.Err = err
		return e
	}
	if resp.Request != nil {
		e.Method = resp.Request.Method
	}
	e.StatusCode = resp.StatusCode
	if d, ok := upstream.RetryAfter(resp.Header, c.now()); ok {
		e.Retry = d
	}
	if e.Message == "" {
		e.Message = err.Error()
	}
	return e
}

// errorMessage reads Jira's ErrorCollection ({"errorMessages":[…],
// "errors":{field: message}}), the detail Jira gives for a refused create.
func errorMessage(body []byte) string {
	var ec struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		Message       string            `json:"message"`
	}
	if json.Unmarshal(body, &ec) == nil {
		if m := collectionMessage(ec.ErrorMessages, ec.Errors); m != "" {
			return m
		}
		if ec.Message != "" {
			return ec.Message
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func collectionMessage(msgs []string, fields map[string]string) string {
	parts := append([]string(nil), msgs...)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+": "+fields[k])
	}
	return strings.Join(parts, "; ")
}
