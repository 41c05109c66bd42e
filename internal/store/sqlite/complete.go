package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

// completer groups concurrent Complete calls into one relaxed transaction
// on the writer, as Enqueue groups inserts: each completion is a
// transaction of its own otherwise (two pragmas, begin, update, commit),
// and the workers' completions queue for the one writer behind the
// intake's group commits anyway. Its zero value is ready.
type completer struct {
	mu      sync.Mutex
	queue   []*completeReq
	leading bool
}

type completeReq struct {
	c   store.Claim
	at  time.Time
	res chan completeRes // buffered: answered once with lead, once with the result
}

type completeRes struct {
	lead bool
	err  error
}

// maxCompleteBatch bounds one grouped completion.
const maxCompleteBatch = 256

// Complete marks the delivery of claim c done; ErrLostClaim when c is not
// its current claim. Concurrent calls are committed together: the first
// caller to find none under way leads, then hands the lead to the oldest
// caller still queued.
func (s *Store) Complete(ctx context.Context, c store.Claim, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: complete %d: %w", c.Seq, err)
	}
	q := &s.completions
	req := &completeReq{c: c, at: now, res: make(chan completeRes, 2)}
	q.mu.Lock()
	q.queue = append(q.queue, req)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if !lead {
		if r := <-req.res; !r.lead {
			return r.err
		}
	}
	s.completeQueue(ctx)
	return (<-req.res).err
}

// completeQueue completes the head of the queue, which holds the caller's
// own request, and passes the lead on.
func (s *Store) completeQueue(ctx context.Context) {
	q := &s.completions
	q.mu.Lock()
	n := min(len(q.queue), maxCompleteBatch)
	batch := q.queue[:n:n]
	q.queue = slices.Clone(q.queue[n:])
	q.mu.Unlock()

	errs := s.completeBatch(context.WithoutCancel(ctx), batch)
	for i, req := range batch {
		req.res <- completeRes{err: errs[i]}
	}

	q.mu.Lock()
	if len(q.queue) == 0 {
		q.leading = false
		q.mu.Unlock()
		return
	}
	next := q.queue[0]
	q.mu.Unlock()
	next.res <- completeRes{lead: true}
}

// completeBatch completes every claim of batch in one transaction; a claim
// that is not its delivery's current one gets ErrLostClaim. When the
// transaction fails, every claim of it gets the error (nothing was
// completed: a completion is redone, never lost).
func (s *Store) completeBatch(ctx context.Context, batch []*completeReq) []error {
	errs := make([]error, len(batch))
	err := s.relaxed(ctx, func(w *sql.Conn) error {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt, err := tx.PrepareContext(ctx, `UPDATE deliveries SET state = ?, done_at = ?, claimed_until = NULL, claim_token = ''
			WHERE seq = ? AND state = ? AND claim_token = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
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
