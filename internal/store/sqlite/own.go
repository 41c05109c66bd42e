package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

var _ store.Owned = (*Store)(nil)

// ErrInUse is returned by Own when another process owns the database.
var ErrInUse = errors.New("in use by another rolekeeper process")

// filePath is the file behind an Open path: a file: URI loses its scheme
// and parameters; an in-memory URI has none.
func filePath(path string) string {
	if !strings.HasPrefix(path, "file:") {
		return path
	}
	p, q, _ := strings.Cut(strings.TrimPrefix(path, "file:"), "?")
	if p == ":memory:" || strings.Contains(q, "mode=memory") {
		return ""
	}
	return p
}

// Own makes this process the one that works the database: it takes an
// exclusive OS lock on a file beside it (path + ".lock", holding the
// owner's pid), refusing with ErrInUse while another process holds it,
// and then puts back to pending every delivery still marked processing.
// Those were claimed by an earlier owner that died (kill -9, OOM): with the
// lock held no other process can be working them, so they need not wait
// out their leases. The lock lasts until Close (or the process's end).
//
// Commands that only read or redrive (report, deliveries) do not call Own
// and may run beside the daemon.
func (s *Store) Own(ctx context.Context, now time.Time) (int, error) {
	if s.path != "" && s.lock == nil {
		lockPath := s.path + ".lock"
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return 0, fmt.Errorf("sqlite: lock %s: %w", lockPath, err)
		}
		if err := lockFile(f); err != nil {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			f.Close()
			pid := strings.TrimSpace(string(b[:n]))
			if pid == "" {
				pid = "unknown"
			}
			return 0, fmt.Errorf("sqlite: %s is %w (pid %s holds %s): one process at a time may work a SQLite store; stop it, or use PostgreSQL for several replicas: %v",
				s.path, ErrInUse, pid, lockPath, err)
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		s.lock = f
	}
	res, err := s.w.ExecContext(ctx, `UPDATE deliveries
		SET state = ?, next_attempt_at = ?, claimed_by = '', claimed_until = NULL, claim_token = ''
		WHERE state = ?`, store.DeliveryPending, ms(now), store.DeliveryProcessing)
	if err != nil {
		return 0, fmt.Errorf("sqlite: release earlier claims: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: release earlier claims: %w", err)
	}
	return int(n), nil
}
