package inbox

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// openSQLite opens the real store in a temporary directory.
func openSQLite(t *testing.T) store.Inbox {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
