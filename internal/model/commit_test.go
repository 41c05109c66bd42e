package model

import (
	"strings"
	"testing"
)

func TestSameFullCommit(t *testing.T) {
	full := "3f1c2d9e0b4a4c559e0f2b7d1c9a8e113f1c2d9e"
	twin := full[:12] + strings.Repeat("0", 28) // shares the 12-hex prefix payloads carry
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{full, full, true},
		{full, strings.ToUpper(full), true},
		{full, twin, false},
		{full[:12], full, false}, // short: resolve first
		{full, full[:12], false},
		{full[:12], full[:12], false},
		{"", "", false},
		{strings.Repeat("g", 40), strings.Repeat("g", 40), false},
	} {
		if got := SameFullCommit(tt.a, tt.b); got != tt.want {
			t.Errorf("SameFullCommit(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if !IsFullCommit(full) || IsFullCommit(full[:39]) || IsFullCommit(full+"0") || IsFullCommit("") {
		t.Error("IsFullCommit accepts or refuses the wrong lengths")
	}
}
