// Package postgres is the scale-out store: several replicas share one
// database; the inbox is claimed with FOR UPDATE SKIP LOCKED and the cron
// leader holds a lease row.
//
// Conventions shared with store/sqlite (the conformance suite in
// store/storetest holds both to them):
//   - times are truncated to the millisecond and returned in UTC; a zero time
//     is stored as NULL and comes back zero;
//   - slices and maps are JSON text; nil is stored as NULL and comes back nil,
//     an empty one comes back empty;
//   - raw JSON (decisions, snapshots, gate data) is kept byte for byte as
//     text; empty comes back nil;
//   - keys that order results (kv names, repositories, finding keys, gate
//     ids) use the "C" collation: byte order, as in SQLite and Go.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/group"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ store.Store = (*Store)(nil)

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	pool   *pgxpool.Pool
	inbox  *pgxpool.Pool // the inbox's bookkeeping, commits not waited for (see relaxedPool)
	intake enqueuer      // Enqueue's group insert (enqueue.go)
	// Complete's grouped update (complete.go)
	completions group.Group[completeReq]
}

// Open connects to the database at dsn (a libpq URL or key=value string;
// pool_max_conns and runtime parameters such as search_path are honoured)
// and applies the embedded migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	inbox, err := pgxpool.NewWithConfig(ctx, relaxedPool(cfg))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s.inbox = inbox
	return s, nil
}

// relaxedPool configures the small pool of the inbox's own bookkeeping
// (claims, renewals, completions, retries, burials, heartbeats) with
// synchronous_commit=off: the server answers the commit before its WAL is
// flushed, so these writes do not wait for an fsync nor hold the intake's
// group commit behind theirs.
//
// Why that is safe: an unflushed commit can be lost only if the server
// crashes within a few hundred milliseconds (wal_writer_delay), and never
// out of order: a later synchronous commit (the intake's insert, every
// decision and record) flushes the WAL with every earlier commit in it.
// What a loss undoes is a claim (the delivery is claimed again), a
// completion (it runs again: processing is at least once, its actions
// idempotent), a retry or a burial (the claim comes back after its lease or
// its replica's heartbeat). The acknowledged insert of a delivery stays a
// synchronous commit on the main pool.
func relaxedPool(main *pgxpool.Config) *pgxpool.Config {
	cfg := main.Copy()
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	// A claim must walk deliveries_open in seq order and stop at its
	// limit. Planned on statistics taken while the inbox was empty (or as
	// a generic plan, which pgx's statement cache gets after five runs), it
	// scanned every open row through deliveries_due and sorted them: with a
	// backlog of 27,000 deliveries each claim took 12 ms of the server's
	// CPU, median, and starved the intake. Every statement of this pool
	// reads deliveries by seq, by its primary key or by deliveries_open,
	// so none needs a bitmap scan or a sort; planned without them, a claim
	// costs the same whatever the backlog (TestClaimCostDoesNotGrowWithTheBacklog).
	cfg.ConnConfig.RuntimeParams["enable_bitmapscan"] = "off"
	cfg.ConnConfig.RuntimeParams["enable_sort"] = "off"
	// Each statement of this pool is planned once per connection. The
	// grouped completion's generic plan (a nested loop over the primary
	// key) is estimated dearer than a custom one for a known array, so the
	// server planned it again at every run: 146 µs of its 266 µs went to
	// the bind. The plans that a generic plan gets are the ones these
	// settings and TestClaimCostDoesNotGrowWithTheBacklog hold to.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	cfg.MaxConns = min(cfg.MaxConns, 4)
	cfg.MinConns = 0
	return cfg
}

// Close closes the pools.
func (s *Store) Close() error {
	if s.inbox != nil {
		s.inbox.Close()
	}
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// migrateLock is the advisory lock key: one per schema, so replicas of one
// deployment wait for each other while separate schemas do not.
const migrateLock = `hashtextextended('rolekeeper.migrate.' || coalesce(current_schema(), ''), 0)`

// migrate applies, in name order, the embedded migrations not yet recorded
// in schema_migrations, under an advisory lock so that replicas starting
// together apply each one once.
func (s *Store) migrate(ctx context.Context) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+migrateLock+`)`); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+migrateLock+`)`); uerr != nil {
			// Closing the session releases the lock; the pool drops the connection.
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text        PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
		if err := apply(ctx, conn.Conn(), version, string(body)); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
	}
	return nil
}

func apply(ctx context.Context, conn *pgx.Conn, version, body string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, body); err != nil { // no arguments: simple protocol, many statements
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// affected turns "no row changed" into ErrNotFound.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}
