package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/reloadly/rolekeeper/internal/report"
)

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("report", stderr)
	path := fs.String("config", "", "configuration `file` (default: built-in defaults)")
	week := fs.String("week", "", "ISO `week` YYYY-Www (default: the last complete week)")
	format := fs.String("format", "md", "output `format`: "+strings.Join(report.Formats, ", "))
	out := fs.String("out", "", "write to `file` instead of standard output")
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	if report.ContentType(*format) == "application/octet-stream" {
		fmt.Fprintf(stderr, "report: --format must be one of %s\n", strings.Join(report.Formats, ", "))
		return exitUsage
	}
	a, closeApp, code := openApp(*path, stderr, getenv)
	if code != exitOK {
		return code
	}
	defer closeApp()
	w := report.LastComplete(timeNow(), a.Location())
	if *week != "" {
		var err error
		if w, err = report.ParseWeek(*week, a.Location()); err != nil {
			fmt.Fprintf(stderr, "report: %v\n", err)
			return exitUsage
		}
	}
	r, err := a.WeeklyReport(ctx, w)
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return exitFailed
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, r, *format); err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return exitFailed
	}
	if *out == "" {
		_, err = stdout.Write(buf.Bytes())
	} else {
		err = os.WriteFile(*out, buf.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return exitFailed
	}
	return exitOK
}
