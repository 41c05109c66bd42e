package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/app"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// stopTimeout bounds the graceful stop: in-flight requests and the inbox
// drain. Kubernetes' default grace period is 30 s.
const stopTimeout = 25 * time.Second

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "", "configuration `file` (default: built-in defaults, SQLite in ./data, the shipped roles.yaml)")
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	cfg, code := loadConfig(*path, stderr)
	if code != exitOK {
		return code
	}
	log, err := app.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return exitFailed
	}
	defer func() { _ = log.Sync() }()

	b := currentBuild()
	a, err := app.New(cfg, config.LoadSecrets(getenv), app.Options{
		Logger:    log,
		RolesYAML: rolekeeper.RolesYAML,
		Version:   b.Version,
		Commit:    b.Commit,
		Date:      b.Date,
	})
	if err != nil {
		printProblems(stderr, err)
		return exitFailed
	}
	if err := a.Start(ctx); err != nil {
		log.Error("start failed", zap.Error(err))
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = a.Stop(stopCtx)
		return exitFailed
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			log.Info("SIGHUP: reloading roles.yaml")
			_ = a.Reload() // the outcome is logged and in the metrics
		}
	}

	log.Info("stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		log.Error("graceful stop incomplete", zap.Error(err))
		return exitFailed
	}
	return exitOK
}

// loadConfig loads the file, or the built-in defaults when path is "". It
// prints problems, one FILE:LINE:COL line each.
func loadConfig(path string, stderr io.Writer) (config.Config, int) {
	if path == "" {
		return config.Default(), exitOK
	}
	cfg, err := config.Load(path)
	if err != nil {
		printProblems(stderr, err)
		return config.Config{}, exitFailed
	}
	return cfg, exitOK
}

// printProblems prints an error from loading a file: one line per problem
// when it carries them, else one line.
func printProblems(w io.Writer, err error) {
	var ce *config.Errors
	var re *roles.Errors
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			fmt.Fprintln(w, p.String())
		}
	case errors.As(err, &re):
		for _, p := range re.Problems {
			fmt.Fprintln(w, p.String())
		}
	default:
		fmt.Fprintf(w, "%s: %v\n", programName, err)
	}
}
