// Package sqlite is the embedded store: one SQLite file in WAL mode with a
// single writer connection and a pool of readers.
//
// Conventions shared with store/postgres (the conformance suite in
// store/storetest holds both to them):
//   - times are truncated to the millisecond and returned in UTC; a zero time
//     is stored as NULL and comes back zero;
//   - slices and maps are JSON text; nil is stored as NULL and comes back nil,
//     an empty one comes back empty;
//   - raw JSON (decisions, snapshots, gate data) is kept byte for byte; empty
//     comes back nil.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	sqlite3 "modernc.org/sqlite"
	sqlitelib "modernc.org/sqlite/lib"

	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/group"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*Store)(nil)

// Store is the SQLite implementation of store.Store.
type Store struct {
	w *sql.DB // one connection: SQLite allows one writer at a time
	r *sql.DB // readers; WAL lets them run beside the writer

	path string   // the database file ("" in memory): Own locks path+".lock"
	lock *os.File // held while this process owns the file (see Own)
	ckpt *checkpointer

	// Enqueue group commit (see inbox.go).
	mu      sync.Mutex
	queue   []*enqueueReq
	leading bool
	idle    chan struct{} // closed when no group commit is under way (yieldToIntake)

	completions group.Group[completeReq] // Complete's grouped transaction (complete.go)

	stmts prepared // the inbox's statements, prepared once on the writer (prepared.go)
}

// busyTimeoutMS is how long a connection waits for a lock held by another
// process (a CLI next to the daemon) before failing.
const busyTimeoutMS = 10000

// Open opens (creating when missing) the database file at path and applies
// the embedded migrations. ":memory:" gives a private in-memory database on
// a single connection, for throwaway use.
//
// synchronous=FULL: in WAL mode NORMAL may lose the last commits on power
// loss, and a webhook is acknowledged only once its delivery is stored, so
// every commit is fsynced. Enqueue groups concurrent deliveries into one
// transaction, which keeps that affordable.
func Open(ctx context.Context, path string) (*Store, error) {
	syncData.Do(func() { _, _ = sqlite3.Fdatasync(true) })
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	mem := path == ":memory:"
	if !mem {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("sqlite: create directory: %w", err)
			}
		}
	}
	w, err := openOne(dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s := &Store{w: w, r: w, idle: closedChan()}
	if !mem {
		s.path = filePath(path)
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if mem {
		return s, nil
	}
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	if err := r.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	if s.ckpt, err = startCheckpointer(ctx, path); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openOne opens a pool of exactly one connection, kept open for good: the
// writer (SQLite allows one at a time) and the checkpointer.
func openOne(dsn string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// syncData makes SQLite commit with fdatasync(2) instead of fsync(2), as
// SQLite built by any Linux distribution does (this transpiled library
// keeps the source default). A commit is as durable: fdatasync writes the
// data and the size needed to read it back, only not the timestamps, whose
// journal commit on ext4 is often what fsync waits for, while every
// webhook's 2xx waits for that commit. Where the call is unavailable
// (macOS, Windows) the library keeps fsync.
var syncData sync.Once

// dsn builds the driver's connection string. The writer begins IMMEDIATE
// transactions so a transaction never has to upgrade its lock (which would
// fail at once instead of waiting out busy_timeout).
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutocheckpoint))
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	sep := "?"
	if strings.Contains(path, "?") { // a file: URI with its own parameters
		sep = "&"
	}
	return path + sep + q.Encode()
}

// checkpointDSN is the connection string of the checkpointer (see
// checkpoint.go): not query_only, since a checkpoint writes the file.
func checkpointDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "synchronous(FULL)")
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

// Close stops the checkpointer, closes both pools, then gives up ownership
// of the file.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		err = s.ckpt.close()
		s.ckpt = nil
	}
	err = errors.Join(err, s.stmts.close(), s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close()) // closing the file releases its lock
		s.lock = nil
	}
	return err
}

// Ping checks that the writer and the readers answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// migrate applies, in name order, the embedded migrations not yet recorded
// in schema_migrations, each in its own transaction with its record.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT    PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
		if err := s.apply(ctx, version, string(body)); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, version, body string) error {
	tx, err := s.w.BeginTx(ctx, nil) // IMMEDIATE: another process migrating waits
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, CAST(unixepoch('subsec') * 1000 AS INTEGER))`, version); err != nil {
		return err
	}
	return tx.Commit()
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlitelib.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlitelib.SQLITE_CONSTRAINT_PRIMARYKEY
}

// affected turns "no row changed" into ErrNotFound.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
