package model

import (
	"strings"
	"testing"
	"time"
)

func TestLastPush(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 3, 1, 9, m, 0, 0, time.UTC) }
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	// Newest first: an edit at B, the push of B, an approval, an edit at A,
	// the creation at A.
	acts := []PRActivity{
		{Kind: ActivityUpdate, At: at(50), SourceCommit: b[:12]},
		{Kind: ActivityUpdate, At: at(40), SourceCommit: b[:12]},
		{Kind: ActivityApproval, At: at(30)},
		{Kind: ActivityUpdate, At: at(20), SourceCommit: a[:12]},
		{Kind: ActivityUpdate, At: at(10), SourceCommit: a[:12]},
	}
	if got, ok := LastPush(acts, b); !ok || !got.Equal(at(40)) {
		t.Errorf("head b pushed %v %v, want 09:40", got, ok)
	}
	if got, ok := LastPush(acts, a); !ok || !got.Equal(at(10)) {
		t.Errorf("a pushed %v %v, want 09:10", got, ok)
	}
	if _, ok := LastPush(acts, strings.Repeat("c", 40)); ok {
		t.Error("unknown head found")
	}
	// Force-pushed back to A: the newest run counts, not the creation.
	back := append([]PRActivity{{Kind: ActivityUpdate, At: at(55), SourceCommit: a[:12]}}, acts...)
	if got, ok := LastPush(back, a); !ok || !got.Equal(at(55)) {
		t.Errorf("force-push back %v %v, want 09:55", got, ok)
	}
}

func TestSameCommit(t *testing.T) {
	full := "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{full, full, true},
		{full[:12], full, true},
		{strings.ToUpper(full[:12]), full, true},
		{full[:7], full, false}, // too short to trust
		{full[:12], "0123456789acffff", false},
		{"", "", false},
		{full[:7], full[:7], true},
	} {
		if got := SameCommit(tt.a, tt.b); got != tt.want {
			t.Errorf("SameCommit(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}
