package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/simulate"
)

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("simulate", stderr)
	path := fs.String("config", "", "configuration `file` whose store holds the history (default: built-in defaults)")
	proposed := fs.String("roles", "", "the proposed roles.yaml `file`")
	since := fs.String("since", "4w", "how far back to replay: `4w`, 10d, 36h or a date")
	format := fs.String("format", "text", "output `format`, text or json")
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	if *proposed == "" {
		fmt.Fprintln(stderr, "simulate: --roles PROPOSED.yaml is required")
		return exitUsage
	}
	now := timeNow()
	from, err := simulate.ParseSince(*since, now)
	if err != nil {
		fmt.Fprintf(stderr, "simulate: %v\n", err)
		return exitUsage
	}
	prop, err := roles.Load(*proposed)
	if err != nil {
		printProblems(stderr, err)
		return exitFailed
	}
	a, closeApp, code := openApp(*path, stderr, getenv)
	if code != exitOK {
		return code
	}
	defer closeApp()
	res, err := simulate.Run(ctx, a.Store(), a.Roles().Get(), prop, from, now)
	if err != nil {
		fmt.Fprintf(stderr, "simulate: %v\n", err)
		return exitFailed
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return exitFailed
		}
		return exitOK
	}
	simulate.Print(stdout, res)
	return exitOK
}
