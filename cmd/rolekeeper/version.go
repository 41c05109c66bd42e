package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildInfo is what `rolekeeper version` prints: the -ldflags values, or
// what the Go toolchain recorded in the binary.
type buildInfo struct {
	Version, Commit, Date string
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b.withDefaults()
	}
	if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && commit == "" && b.Commit != "" {
		b.Commit += "-dirty"
	}
	return b.withDefaults()
}

func (b buildInfo) withDefaults() buildInfo {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	fs := newFlags("version", stderr)
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	b := currentBuild()
	fmt.Fprintf(stdout, "rolekeeper %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n", b.Version, b.Commit, b.Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
