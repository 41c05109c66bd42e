package doctor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/reloadly/rolekeeper/internal/config"
)

// Exit statuses of Command.
const (
	ExitOK     = 0 // every check passed, or only warned
	ExitFailed = 1 // a check failed (or the config does not load)
	ExitUsage  = 2 // bad flags or arguments
)

// Command is `rolekeeper doctor [--config FILE] [--timeout DURATION]`:
// args are the arguments after "doctor", secrets are read through getenv.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("rolekeeper doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration `file` (default: the built-in defaults, as `rolekeeper serve` without --config)")
	timeout := fs.Duration("timeout", DefaultTimeout, "bound on each check that talks to the store, Bitbucket or Jira")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rolekeeper doctor [--config FILE] [--timeout DURATION]\n\n"+
			"Checks roles.yaml, the store, the Bitbucket and Jira credentials and what they can read,\n"+
			"the webhook secrets, public_url, the API token and dry-run; one line per check (ok, warn, FAIL).\n\n"+
			"Exit status: 0 all ok or warnings only, 1 a check failed, 2 usage.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rolekeeper doctor: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return ExitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "rolekeeper doctor: --timeout must be positive")
		return ExitUsage
	}

	cfg := config.Default()
	if *configPath != "" {
		var err error
		cfg, err = config.Load(*configPath)
		if err != nil {
			var ce *config.Errors
			if errors.As(err, &ce) {
				for _, p := range ce.Problems {
					fmt.Fprintf(stdout, "%-4s  %-17s  %s\n", Fail, checkConfig, p)
				}
			} else {
				fmt.Fprintf(stdout, "%-4s  %-17s  %v\n", Fail, checkConfig, err)
			}
			fmt.Fprintf(stdout, "\nthe configuration does not load: fix it first (`rolekeeper validate --config %s`)\n", *configPath)
			return ExitFailed
		}
	}
	if !Run(ctx, cfg, config.LoadSecrets(getenv), stdout, Options{Timeout: *timeout, Now: time.Now}) {
		return ExitFailed
	}
	return ExitOK
}
