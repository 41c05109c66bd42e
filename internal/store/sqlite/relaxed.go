package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// relaxed runs fn on the writer connection with synchronous=NORMAL, then
// puts the connection back to FULL.
//
// Why the inbox's own bookkeeping per delivery (claims, completions,
// retries, burials) need not be fsynced: in WAL mode a NORMAL commit is
// written to the WAL but not fsynced, so it survives a crash of the
// process (the OS has the pages) and may be lost only on a power loss or a
// crash of the OS, together with any later NORMAL commit, never with an
// earlier FULL one: the next FULL commit (the intake's group insert) fsyncs
// the WAL, and with it every frame before it. What such a loss can undo is
// a claim (the delivery is pending again and claimed again), a completion
// (the delivery runs again; processing is at least once and its actions are
// idempotent), a retry or a burial (the claim comes back after its lease,
// or at once through Own). The acknowledged insert of a delivery is never
// relaxed: Enqueue commits with FULL before its 2xx. Renewals and
// heartbeats, a few a minute and due on time, stay FULL: the two pragmas
// would cost them more than the fsync saves.
//
// The pragma is per connection and may change only outside a transaction:
// fn must commit or roll back whatever it begins. When the connection
// cannot be put back to FULL it is discarded (the pool opens a new one, at
// FULL from the DSN), so no durable write ever runs relaxed.
func (s *Store) relaxed(ctx context.Context, fn func(w *sql.Conn) error) error {
	s.yieldToIntake(ctx)
	w, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return s.restore(w, err)
	}
	ferr := fn(w)
	return errors.Join(ferr, s.restore(w, nil))
}

// restore puts w back to synchronous=FULL, whatever ctx says; on failure it
// discards the connection.
func (s *Store) restore(w *sql.Conn, cause error) error {
	if _, err := w.ExecContext(context.Background(), `PRAGMA synchronous = FULL`); err != nil {
		_ = w.Raw(func(any) error { return driver.ErrBadConn }) // never hand a relaxed connection back
		return errors.Join(cause, fmt.Errorf("sqlite: restore synchronous=FULL: %w", err))
	}
	return cause
}

// execRelaxed is ExecContext on the writer with synchronous=NORMAL.
func (s *Store) execRelaxed(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.relaxed(ctx, func(w *sql.Conn) error {
		var err error
		res, err = w.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}
