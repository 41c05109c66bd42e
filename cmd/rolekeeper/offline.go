package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/app"
	"github.com/reloadly/rolekeeper/internal/config"
)

// openApp builds the daemon without starting it, for the subcommands that
// work on its store and clients (audit, report, simulate). The store is
// shared with a running daemon: SQLite in WAL mode and Postgres both allow
// it. Logs go to stderr, quietly.
func openApp(path string, stderr io.Writer, getenv func(string) string) (*app.App, func(), int) {
	cfg, code := loadConfig(path, stderr)
	if code != exitOK {
		return nil, nil, code
	}
	cfg.Log.Level = "warn"
	log, err := app.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return nil, nil, exitFailed
	}
	a, err := app.New(cfg, config.LoadSecrets(getenv), app.Options{Logger: log, RolesYAML: rolekeeper.RolesYAML, ReloadInterval: -1})
	if err != nil {
		printProblems(stderr, err)
		return nil, nil, exitFailed
	}
	closeFn := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	}
	return a, closeFn, exitOK
}

// timeNow is the clock of the offline subcommands.
var timeNow = time.Now
