package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
)

const deliveryCols = `seq, source, delivery_id, event_key, body, octet_length(body), received_at, state, attempts,
	next_attempt_at, claimed_by, claimed_until, last_error, done_at, claim_token`

// listCols are deliveryCols without the body (an empty bytea in its place):
// lists never read bodies of up to 5 MiB only to drop them (the length of
// a large, out-of-line value comes from its TOAST pointer).
const listCols = `seq, source, delivery_id, event_key, ''::bytea, octet_length(body), received_at, state, attempts,
	next_attempt_at, claimed_by, claimed_until, last_error, done_at, claim_token`

// Enqueue stores a delivery unless one with the same source and id exists.
// Concurrent calls are inserted together, one statement and one commit
// for the lot (see enqueue.go).
func (s *Store) Enqueue(ctx context.Context, d *store.Delivery) (bool, error) {
	switch {
	case d.Source == "":
		return false, errors.New("postgres: enqueue: empty source")
	case d.DeliveryID == "":
		return false, errors.New("postgres: enqueue: empty delivery id")
	case d.ReceivedAt.IsZero():
		return false, errors.New("postgres: enqueue: zero received time")
	}
	return s.enqueue(ctx, d)
}

// claimSQL takes the oldest due deliveries, walking deliveries_open in
// seq order (see relaxedPool for why the plan cannot be anything else).
const claimSQL = `UPDATE deliveries
	SET state = $1, claimed_by = $2, claimed_until = $3, claim_token = $7, attempts = attempts + 1
	WHERE seq IN (
		SELECT seq FROM deliveries
		WHERE state IN ('pending', 'processing')
		  AND ((state = $4 AND next_attempt_at <= $5)
		    OR (state = $1 AND (claimed_until <= $5
		        OR claimed_by IN (SELECT id FROM replicas WHERE heartbeat_at <= $8))))
		ORDER BY seq LIMIT $6
		FOR UPDATE SKIP LOCKED)
	RETURNING ` + deliveryCols

// Claim takes up to req.Limit due deliveries, oldest first, in one
// statement: rows another replica is claiming are skipped, never shared. A
// processing delivery is due again once ClaimedUntil <= Now, or once its
// replica's heartbeat is at or before req.StaleBefore (it died). A claim
// first lets the intake's group inserts under way finish (yieldToIntake).
func (s *Store) Claim(ctx context.Context, req store.ClaimRequest) ([]store.Delivery, error) {
	if req.Limit <= 0 {
		return nil, nil
	}
	s.yieldToIntake(ctx, intakeFirst)
	rows, err := s.inbox.Query(ctx, claimSQL,
		string(store.DeliveryProcessing), req.Worker, ts(req.Now.Add(req.Lease)),
		string(store.DeliveryPending), ts(req.Now), req.Limit, rand.Text(), ts(req.StaleBefore))
	if err != nil {
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// held turns "no row changed" into ErrLostClaim.
func held(tag pgconn.CommandTag, err error) error {
	if err := affected(tag, err); errors.Is(err, store.ErrNotFound) {
		return store.ErrLostClaim
	} else {
		return err
	}
}

// Renew extends the claim c to until; ErrLostClaim when c is not the
// delivery's current claim.
func (s *Store) Renew(ctx context.Context, c store.Claim, until time.Time) error {
	err := held(s.inbox.Exec(ctx, `UPDATE deliveries SET claimed_until = $1
		WHERE seq = $2 AND state = $3 AND claim_token = $4`, ts(until), c.Seq, string(store.DeliveryProcessing), c.Token))
	if err != nil {
		return fmt.Errorf("postgres: renew %d: %w", c.Seq, err)
	}
	return nil
}

// Retry puts the delivery of claim c back to pending, due at `at`;
// ErrLostClaim when c is not its current claim.
func (s *Store) Retry(ctx context.Context, c store.Claim, at time.Time, errMsg string) error {
	err := held(s.inbox.Exec(ctx, `UPDATE deliveries
		SET state = $1, next_attempt_at = $2, last_error = $3, claimed_by = '', claimed_until = NULL, claim_token = ''
		WHERE seq = $4 AND state = $5 AND claim_token = $6`, string(store.DeliveryPending), ts(at), errMsg, c.Seq, string(store.DeliveryProcessing), c.Token))
	if err != nil {
		return fmt.Errorf("postgres: retry %d: %w", c.Seq, err)
	}
	return nil
}

// Bury dead-letters the delivery of claim c; ErrLostClaim when c is not
// its current claim.
func (s *Store) Bury(ctx context.Context, c store.Claim, now time.Time, errMsg string) error {
	err := held(s.inbox.Exec(ctx, `UPDATE deliveries SET state = $1, last_error = $2, done_at = $3, claimed_until = NULL, claim_token = ''
		WHERE seq = $4 AND state = $5 AND claim_token = $6`, string(store.DeliveryDead), errMsg, ts(now), c.Seq, string(store.DeliveryProcessing), c.Token))
	if err != nil {
		return fmt.Errorf("postgres: bury %d: %w", c.Seq, err)
	}
	return nil
}

// Heartbeat records that replica is alive at now.
func (s *Store) Heartbeat(ctx context.Context, replica string, now time.Time) error {
	if _, err := s.inbox.Exec(ctx, `INSERT INTO replicas (id, heartbeat_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, replica, ts(now)); err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	return nil
}

// Leave forgets replica's heartbeat.
func (s *Store) Leave(ctx context.Context, replica string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM replicas WHERE id = $1`, replica); err != nil {
		return fmt.Errorf("postgres: leave: %w", err)
	}
	return nil
}

// Redrive moves a dead delivery back to pending, Attempts reset, due at now.
func (s *Store) Redrive(ctx context.Context, seq int64, now time.Time) error {
	err := affected(s.pool.Exec(ctx, `UPDATE deliveries
		SET state = $1, attempts = 0, next_attempt_at = $2, claimed_by = '', claimed_until = NULL, claim_token = '', done_at = NULL
		WHERE seq = $3 AND state = $4`, string(store.DeliveryPending), ts(now), seq, string(store.DeliveryDead)))
	if err != nil {
		return fmt.Errorf("postgres: redrive %d: %w", seq, err)
	}
	return nil
}

// ListDeliveries lists deliveries in state (every state when empty), oldest
// first, without bodies; limit <= 0 lists all.
func (s *Store) ListDeliveries(ctx context.Context, state store.DeliveryState, n int) ([]store.Delivery, error) {
	var w where
	if state != "" {
		w.add("state =", string(state))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+listCols+` FROM deliveries`+w.sql()+` ORDER BY seq`+limit(n), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list deliveries: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list deliveries: %w", err)
	}
	return out, nil
}

// GetDelivery returns one delivery; ErrNotFound when missing.
func (s *Store) GetDelivery(ctx context.Context, seq int64) (*store.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE seq = $1`, seq)
	if err != nil {
		return nil, fmt.Errorf("postgres: get delivery %d: %w", seq, err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: get delivery %d: %w", seq, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("postgres: get delivery %d: %w", seq, store.ErrNotFound)
	}
	return &out[0], nil
}

// InboxStats counts deliveries by state; OldestPending is the earliest
// ReceivedAt among pending ones.
func (s *Store) InboxStats(ctx context.Context) (store.InboxStats, error) {
	var st store.InboxStats
	var oldest pgtype.Timestamptz
	err := s.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE state = $1),
		count(*) FILTER (WHERE state = $2),
		count(*) FILTER (WHERE state = $3),
		min(received_at) FILTER (WHERE state = $1)
		FROM deliveries WHERE state IN ($1, $2, $3)`,
		string(store.DeliveryPending), string(store.DeliveryProcessing), string(store.DeliveryDead),
	).Scan(&st.Pending, &st.Processing, &st.Dead, &oldest)
	if err != nil {
		return st, fmt.Errorf("postgres: inbox stats: %w", err)
	}
	st.OldestPending = fromTS(oldest)
	return st, nil
}

func scanDeliveries(rows pgx.Rows) ([]store.Delivery, error) {
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var source, state string
		var received, next, until, done pgtype.Timestamptz
		if err := rows.Scan(&d.Seq, &source, &d.DeliveryID, &d.EventKey, &d.Body, &d.BodyBytes, &received, &state, &d.Attempts,
			&next, &d.ClaimedBy, &until, &d.LastError, &done, &d.ClaimToken); err != nil {
			return nil, err
		}
		d.Source = model.Source(source)
		d.State = store.DeliveryState(state)
		if len(d.Body) == 0 {
			d.Body = nil
		}
		d.ReceivedAt, d.NextAttemptAt, d.ClaimedUntil, d.DoneAt = fromTS(received), fromTS(next), fromTS(until), fromTS(done)
		out = append(out, d)
	}
	return out, rows.Err()
}
