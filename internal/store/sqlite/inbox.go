package sqlite

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/group"
)

// maxBatch bounds one group commit.
const maxBatch = 256

// enqueueReq is one Enqueue waiting for a group commit.
type enqueueReq struct {
	d   *store.Delivery
	res chan enqueueRes // buffered: answered once with lead, once with the result
}

type enqueueRes struct {
	lead     bool // the caller now commits the queue
	inserted bool
	err      error
}

// deliveryCols read a delivery with its body, which lives in
// delivery_bodies (migration 0008: state changes do not rewrite it).
const deliveryCols = `seq, source, delivery_id, event_key,
	coalesce((SELECT b.body FROM delivery_bodies b WHERE b.seq = deliveries.seq), x''), body_len, received_at, state, attempts,
	next_attempt_at, claimed_by, claimed_until, last_error, done_at, claim_token`

// listCols are deliveryCols without the body (an empty blob in its place):
// lists never read bodies of up to 5 MiB only to drop them.
const listCols = `seq, source, delivery_id, event_key, x'', body_len, received_at, state, attempts,
	next_attempt_at, claimed_by, claimed_until, last_error, done_at, claim_token`

// Enqueue stores a delivery. Concurrent calls are committed together: the
// first caller to find no commit under way leads, commits everything queued
// (one fsync for the lot), then hands the lead to the oldest caller still
// queued. The commit does not stop when ctx is cancelled: a delivery handed
// over is stored or fails as a whole batch.
func (s *Store) Enqueue(ctx context.Context, d *store.Delivery) (bool, error) {
	if err := checkDelivery(d); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	req := &enqueueReq{d: d, res: make(chan enqueueRes, 2)}
	s.mu.Lock()
	s.queue = append(s.queue, req)
	lead := !s.leading
	if lead {
		s.idle = make(chan struct{})
	}
	s.leading = true
	s.mu.Unlock()
	if !lead {
		r := <-req.res
		if !r.lead {
			return r.inserted, r.err
		}
	}
	s.commitQueue(context.WithoutCancel(ctx))
	r := <-req.res
	return r.inserted, r.err
}

// intakeFirst bounds how long the inbox's own writes wait for the intake's
// group commits (yieldToIntake): long enough for one commit, short enough
// that a steady stream of deliveries never stops the workers.
const intakeFirst = 5 * time.Millisecond

// yieldToIntake lets a group commit under way, or queued, have the writer
// before the inbox's bookkeeping does: a webhook sender waits on the
// former, nobody on the latter. database/sql hands a freed connection to a
// random waiter, so without this the intake's leader would queue behind
// the workers' claims and completions.
func (s *Store) yieldToIntake(ctx context.Context) {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	group.WaitAtMost(ctx, idle, intakeFirst)
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func checkDelivery(d *store.Delivery) error {
	switch {
	case d.Source == "":
		return errors.New("sqlite: enqueue: empty source")
	case d.DeliveryID == "":
		return errors.New("sqlite: enqueue: empty delivery id")
	case d.ReceivedAt.IsZero():
		return errors.New("sqlite: enqueue: zero received time")
	}
	return nil
}

// commitQueue commits the head of the queue, which holds the caller's own
// request, and passes the lead on.
func (s *Store) commitQueue(ctx context.Context) {
	s.mu.Lock()
	n := min(len(s.queue), maxBatch)
	batch := s.queue[:n:n]
	s.queue = slices.Clone(s.queue[n:])
	s.mu.Unlock()

	results := s.insertBatch(ctx, batch)
	for i, req := range batch {
		req.res <- results[i]
	}

	s.mu.Lock()
	if len(s.queue) == 0 {
		s.leading = false
		close(s.idle)
		s.mu.Unlock()
		return
	}
	next := s.queue[0]
	s.mu.Unlock()
	next.res <- enqueueRes{lead: true}
}

func (s *Store) insertBatch(ctx context.Context, batch []*enqueueReq) []enqueueRes {
	results := make([]enqueueRes, len(batch))
	fail := func(err error) []enqueueRes {
		for i := range results {
			results[i] = enqueueRes{err: fmt.Errorf("sqlite: enqueue: %w", err)}
		}
		return results
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.stmts.insertDelivery)
	bodies := tx.StmtContext(ctx, s.stmts.insertBody)
	seqs := make([]int64, len(batch))
	for i, req := range batch {
		d := req.d
		body := d.Body
		if body == nil {
			body = []byte{}
		}
		at := ms(d.ReceivedAt)
		err := stmt.QueryRowContext(ctx, string(d.Source), d.DeliveryID, d.EventKey, len(body), at, store.DeliveryPending, at).Scan(&seqs[i])
		if err == nil {
			_, err = bodies.ExecContext(ctx, seqs[i], body)
		}
		switch {
		case errors.Is(err, sql.ErrNoRows): // a duplicate: not inserted
		case err != nil:
			// The whole batch fails: SQLite may have rolled the
			// transaction back already (a full disk does), and a row
			// must never stay without its body.
			return fail(err)
		default:
			results[i].inserted = true
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	for i, req := range batch {
		if results[i].inserted {
			req.d.Seq = seqs[i]
			req.d.State = store.DeliveryPending
			req.d.NextAttemptAt = req.d.ReceivedAt
		}
	}
	return results
}

// Claim takes up to req.Limit due deliveries, oldest first. A processing
// delivery is due again once ClaimedUntil <= Now, or once its replica's
// heartbeat is at or before req.StaleBefore.
func (s *Store) Claim(ctx context.Context, req store.ClaimRequest) ([]store.Delivery, error) {
	if req.Limit <= 0 {
		return nil, nil
	}
	now := req.Now.UnixMilli()
	stale := int64(math.MinInt64)
	if !req.StaleBefore.IsZero() {
		stale = req.StaleBefore.UnixMilli()
	}
	var out []store.Delivery
	err := s.relaxed(ctx, func(w *sql.Conn) error {
		// In a transaction of its own, to run the statement prepared on
		// the writer (prepared.go).
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rows, err := tx.StmtContext(ctx, s.stmts.claim).QueryContext(ctx,
			store.DeliveryProcessing, req.Worker, req.Now.Add(req.Lease).UnixMilli(), rand.Text(),
			store.DeliveryPending, now, store.DeliveryProcessing, now, stale, req.Limit)
		if err != nil {
			return err
		}
		if out, err = scanDeliveries(rows); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim: %w", err)
	}
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// held turns "no row changed" into ErrLostClaim.
func held(res sql.Result, err error) error {
	if err := affected(res, err); errors.Is(err, store.ErrNotFound) {
		return store.ErrLostClaim
	} else {
		return err
	}
}

// Renew extends the claim c to until; ErrLostClaim when c is not the
// delivery's current claim.
func (s *Store) Renew(ctx context.Context, c store.Claim, until time.Time) error {
	err := held(s.w.ExecContext(ctx, `UPDATE deliveries SET claimed_until = ?
		WHERE seq = ? AND state = ? AND claim_token = ?`, ms(until), c.Seq, store.DeliveryProcessing, c.Token))
	if err != nil {
		return fmt.Errorf("sqlite: renew %d: %w", c.Seq, err)
	}
	return nil
}

// Retry puts the delivery of claim c back to pending, due at `at`;
// ErrLostClaim when c is not its current claim.
func (s *Store) Retry(ctx context.Context, c store.Claim, at time.Time, errMsg string) error {
	err := held(s.execRelaxed(ctx, `UPDATE deliveries
		SET state = ?, next_attempt_at = ?, last_error = ?, claimed_by = '', claimed_until = NULL, claim_token = ''
		WHERE seq = ? AND state = ? AND claim_token = ?`, store.DeliveryPending, ms(at), errMsg, c.Seq, store.DeliveryProcessing, c.Token))
	if err != nil {
		return fmt.Errorf("sqlite: retry %d: %w", c.Seq, err)
	}
	return nil
}

// Bury dead-letters the delivery of claim c; ErrLostClaim when c is not
// its current claim.
func (s *Store) Bury(ctx context.Context, c store.Claim, now time.Time, errMsg string) error {
	err := held(s.execRelaxed(ctx, `UPDATE deliveries
		SET state = ?, last_error = ?, done_at = ?, claimed_until = NULL, claim_token = ''
		WHERE seq = ? AND state = ? AND claim_token = ?`, store.DeliveryDead, errMsg, ms(now), c.Seq, store.DeliveryProcessing, c.Token))
	if err != nil {
		return fmt.Errorf("sqlite: bury %d: %w", c.Seq, err)
	}
	return nil
}

// Heartbeat records that replica is alive at now.
func (s *Store) Heartbeat(ctx context.Context, replica string, now time.Time) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO replicas (id, heartbeat_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, replica, now.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: heartbeat: %w", err)
	}
	return nil
}

// Leave forgets replica's heartbeat.
func (s *Store) Leave(ctx context.Context, replica string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM replicas WHERE id = ?`, replica); err != nil {
		return fmt.Errorf("sqlite: leave: %w", err)
	}
	return nil
}

// Redrive moves a dead delivery back to pending, Attempts reset, due at now.
func (s *Store) Redrive(ctx context.Context, seq int64, now time.Time) error {
	err := affected(s.w.ExecContext(ctx, `UPDATE deliveries
		SET state = ?, attempts = 0, next_attempt_at = ?, claimed_by = '', claimed_until = NULL, claim_token = '', done_at = NULL
		WHERE seq = ? AND state = ?`, store.DeliveryPending, ms(now), seq, store.DeliveryDead))
	if err != nil {
		return fmt.Errorf("sqlite: redrive %d: %w", seq, err)
	}
	return nil
}

// ListDeliveries lists deliveries in state (every state when empty), oldest
// first, without bodies; limit <= 0 lists all.
func (s *Store) ListDeliveries(ctx context.Context, state store.DeliveryState, n int) ([]store.Delivery, error) {
	var w where
	if state != "" {
		w.add("state = ?", state)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+listCols+` FROM deliveries`+w.sql()+` ORDER BY seq`+limit(n), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery returns one delivery with its body; ErrNotFound when missing.
func (s *Store) GetDelivery(ctx context.Context, seq int64) (*store.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE seq = ?`, seq)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get delivery %d: %w", seq, err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get delivery %d: %w", seq, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sqlite: get delivery %d: %w", seq, store.ErrNotFound)
	}
	return &out[0], nil
}

// InboxStats counts deliveries by state; OldestPending is the earliest
// ReceivedAt among pending ones.
func (s *Store) InboxStats(ctx context.Context) (store.InboxStats, error) {
	var st store.InboxStats
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM deliveries WHERE state = ?),
		(SELECT count(*) FROM deliveries WHERE state = ?),
		(SELECT count(*) FROM deliveries WHERE state = ?),
		(SELECT min(received_at) FROM deliveries WHERE state = ?)`,
		store.DeliveryPending, store.DeliveryProcessing, store.DeliveryDead, store.DeliveryPending,
	).Scan(&st.Pending, &st.Processing, &st.Dead, &oldest)
	if err != nil {
		return st, fmt.Errorf("sqlite: inbox stats: %w", err)
	}
	st.OldestPending = fromMS(oldest)
	return st, nil
}

func scanDeliveries(rows *sql.Rows) ([]store.Delivery, error) {
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var source, state string
		var received, next, until, done sql.NullInt64
		if err := rows.Scan(&d.Seq, &source, &d.DeliveryID, &d.EventKey, &d.Body, &d.BodyBytes, &received, &state, &d.Attempts,
			&next, &d.ClaimedBy, &until, &d.LastError, &done, &d.ClaimToken); err != nil {
			return nil, err
		}
		d.Source = model.Source(source)
		d.State = store.DeliveryState(state)
		if len(d.Body) == 0 {
			d.Body = nil
		}
		d.ReceivedAt, d.NextAttemptAt, d.ClaimedUntil, d.DoneAt = fromMS(received), fromMS(next), fromMS(until), fromMS(done)
		out = append(out, d)
	}
	return out, rows.Err()
}
