package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/reloadly/rolekeeper/internal/config"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name     string
		log      config.Log
		wantJSON bool
		wantLine bool // the info line is written
	}{
		{"auto is JSON when not a terminal", config.Log{Level: "info", Format: config.LogAuto}, true, true},
		{"console", config.Log{Level: "info", Format: config.LogConsole}, false, true},
		{"json", config.Log{Level: "debug", Format: config.LogJSON}, true, true},
		{"level filters", config.Log{Level: "error", Format: config.LogJSON}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(tt.log, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello")
			out := strings.TrimSpace(buf.String())
			if (out != "") != tt.wantLine {
				t.Fatalf("output %q, want a line: %v", out, tt.wantLine)
			}
			if !tt.wantLine {
				return
			}
			if got := json.Valid([]byte(out)); got != tt.wantJSON {
				t.Errorf("JSON = %v, want %v: %s", got, tt.wantJSON, out)
			}
		})
	}
	if _, err := NewLogger(config.Log{Level: "loud"}, &bytes.Buffer{}); err == nil {
		t.Error("a bad level was accepted")
	}
}
