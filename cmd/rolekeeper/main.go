// Command rolekeeper enforces an organisation's roles and responsibilities
// on Bitbucket Cloud and Jira Cloud. main only turns signals into a context
// and calls run; each subcommand lives in its own file.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/reloadly/rolekeeper/internal/demo"
	"github.com/reloadly/rolekeeper/internal/doctor"
	"github.com/reloadly/rolekeeper/internal/gate/gatecli"
)

// Set at build time: go build -ldflags "-X main.version=1.2.3 -X
// main.commit=abc1234 -X main.date=2026-11-02T09:00:00Z".
var (
	version string
	commit  string
	date    string
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// cmdFunc is a subcommand: its arguments (without its name), its output
// streams and the environment. It returns the exit status.
type cmdFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int

// command is one entry of the subcommand table.
type command struct {
	run     cmdFunc
	summary string // one line for the usage text
}

// commands is the table of subcommands. Add a subcommand here, with its
// function in a file of its own.
func commands() map[string]command {
	return map[string]command{
		"serve":      {runServe, "run the daemon: webhooks, scheduled audits, weekly reports, gate API"},
		"validate":   {runValidate, "check roles.yaml (--roles FILE) or a config and its roles (--config FILE)"},
		"explain":    {runExplain, "show which rules a pull request would trigger, who would review, and why"},
		"version":    {runVersion, "print version, commit and build date"},
		"deliveries": {runDeliveries, "list or redrive stored webhook deliveries (dead letters)"},
		"gate":       {gatecli.Run, "for a pipeline step: ask the daemon for a deployment approval and wait"},
		"doctor":     {doctor.Command, "check the configuration, credentials and upstream access"},
		"audit":      {runAudit, "one audit pass now (the same as the scheduled one)"},
		"report":     {runReport, "the weekly compliance report (md, html, json, csv)"},
		"simulate":   {runSimulate, "replay stored history through a proposed roles.yaml and show what would differ"},
		"demo":       {demo.Command, "replay a sample week against a built-in sandbox Bitbucket and Jira, then serve until Ctrl-C"},
		"evidence":   {runEvidence, "verify the tamper-evident decision log (store or bundle), export a week's bundle, print the public key"}, // evidence (h6)
	}
}

// Exit statuses shared by the subcommands.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "rolekeeper"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout, cmds)
		return exitOK
	case "-v", "-version", "--version":
		args = []string{"version"}
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", programName, args[0])
		usage(stderr, cmds)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdout, stderr, getenv)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	width := 0
	for n := range cmds {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", programName)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", programName)
}

// newFlags returns a flag set that reports to stderr and does not exit.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(programName+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args; ok is false when the command should return code
// (0 for -h, 2 for a usage error). Positional arguments are refused unless
// positional is true.
func parseFlags(fs *flag.FlagSet, args []string, positional bool) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, false
		}
		return exitUsage, false
	}
	if !positional && fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}
