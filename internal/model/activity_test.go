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
	if got, ok := LastPush(acts, b, false); !ok || !got.Equal(at(40)) {
		t.Errorf("head b pushed %v %v, want 09:40", got, ok)
	}
	if got, ok := LastPush(acts, a, false); !ok || !got.Equal(at(10)) {
		t.Errorf("a pushed %v %v, want 09:10", got, ok)
	}
	if _, ok := LastPush(acts, strings.Repeat("c", 40), false); ok {
		t.Error("unknown head found")
	}
	// Force-pushed back to A: the newest run counts, not the creation.
	back := append([]PRActivity{{Kind: ActivityUpdate, At: at(55), SourceCommit: a[:12]}}, acts...)
	if got, ok := LastPush(back, a, false); !ok || !got.Equal(at(55)) {
		t.Errorf("force-push back %v %v, want 09:55", got, ok)
	}
}

// TestLastPushTwin: a commit sharing the first 12 hex of the approved head
// pushed after the approval looks, in the activity, like an edit of the
// approved head. Once rolekeeper knows both full hashes the newest entry
// dates the push, so the approval is stale; without the twin known, the run
// still merges (an edit keeps the approval).
func TestLastPushTwin(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 3, 1, 9, m, 0, 0, time.UTC) }
	a := "0123456789ab" + strings.Repeat("a", 28)
	twin := "0123456789ab" + strings.Repeat("b", 28)
	acts := []PRActivity{
		{Kind: ActivityUpdate, At: at(40), SourceCommit: twin[:12]}, // push of the twin (or an edit?)
		{Kind: ActivityApproval, At: at(30)},
		{Kind: ActivityUpdate, At: at(10), SourceCommit: a[:12]}, // creation at a
	}
	if got, ok := LastPush(acts, twin, HasTwin(twin, []string{a, twin})); !ok || !got.Equal(at(40)) {
		t.Errorf("twin known: pushed %v %v, want 09:40", got, ok)
	}
	if got, ok := LastPush(acts, twin, false); !ok || !got.Equal(at(10)) {
		t.Errorf("no twin known: pushed %v %v, want 09:10 (the run)", got, ok)
	}
	for _, tt := range []struct {
		head  string
		known []string
		want  bool
	}{
		{twin, []string{a}, true},
		{twin, []string{twin, strings.ToUpper(twin)}, false},
		{twin, []string{strings.Repeat("c", 40)}, false},
		{twin[:12], []string{a, twin}, true},
		{twin[:12], []string{a}, false},
		{"0123", []string{a, twin}, false},
		{twin, []string{a[:12]}, false}, // only full hashes are knowledge
	} {
		if got := HasTwin(tt.head, tt.known); got != tt.want {
			t.Errorf("HasTwin(%.14s, %v) = %v", tt.head, tt.known, got)
		}
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

// TestLastPushRetarget: a pull request retargeted to another branch shows a
// new diff over the same head; the retarget ends the run like a push.
func TestLastPushRetarget(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 3, 1, 9, m, 0, 0, time.UTC) }
	a := strings.Repeat("a", 40)
	acts := []PRActivity{
		{Kind: ActivityUpdate, At: at(50), SourceCommit: a[:12], DestinationBranch: "main"}, // an edit after the retarget
		{Kind: ActivityUpdate, At: at(40), SourceCommit: a[:12], DestinationBranch: "main"}, // the retarget
		{Kind: ActivityApproval, At: at(30)},
		{Kind: ActivityUpdate, At: at(20), SourceCommit: a[:12], DestinationBranch: "side"},
		{Kind: ActivityUpdate, At: at(10), SourceCommit: a[:12], DestinationBranch: "side"}, // opened into side
	}
	if got, ok := LastPush(acts, a, false); !ok || !got.Equal(at(40)) {
		t.Errorf("pushed %v %v, want the retarget at 09:40", got, ok)
	}
	// Entries without a destination (older captures) do not end the run.
	for i := range acts {
		acts[i].DestinationBranch = ""
	}
	if got, ok := LastPush(acts, a, false); !ok || !got.Equal(at(10)) {
		t.Errorf("pushed %v %v, want the opening at 09:10", got, ok)
	}
}
