package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reloadly/rolekeeper/internal/app"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/server"
	"github.com/reloadly/rolekeeper/internal/store"
)

func runDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	const use = "Usage: rolekeeper deliveries list [--state dead] [--limit N] [--format text|json] (--server URL | --config FILE)\n" +
		"       rolekeeper deliveries redrive (--server URL | --config FILE) SEQ...\n\n" +
		"--server talks to a running daemon (needs ROLEKEEPER_ADMIN_TOKEN); --config opens its store directly.\n"
	if len(args) == 0 || (args[0] != "list" && args[0] != "redrive") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, use)
			return exitOK
		}
		fmt.Fprint(stderr, use)
		return exitUsage
	}
	sub := args[0]
	fs := newFlags("deliveries "+sub, stderr)
	serverURL := fs.String("server", "", "`URL` of a running rolekeeper")
	configPath := fs.String("config", "", "configuration `file` whose store to open")
	state := fs.String("state", "dead", "list: deliveries in this `state` (pending, processing, done, dead)")
	limit := fs.Int("limit", 100, "list: at most `N` deliveries")
	format := fs.String("format", "text", "list: output `format`, text or json")
	fs.Usage = func() { fmt.Fprint(stderr, use, "\n"); fs.PrintDefaults() }
	if code, ok := parseFlags(fs, args[1:], sub == "redrive"); !ok {
		return code
	}
	if (*serverURL == "") == (*configPath == "") {
		fmt.Fprintln(stderr, "deliveries: give exactly one of --server or --config")
		return exitUsage
	}
	var seqs []int64
	if sub == "redrive" {
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "deliveries redrive: give at least one SEQ")
			return exitUsage
		}
		for _, a := range fs.Args() {
			n, err := strconv.ParseInt(a, 10, 64)
			if err != nil || n <= 0 {
				fmt.Fprintf(stderr, "deliveries redrive: %q is not a delivery number\n", a)
				return exitUsage
			}
			seqs = append(seqs, n)
		}
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintln(stderr, "deliveries: --format must be text or json")
		return exitUsage
	}

	var src deliverySource
	if *serverURL != "" {
		src = newAPIDeliveries(*serverURL, getenv)
	} else {
		cfg, code := loadConfig(*configPath, stderr)
		if code != exitOK {
			return code
		}
		st, err := app.OpenStore(ctx, cfg, config.LoadSecrets(getenv))
		if err != nil {
			fmt.Fprintf(stderr, "deliveries: %v\n", err)
			return exitFailed
		}
		defer st.Close()
		src = storeDeliveries{st}
	}

	if sub == "list" {
		ds, err := src.list(ctx, store.DeliveryState(*state), *limit)
		if err != nil {
			fmt.Fprintf(stderr, "deliveries list: %v\n", err)
			return exitFailed
		}
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(ds)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tSOURCE\tEVENT\tDELIVERY\tATTEMPTS\tRECEIVED\tLAST ERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.Source, d.Event, d.DeliveryID, d.Attempts,
				d.ReceivedAt.UTC().Format(time.RFC3339), firstLine(d.LastError))
		}
		_ = tw.Flush()
		return exitOK
	}

	code := exitOK
	for _, seq := range seqs {
		if err := src.redrive(ctx, seq); err != nil {
			fmt.Fprintf(stderr, "deliveries redrive %d: %v\n", seq, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "%d: pending again\n", seq)
	}
	return code
}

type deliverySource interface {
	list(ctx context.Context, state store.DeliveryState, limit int) ([]server.DeliveryView, error)
	redrive(ctx context.Context, seq int64) error
}

// storeDeliveries works on the store directly; a running daemon picks
// redriven deliveries up at its next poll.
type storeDeliveries struct{ st store.Store }

func (s storeDeliveries) list(ctx context.Context, state store.DeliveryState, limit int) ([]server.DeliveryView, error) {
	ds, err := s.st.ListDeliveries(ctx, state, limit)
	if err != nil {
		return nil, err
	}
	out := make([]server.DeliveryView, len(ds))
	for i, d := range ds {
		out[i] = server.ViewDelivery(d)
	}
	return out, nil
}

func (s storeDeliveries) redrive(ctx context.Context, seq int64) error {
	err := s.st.Redrive(ctx, seq, time.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("no dead delivery with that number")
	}
	return err
}

// apiDeliveries goes through a running daemon's API, which needs the
// admin token. Without it, the pipelines' token is sent so that the
// server's 403 can be explained.
type apiDeliveries struct {
	base, token string
	tokenVar    string // the variable token came from; "" when none is set
	hc          *http.Client
}

func newAPIDeliveries(server string, getenv func(string) string) *apiDeliveries {
	a := &apiDeliveries{base: strings.TrimRight(server, "/"), hc: &http.Client{Timeout: 30 * time.Second}}
	for _, v := range []string{config.EnvAdminToken, config.EnvAPIToken} {
		if t := strings.TrimSpace(getenv(v)); t != "" {
			a.token, a.tokenVar = t, v
			break
		}
	}
	return a
}

func (a *apiDeliveries) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		switch {
		case resp.StatusCode == http.StatusForbidden && a.tokenVar == config.EnvAPIToken:
			e.Error = fmt.Sprintf("only %s is set, and it may only create and read deployment gates: deliveries need %s (%s)",
				config.EnvAPIToken, config.EnvAdminToken, e.Error)
		case resp.StatusCode == http.StatusUnauthorized && a.tokenVar == "":
			e.Error = fmt.Sprintf("%s is not set (%s)", config.EnvAdminToken, e.Error)
		case resp.StatusCode == http.StatusUnauthorized:
			e.Error = fmt.Sprintf("the server refused %s (%s)", a.tokenVar, e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (a *apiDeliveries) list(ctx context.Context, state store.DeliveryState, limit int) ([]server.DeliveryView, error) {
	q := url.Values{"state": {string(state)}, "limit": {strconv.Itoa(limit)}}
	var out []server.DeliveryView
	err := a.do(ctx, http.MethodGet, "/api/v1/deliveries?"+q.Encode(), &out)
	return out, err
}

func (a *apiDeliveries) redrive(ctx context.Context, seq int64) error {
	return a.do(ctx, http.MethodPost, "/api/v1/deliveries/"+strconv.FormatInt(seq, 10)+"/redrive", nil)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
