package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// completeReq is one Complete call. Concurrent calls are grouped (package
// group) into one relaxed transaction on the writer, as Enqueue groups
// inserts: each completion is a transaction of its own otherwise (two
// pragmas, begin, update, commit), and the workers' completions queue for
// the one writer behind the intake's group commits anyway.
type completeReq struct {
	c  store.Claim
	at time.Time
}

// maxCompleteBatch bounds one grouped completion.
const maxCompleteBatch = 256

// Complete marks the delivery of claim c done; ErrLostClaim when c is not
// its current claim. Concurrent calls are committed together.
func (s *Store) Complete(ctx context.Context, c store.Claim, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: complete %d: %w", c.Seq, err)
	}
	return s.completions.Do(ctx, completeReq{c: c, at: now}, maxCompleteBatch, func(ctx context.Context, batch []completeReq) []error {
		return s.completeBatch(context.WithoutCancel(ctx), batch)
	})
}

// completeBatch completes every claim of batch in one transaction; a claim
// that is not its delivery's current one gets ErrLostClaim. When the
// transaction fails, every claim of it gets the error (nothing was
// completed: a completion is redone, never lost).
func (s *Store) completeBatch(ctx context.Context, batch []completeReq) []error {
	errs := make([]error, len(batch))
	err := s.relaxed(ctx, func(w *sql.Conn) error {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt := tx.StmtContext(ctx, s.stmts.complete)
		for i, r := range batch {
			errs[i] = held(stmt.ExecContext(ctx, store.DeliveryDone, ms(r.at), r.c.Seq, store.DeliveryProcessing, r.c.Token))
		}
		return tx.Commit()
	})
	for i, r := range batch {
		if err != nil {
			errs[i] = err
		}
		if errs[i] != nil {
			errs[i] = fmt.Errorf("sqlite: complete %d: %w", r.c.Seq, errs[i])
		}
	}
	return errs
}
