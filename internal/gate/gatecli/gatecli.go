// Package gatecli is `rolekeeper gate`: the pipeline step before a
// deployment. It asks the daemon for a gate, prints who must approve and a
// link, and polls with backoff until the gate is decided or the wait ends.
// Exit 0 approved; 1 rejected, expired or timed out; 2 could not ask.
package gatecli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Exit statuses.
const (
	ExitApproved = 0
	ExitDenied   = 1 // rejected, expired, timed out or interrupted
	ExitCannot   = 2 // usage, bad input, refused or unreachable server
)

// view is the part of the gate API's answer the step shows.
type view struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Environment string `json:"environment"`
	Approvers   []struct {
		AccountID string `json:"account_id"`
		Name      string `json:"name"`
	} `json:"approvers"`
	DecidedBy     string `json:"decided_by"`
	DecidedByName string `json:"decided_by_name"`
	Reason        string `json:"reason"`
	BreakGlass    bool   `json:"break_glass"`
	PRs           []int  `json:"pull_requests"`
	URL           string `json:"url"`
	ExpiresAt     string `json:"expires_at"`
}

// Options are the injectables (tests shorten the waits).
type Options struct {
	Client   *http.Client
	MinPoll  time.Duration // first poll interval (default 5s)
	MaxPoll  time.Duration // backoff cap (default 30s)
	AskTries int           // attempts to ask while the server fails or cannot be reached (default 5)
	Sleep    func(ctx context.Context, d time.Duration) error
	Now      func() time.Time
}

var (
	commitRE = regexp.MustCompile(`^[0-9a-fA-F]{40}$`) // the full hash: a short one may name another commit
	envRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	repoRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

// Run is the subcommand: args after "gate", the process's output streams
// and environment.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return RunWith(ctx, args, stdout, stderr, getenv, Options{})
}

// RunWith is Run with injectables.
func RunWith(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, o Options) int {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.MinPoll <= 0 {
		o.MinPoll = 5 * time.Second
	}
	if o.MaxPoll < o.MinPoll {
		o.MaxPoll = max(30*time.Second, o.MinPoll)
	}
	if o.AskTries <= 0 {
		o.AskTries = 5
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	fs := flag.NewFlagSet("rolekeeper gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rolekeeper gate --server URL --repo WS/SLUG --commit SHA --environment ENV [--wait DURATION]")
		fmt.Fprintln(stderr, "In a Bitbucket Pipelines step the defaults come from BITBUCKET_* variables; the token from ROLEKEEPER_API_TOKEN.")
		fmt.Fprintln(stderr, "Exit status: 0 approved; 1 rejected, expired or timed out; 2 could not ask.")
		fs.PrintDefaults()
	}
	server := fs.String("server", getenv("ROLEKEEPER_URL"), "rolekeeper `URL` (default $ROLEKEEPER_URL)")
	repo := fs.String("repo", getenv("BITBUCKET_REPO_FULL_NAME"), "repository `WS/SLUG` (default $BITBUCKET_REPO_FULL_NAME)")
	commit := fs.String("commit", getenv("BITBUCKET_COMMIT"), "commit `SHA` to deploy (default $BITBUCKET_COMMIT)")
	env := fs.String("environment", getenv("BITBUCKET_DEPLOYMENT_ENVIRONMENT"), "deployment environment `ENV` (default $BITBUCKET_DEPLOYMENT_ENVIRONMENT)")
	pipeline := fs.String("pipeline-uuid", getenv("BITBUCKET_PIPELINE_UUID"), "pipeline `UUID`, recorded (default $BITBUCKET_PIPELINE_UUID)")
	build := fs.String("build-number", getenv("BITBUCKET_BUILD_NUMBER"), "build `N`, recorded (default $BITBUCKET_BUILD_NUMBER)")
	wait := fs.Duration("wait", 30*time.Minute, "how long to wait for a decision; 0 asks once (keep it under the step's max-time)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitApproved
		}
		return ExitCannot
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rolekeeper gate: unexpected arguments %q\n", fs.Args())
		return ExitCannot
	}
	token := getenv("ROLEKEEPER_API_TOKEN")
	var problems []string
	for _, c := range []struct{ name, value, what string }{
		{"--server", *server, "or ROLEKEEPER_URL"},
		{"--repo", *repo, "or BITBUCKET_REPO_FULL_NAME"},
		{"--commit", *commit, "or BITBUCKET_COMMIT"},
		{"--environment", *env, "or BITBUCKET_DEPLOYMENT_ENVIRONMENT"},
	} {
		if strings.TrimSpace(c.value) == "" {
			problems = append(problems, "missing "+c.name+" ("+c.what+")")
		}
	}
	if token == "" {
		problems = append(problems, "missing ROLEKEEPER_API_TOKEN (a secured Pipelines variable)")
	}
	if *repo != "" && !repoRE.MatchString(*repo) {
		problems = append(problems, fmt.Sprintf("--repo %q is not WORKSPACE/SLUG", *repo))
	}
	if *commit != "" && !commitRE.MatchString(*commit) {
		problems = append(problems, fmt.Sprintf("--commit %q is not a full commit hash of 40 hexadecimal characters (use $BITBUCKET_COMMIT, or git rev-parse HEAD)", *commit))
	}
	if *env != "" && !envRE.MatchString(*env) {
		problems = append(problems, fmt.Sprintf("--environment %q is not 1 to 64 letters, digits, '.', '_' or '-'", *env))
	}
	bn := 0
	if *build != "" {
		n, err := strconv.Atoi(*build)
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("--build-number %q is not a number", *build))
		}
		bn = n
	}
	if *wait < 0 {
		problems = append(problems, "--wait is negative")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "rolekeeper gate: "+p)
		}
		return ExitCannot
	}

	c := client{base: strings.TrimRight(*server, "/"), token: token, http: o.Client}
	body, _ := json.Marshal(map[string]any{"repository": *repo, "commit": *commit, "environment": *env,
		"pipeline_uuid": *pipeline, "build_number": bn})
	var g view
	for try := 1; ; try++ {
		code, err := c.do(ctx, http.MethodPost, "/api/v1/gates", body, &g)
		if err == nil {
			break
		}
		if (code >= 400 && code < 500) || try >= o.AskTries || ctx.Err() != nil {
			fmt.Fprintf(stderr, "rolekeeper gate: could not ask for a gate: %v\n", err)
			return ExitCannot
		}
		fmt.Fprintf(stderr, "rolekeeper gate: %v (trying again)\n", err)
		if o.Sleep(ctx, time.Duration(try)*2*time.Second) != nil {
			return ExitCannot
		}
	}
	fmt.Fprintf(stdout, "gate %s: the %s deployment of %s@%s is %s\n", g.ID, g.Environment, *repo, short(*commit), g.State)
	if g.State == "pending" {
		printWaiting(stdout, g)
	}

	deadline := o.Now().Add(*wait)
	interval := o.MinPoll
	lastNote := o.Now()
	for g.State == "pending" {
		left := deadline.Sub(o.Now())
		if left <= 0 {
			fmt.Fprintf(stdout, "timed out after %s: gate %s is still pending; run the step again to keep waiting for the same gate\n", *wait, g.ID)
			return ExitDenied
		}
		if o.Sleep(ctx, min(interval, left)) != nil {
			fmt.Fprintf(stdout, "interrupted: gate %s is still pending\n", g.ID)
			return ExitDenied
		}
		interval = min(interval*2, o.MaxPoll)
		var next view
		code, err := c.do(ctx, http.MethodGet, "/api/v1/gates/"+g.ID, nil, &next)
		switch {
		case err != nil && code >= 400 && code < 500 && code != http.StatusTooManyRequests:
			fmt.Fprintf(stderr, "rolekeeper gate: %v\n", err)
			return ExitCannot
		case err != nil:
			fmt.Fprintf(stderr, "rolekeeper gate: %v (still waiting)\n", err)
			continue
		}
		g = next
		if g.State == "pending" && o.Now().Sub(lastNote) >= 5*time.Minute {
			lastNote = o.Now()
			fmt.Fprintf(stdout, "still waiting for gate %s (%s left)\n", g.ID, deadline.Sub(o.Now()).Round(time.Second))
		}
	}
	who := g.DecidedByName
	if who == "" {
		who = g.DecidedBy
	}
	switch g.State {
	case "approved":
		if g.BreakGlass {
			fmt.Fprintf(stdout, "gate %s opened by a break-glass of %s: %s\n", g.ID, who, g.Reason)
		} else {
			fmt.Fprintf(stdout, "gate %s approved by %s: %s\n", g.ID, who, g.Reason)
		}
		return ExitApproved
	case "rejected":
		fmt.Fprintf(stdout, "gate %s rejected by %s: %s\n", g.ID, who, g.Reason)
	default:
		fmt.Fprintf(stdout, "gate %s is %s: %s\n", g.ID, g.State, g.Reason)
	}
	fmt.Fprintf(stdout, "details: %s\n", g.URL)
	return ExitDenied
}

func printWaiting(w io.Writer, g view) {
	var names []string
	for _, a := range g.Approvers {
		n := a.Name
		if n == "" {
			n = a.AccountID
		}
		names = append(names, n)
	}
	if len(names) > 0 {
		fmt.Fprintf(w, "waiting for an approval from one of: %s\n", strings.Join(names, ", "))
	} else {
		fmt.Fprintln(w, "nobody may approve this deployment (see the details); only a break-glass can open it")
	}
	var prs []string
	for _, n := range g.PRs {
		prs = append(prs, "#"+strconv.Itoa(n))
	}
	if len(prs) > 0 {
		fmt.Fprintf(w, "they approve pull request %s, or comment \"/approve-deploy %s\" on it\n", strings.Join(prs, ", "), g.Environment)
	} else {
		fmt.Fprintln(w, "no pull request brought this commit yet; rolekeeper keeps looking")
	}
	fmt.Fprintf(w, "details: %s\n", g.URL)
	if g.ExpiresAt != "" {
		fmt.Fprintf(w, "the gate expires at %s\n", g.ExpiresAt)
	}
}

type client struct {
	base, token string
	http        *http.Client
}

// do sends a request and decodes a 2xx answer into out. It returns the
// status (0 when there was no answer).
func (c client) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (check ROLEKEEPER_API_TOKEN)"
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, msg)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: not a gate: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
