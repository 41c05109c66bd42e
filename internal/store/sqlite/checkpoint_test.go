package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

// openInTemp opens a store in a file of its own, closed when t ends.
func openInTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rk.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// Committed pages reach the database file through the background
// checkpointer, well before the writer's own threshold
// (writerAutocheckpoint): the writer's commits no longer carry them.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	s, path := openInTemp(t)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	body := bytes.Repeat([]byte("x"), 20<<10)
	const n = 300 // 6 MiB: ~1,500 pages, far below writerAutocheckpoint
	for i := range n {
		d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: fmt.Sprint("d-", i), EventKey: "repo:push", Body: body, ReceivedAt: time.Now()}
		if _, err := s.Enqueue(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for size()-before < n*int64(len(body)) {
		if time.Now().After(deadline) {
			t.Fatalf("database file grew by %d bytes in 5 s, want %d: nothing checkpointed it", size()-before, n*len(body))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The checkpointer runs often while commits keep changing the WAL and
// backs off once two checkpoints in a row find it unchanged or unreadable.
func TestNextCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name      string
		last, now walState
		want      time.Duration
	}{
		{"first commits", walState{}, walState{frames: 40, copied: 40}, checkpointBusy},
		{"more commits", walState{frames: 40, copied: 40}, walState{frames: 90, copied: 90}, checkpointBusy},
		{"a reader held frames back", walState{frames: 40, copied: 40}, walState{frames: 90, copied: 60}, checkpointBusy},
		{"WAL restarted", walState{frames: 90, copied: 90}, walState{frames: 12, copied: 12}, checkpointBusy},
		{"nothing new", walState{frames: 90, copied: 90}, walState{frames: 90, copied: 90}, checkpointIdle},
		{"never written", walState{}, walState{}, checkpointIdle},
		{"unreadable", walState{frames: 90, copied: 90}, walState{frames: -1, copied: -1}, checkpointIdle},
	} {
		if got := nextCheckpoint(tc.last, tc.now); got != tc.want {
			t.Errorf("%s: nextCheckpoint(%+v, %+v) = %v, want %v", tc.name, tc.last, tc.now, got, tc.want)
		}
	}
}

// checkpoint reads what the pragma reports: the frames a commit wrote,
// all copied, then the same again when nothing was committed since (the
// loop's cue to back off).
func TestCheckpointReportsTheWAL(t *testing.T) {
	ctx := context.Background()
	s, path := openInTemp(t)
	// Only this test's checkpointer runs: two at once would find each
	// other busy, which the pragma reports as -1 frames.
	if err := s.ckpt.close(); err != nil {
		t.Fatal(err)
	}
	s.ckpt = nil
	c, err := startCheckpointer(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	d := &store.Delivery{Source: model.SourceBitbucket, DeliveryID: "d-1", EventKey: "repo:push", Body: bytes.Repeat([]byte("x"), 10<<10), ReceivedAt: time.Now()}
	if _, err := s.Enqueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	first := c.checkpoint()
	if first.frames < 3 || first.copied != first.frames {
		t.Fatalf("after a 10 KiB commit: %+v, want at least 3 frames, all copied", first)
	}
	if again := c.checkpoint(); again != first {
		t.Fatalf("nothing committed since, yet the WAL went from %+v to %+v", first, again)
	}
	if got := nextCheckpoint(first, c.checkpoint()); got != checkpointIdle {
		t.Fatalf("idle WAL: next checkpoint in %v, want %v", got, checkpointIdle)
	}
}
