// Package bitbucket is rolekeeper's edge to Bitbucket Cloud: a REST client
// (over github.com/ktrysmt/go-bitbucket where that library gets an endpoint
// right, raw REST through the same authenticated transport where it does
// not) and the webhook payload parser. Vendor JSON stops here: callers see
// only model types.
package bitbucket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	gobb "github.com/ktrysmt/go-bitbucket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/upstream"
)

// DefaultBaseURL is Bitbucket Cloud's REST API root.
const DefaultBaseURL = "https://api.bitbucket.org/2.0"

const (
	service = "bitbucket" // metrics label

	// Page sizes. Bitbucket's documented maximum is 100, but the pull
	// request list and activity endpoints answer 400 "Invalid pagelen"
	// above 50 (BCLOUD-13229; jenkinsci/bitbucket-branch-source-plugin#1182).
	pageLen   = 100
	pageLenPR = 50

	maxBody = 32 << 20 // bound on any answer read into memory
)

// Options configures a Client. Zero values take the defaults noted.
type Options struct {
	// BaseURL is the API root including "/2.0" (DefaultBaseURL).
	BaseURL string

	// Username (the Atlassian account email) and Token (an API token) send
	// Basic auth; AccessToken (a workspace or repository access token) sends
	// Bearer. With neither, requests go out anonymous.
	Username, Token string
	AccessToken     string

	// HTTPClient's Transport, or Transport, is the transport under the
	// retry layer (http.DefaultTransport).
	HTTPClient *http.Client
	Transport  http.RoundTripper

	Timeout       time.Duration  // per attempt (15s)
	MaxRetries    int            // retries after the first attempt (4); negative: none
	BackoffBase   time.Duration  // first backoff ceiling (500ms)
	BackoffMax    time.Duration  // backoff ceiling (30s)
	RetryAfterMax time.Duration  // longest Retry-After waited in place (60s); longer is returned as an error
	Jitter        func() float64 // uniform in [0,1) for full jitter (math/rand/v2)
	MaxPages      int            // page bound for methods without a maxPages argument (20)

	Registerer prometheus.Registerer // upstream request metrics; nil: not registered
	Logger     *zap.Logger           // nil: no logs

	Sleep func(ctx context.Context, d time.Duration) error // backoff wait (a timer honouring ctx)
	Now   func() time.Time                                 // for Retry-After dates (time.Now)
}

// Client talks to Bitbucket Cloud. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	rt         http.RoundTripper // auth → retry+metrics → attempt guard → transport
	http       *http.Client      // follows redirects
	noRedirect *http.Client      // same transport; shows the diffstat 302
	maxPages   int
	log        *zap.Logger
	now        func() time.Time
	calls      *atomic.Int64
}

// New builds a Client.
func New(opts Options) (*Client, error) {
	raw := opts.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("bitbucket: base url: %w", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("bitbucket: base url %q: want http(s)://host/…/2.0", raw)
	}
	if !strings.HasSuffix(base.Path, "/2.0") {
		return nil, fmt.Errorf("bitbucket: base url %q must end in /2.0", raw)
	}
	if opts.AccessToken != "" && (opts.Username != "" || opts.Token != "") {
		return nil, errors.New("bitbucket: give either username and token or an access token, not both")
	}
	if (opts.Username == "") != (opts.Token == "") {
		return nil, errors.New("bitbucket: username and token go together")
	}

	transport := opts.Transport
	if transport == nil && opts.HTTPClient != nil {
		transport = opts.HTTPClient.Transport
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	retries := opts.MaxRetries
	switch {
	case retries == 0:
		retries = 4
	case retries < 0:
		retries = -1
	}
	backoff := opts.BackoffBase
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	maxPages := opts.MaxPages
	if maxPages <= 0 {
		maxPages = 20
	}

	c := &Client{base: base, maxPages: maxPages, log: log, now: now, calls: new(atomic.Int64)}
	retry := &upstream.Transport{
		Base:       &attemptGuard{next: transport, timeout: timeout, calls: c.calls},
		Service:    service,
		Metrics:    upstream.NewMetrics(opts.Registerer),
		Endpoint:   func(r *http.Request) string { return c.endpoint(r.Method, r.URL) },
		MaxRetries: retries,
		MinBackoff: backoff,
		MaxBackoff: opts.BackoffMax,
		MaxWait:    opts.RetryAfterMax,
		Sleep:      opts.Sleep,
		Rand:       opts.Jitter,
		Now:        now,
	}
	c.rt = &authTransport{next: retry, host: base.Host, scheme: base.Scheme, user: opts.Username, token: opts.Token, bearer: opts.AccessToken}
	c.http = &http.Client{Transport: c.rt}
	c.noRedirect = &http.Client{Transport: c.rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// Calls is the number of requests sent upstream so far, each retry counted.
func (c *Client) Calls() int64 { return c.calls.Load() }

// endpoint names a request by its path below the API root.
func (c *Client) endpoint(method string, u *url.URL) string {
	p := u.EscapedPath()
	if rel, ok := strings.CutPrefix(p, c.base.EscapedPath()); ok {
		p = rel
	}
	return EndpointTemplate(method, p)
}

// url builds an absolute API URL from path segments, escaping each.
func (c *Client) url(query url.Values, segs ...string) string {
	u := *c.base
	var b strings.Builder
	b.WriteString(strings.TrimRight(c.base.EscapedPath(), "/"))
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	u.RawPath = b.String()
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	return u.String()
}

// lib returns a go-bitbucket client for one call. Its credentials are left
// empty because authTransport adds them; its requests carry ctx through
// boundTransport, since the library builds them without one.
func (c *Client) lib(ctx context.Context) (*gobb.Client, *callState) {
	lc, err := gobb.NewBasicAuthWithBaseUrlStr("", "", c.base.String())
	if err != nil { // unreachable: the base URL parsed in New
		panic(err)
	}
	st := &callState{}
	lc.HttpClient = &http.Client{Transport: &boundTransport{ctx: ctx, next: c.rt, st: st, now: c.now}}
	return lc, st
}

// libError turns a go-bitbucket error into an *upstream.Error (or ctx's error).
func (c *Client) libError(ctx context.Context, method string, segs []string, err error, st *callState) error {
	ep := EndpointTemplate(method, "/"+strings.Join(segs, "/"))
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("bitbucket: %s: %w", ep, ctxErr)
	}
	var ue *gobb.UnexpectedResponseStatusError
	if errors.As(err, &ue) {
		return apiError(ue.StatusCode, method, ep, errorMessage(ue.StatusCode, ue.Body), st.retryAfter, nil)
	}
	return apiError(0, method, ep, "", 0, err)
}

// fromLib re-decodes go-bitbucket's interface{} result into a wire type.
func fromLib(res any, out any) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// send performs one logical request (retries happen below) and returns a
// 2xx or 3xx answer, or an *upstream.Error with the body read and closed.
func (c *Client) send(ctx context.Context, hc *http.Client, method, u string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("bitbucket: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("bitbucket: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	ep := c.endpoint(method, req.URL)
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("bitbucket: %s: %w", ep, ctxErr)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, apiError(0, method, ep, "", 0, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := apiError(resp.StatusCode, method, ep, errorMessage(resp.StatusCode, b), 0, nil)
	if d, ok := upstream.RetryAfter(resp.Header, c.now()); ok {
		e.Retry = d
	}
	return nil, e
}

// call sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) call(ctx context.Context, method, u string, body, out any) error {
	resp, err := c.send(ctx, c.http, method, u, body)
	if err != nil {
		return err
	}
	return c.decode(ctx, method, resp, out)
}

func (c *Client) decode(ctx context.Context, method string, resp *http.Response, out any) error {
	defer resp.Body.Close()
	ep := c.endpoint(method, resp.Request.URL)
	if resp.StatusCode == http.StatusAccepted && method == http.MethodGet {
		// commit/{hash}/pullrequests: "still being indexed".
		return apiError(resp.StatusCode, method, ep, "not ready yet", 0, nil)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("bitbucket: %s: %w", ep, ctxErr)
		}
		return apiError(resp.StatusCode, method, ep, "undecodable answer", 0, err)
	}
	return nil
}

// page is one page of a Bitbucket paginated list.
type page struct {
	Values []json.RawMessage `json:"values"`
	Next   string            `json:"next"`
}

// pages walks a paginated list from first, following next links on the API
// host only, for at most maxPages pages.
func (c *Client) pages(ctx context.Context, first string, maxPages int, each func(json.RawMessage) error) error {
	if maxPages <= 0 {
		maxPages = c.maxPages
	}
	u := first
	for n := 1; ; n++ {
		var p page
		if err := c.call(ctx, http.MethodGet, u, nil, &p); err != nil {
			return err
		}
		next, err := c.walk(u, &p, each)
		if err != nil || next == "" {
			return err
		}
		if n >= maxPages {
			c.log.Warn("bitbucket: page limit reached, list truncated", zap.String("endpoint", c.endpointOf(u)), zap.Int("pages", n))
			return nil
		}
		u = next
	}
}

// walk hands a page's values to each and returns the checked next link.
func (c *Client) walk(cur string, p *page, each func(json.RawMessage) error) (string, error) {
	for _, v := range p.Values {
		if err := each(v); err != nil {
			return "", err
		}
	}
	if p.Next == "" {
		return "", nil
	}
	return c.sameHost(cur, p.Next)
}

// sameHost resolves ref against cur and refuses it unless its scheme and
// host are the API's: a next link elsewhere would carry our credentials.
func (c *Client) sameHost(cur, ref string) (string, error) {
	base, err := url.Parse(cur)
	if err != nil {
		return "", fmt.Errorf("bitbucket: %w", err)
	}
	u, err := base.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bitbucket: link %q: %w", ref, err)
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return "", fmt.Errorf("bitbucket: refusing link to %s://%s: not the API host %s", u.Scheme, u.Host, c.base.Host)
	}
	return u.String(), nil
}

func (c *Client) endpointOf(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return c.endpoint(http.MethodGet, pu)
}

// authTransport adds credentials and headers to requests for the API host
// only (never to a redirect or link elsewhere).
type authTransport struct {
	next                http.RoundTripper
	scheme, host        string
	user, token, bearer string
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Accept", "application/json")
	if r.Header.Get("User-Agent") == "" || strings.HasPrefix(r.Header.Get("User-Agent"), "Go-http-client") {
		r.Header.Set("User-Agent", "rolekeeper")
	}
	if strings.EqualFold(req.URL.Host, a.host) && strings.EqualFold(req.URL.Scheme, a.scheme) {
		switch {
		case a.bearer != "":
			r.Header.Set("Authorization", "Bearer "+a.bearer)
		case a.user != "":
			r.SetBasicAuth(a.user, a.token)
		}
	} else {
		r.Header.Del("Authorization")
	}
	return a.next.RoundTrip(r)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// attemptGuard sits under the retry layer: it refuses an attempt once the
// context is done (go-bitbucket would send it anyway), counts attempts and
// bounds each with the per-attempt timeout.
type attemptGuard struct {
	next    http.RoundTripper
	timeout time.Duration
	calls   *atomic.Int64
}

// errAttemptTimeout is an attempt that got no answer in time; unlike a
// context deadline of the caller it is retried.
type errAttemptTimeout time.Duration

func (e errAttemptTimeout) Error() string {
	return fmt.Sprintf("no answer within %s", time.Duration(e))
}
func (errAttemptTimeout) Timeout() bool { return true }

func (g *attemptGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	g.calls.Add(1)
	if g.timeout <= 0 {
		return g.next.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), g.timeout)
	resp, err := g.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timedOut := ctx.Err() != nil && req.Context().Err() == nil
		cancel()
		if timedOut {
			return nil, errAttemptTimeout(g.timeout)
		}
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases an attempt's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// callState keeps what go-bitbucket drops from an answer: Retry-After.
type callState struct {
	retryAfter time.Duration
}

// boundTransport gives one go-bitbucket call the caller's context. It lives
// only for that call; go-bitbucket offers no other way in.
type boundTransport struct {
	ctx  context.Context
	next http.RoundTripper
	st   *callState
	now  func() time.Time
}

func (b *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(req.WithContext(b.ctx))
	if err == nil && resp.StatusCode >= 400 {
		if d, ok := upstream.RetryAfter(resp.Header, b.now()); ok {
			b.st.retryAfter = d
		}
	}
	return resp, err
}
