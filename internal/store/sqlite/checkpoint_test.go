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

// Committed pages reach the database file through the background
// checkpointer, well before the writer's own threshold
// (writerAutocheckpoint): the writer's commits no longer carry them.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rk.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
