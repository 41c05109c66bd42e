package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/reloadly/rolekeeper/internal/audit"
)

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("audit", stderr)
	path := fs.String("config", "", "configuration `file` (default: built-in defaults)")
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	a, closeApp, code := openApp(*path, stderr, getenv)
	if code != exitOK {
		return code
	}
	defer closeApp()
	tty := isTerminal(stdout)
	progress := func(p audit.Progress) {
		line := fmt.Sprintf("repositories %d/%d  pull requests checked %d, repaired %d  calls %d", p.ReposDone, p.ReposTotal, p.PRsChecked, p.PRsSynced, p.Calls)
		if p.Jira != "" {
			line += "  jira: " + p.Jira
		}
		if tty {
			fmt.Fprintf(stdout, "\r\033[K%s", line)
		}
	}
	res, err := a.Audit(ctx, progress)
	if tty {
		fmt.Fprintln(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "audit: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "audited %d repositories: %d pull requests listed, %d unchanged, %d re-evaluated; %d deployments checked, %d new findings; %d upstream calls, %d left in this hour's budget\n",
		res.Repos, res.PRsListed, res.PRsUnchanged, res.PRsSynced, res.Deployments, res.Findings, res.Calls, res.BudgetLeft)
	if res.Stopped != "" {
		fmt.Fprintf(stdout, "stopped early: %s\n", res.Stopped)
	}
	return exitOK
}

// isTerminal reports whether w is a character device (progress is drawn
// in place only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
