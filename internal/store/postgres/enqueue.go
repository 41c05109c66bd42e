package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/group"
)

// maxEnqueueBatch bounds one group insert.
const maxEnqueueBatch = 256

// enqueueTimeout bounds one group insert: the callers have handed their
// deliveries over and wait for it, whatever their own contexts say.
const enqueueTimeout = 10 * time.Second

// maxInserts bounds the group inserts under way at once. With one, a
// delivery arriving during a commit waits for it, then for its own; with
// two, the next group is sent while the server flushes the last one.
const maxInserts = 2

// enqueuer groups concurrent Enqueue calls: one INSERT of many rows, one
// round trip, one commit (one WAL flush) for all of them. Its zero value
// is ready.
type enqueuer struct {
	mu      sync.Mutex
	queue   []*enqueueReq
	leaders int           // group inserts under way or handed over, at most maxInserts
	idle    chan struct{} // closed while leaders == 0 (nil: not asked for yet)
}

// intakeFirst bounds how long a claim waits for the intake's group inserts
// (yieldToIntake), as in the SQLite store: long enough for one insert,
// short enough that a steady stream of deliveries never stops the workers.
const intakeFirst = 5 * time.Millisecond

// yieldToIntake lets the group inserts under way finish before a claim
// runs, for at most wait. The server's CPU is what the two share: a
// webhook sender waits on the intake, nobody on a claim, and under wrk the
// workers' claims and completions took the server's time while the intake's
// inserts waited for it (docs/benchmarks.md). The workers still claim at
// least once per wait under a stream that never stops.
func (s *Store) yieldToIntake(ctx context.Context, wait time.Duration) {
	group.WaitAtMost(ctx, s.intake.idleChan(), wait)
}

// idleChan is closed while no group insert is under way.
func (q *enqueuer) idleChan() chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.idle == nil {
		q.idle = make(chan struct{})
		if q.leaders == 0 {
			close(q.idle)
		}
	}
	return q.idle
}

// addLeader and dropLeader count a group insert in and out, under q.mu.
func (q *enqueuer) addLeader() {
	if q.leaders == 0 && q.idle != nil {
		q.idle = make(chan struct{}) // the closed one stays closed for those holding it
	}
	q.leaders++
}

func (q *enqueuer) dropLeader() {
	q.leaders--
	if q.leaders == 0 && q.idle != nil {
		close(q.idle)
	}
}

// enqueueReq is one Enqueue waiting for a group insert.
type enqueueReq struct {
	d   *store.Delivery
	led bool            // handed the lead already (under enqueuer.mu)
	res chan enqueueRes // buffered: answered at most once with lead, once with the result
}

type enqueueRes struct {
	lead     bool // the caller now inserts the queue
	inserted bool
	err      error
}

// enqueue is Enqueue's group commit: a caller that finds fewer than
// maxInserts group inserts under way leads one: it inserts the head of the
// queue, then hands the lead to the oldest caller still queued. A
// delivery is acknowledged only after the statement that stored it
// committed.
func (s *Store) enqueue(ctx context.Context, d *store.Delivery) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	q := &s.intake
	req := &enqueueReq{d: d, res: make(chan enqueueRes, 2)}
	q.mu.Lock()
	q.queue = append(q.queue, req)
	lead := q.leaders < maxInserts
	if lead {
		q.addLeader()
	}
	q.mu.Unlock()
	if lead {
		s.insertQueue(ctx)
	}
	for {
		// The caller's own delivery may be in another leader's group:
		// a caller handed the lead inserts the head, then still waits.
		r := <-req.res
		if !r.lead {
			return r.inserted, r.err
		}
		s.insertQueue(ctx)
	}
}

// insertQueue inserts the head of the queue and passes the lead on.
func (s *Store) insertQueue(ctx context.Context) {
	q := &s.intake
	q.mu.Lock()
	n := min(len(q.queue), maxEnqueueBatch)
	batch := q.queue[:n:n]
	q.queue = slices.Clone(q.queue[n:])
	q.mu.Unlock()

	if n > 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
		results := s.insertBatch(ctx, batch)
		cancel()
		for i, req := range batch {
			req.res <- results[i]
		}
	}

	q.mu.Lock()
	for _, next := range q.queue {
		if !next.led {
			next.led = true
			q.mu.Unlock()
			next.res <- enqueueRes{lead: true}
			return
		}
	}
	q.dropLeader()
	q.mu.Unlock()
}

// insertBatch stores a batch in one statement. Rows already stored (and
// the repeats of a delivery within the batch) are duplicates. When the
// statement fails, each row is tried on its own, so one bad row fails
// alone.
func (s *Store) insertBatch(ctx context.Context, batch []*enqueueReq) []enqueueRes {
	results := make([]enqueueRes, len(batch))
	srcs := make([]string, len(batch))
	ids := make([]string, len(batch))
	keys := make([]string, len(batch))
	bodies := make([][]byte, len(batch))
	ats := make([]pgtype.Timestamptz, len(batch))
	for i, req := range batch {
		d := req.d
		srcs[i], ids[i], keys[i], bodies[i] = string(d.Source), d.DeliveryID, d.EventKey, d.Body
		if bodies[i] == nil {
			bodies[i] = []byte{} // NOT NULL: an empty body is stored empty
		}
		ats[i] = tsArray(d.ReceivedAt)
	}
	rows, err := s.pool.Query(ctx, groupInsertSQL, srcs, ids, keys, bodies, ats, string(store.DeliveryPending))
	seqs := map[string]int64{}
	if err == nil {
		for rows.Next() {
			var seq int64
			var src, id string
			if err = rows.Scan(&seq, &src, &id); err != nil {
				break
			}
			seqs[src+"\x00"+id] = seq
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		if len(batch) == 1 || ctx.Err() != nil {
			for i := range results {
				results[i].err = fmt.Errorf("postgres: enqueue: %w", err)
			}
			return results
		}
		for i, req := range batch {
			results[i] = s.insertOne(ctx, req.d)
		}
		return results
	}
	for i, req := range batch {
		key := string(req.d.Source) + "\x00" + req.d.DeliveryID
		seq, ok := seqs[key]
		if !ok {
			continue // stored before: a duplicate
		}
		delete(seqs, key) // a repeat later in the batch is a duplicate
		req.d.Seq, req.d.State, req.d.NextAttemptAt = seq, store.DeliveryPending, req.d.ReceivedAt
		results[i].inserted = true
	}
	return results
}

// groupInsertSQL inserts a batch as arrays, one per column: one statement
// text whatever the batch's size, so each connection prepares and plans it
// once. A text per row count (VALUES with six parameters a row) was a new
// statement to parse and plan for most sizes on most connections; the
// arrays took the daemon 7-16 % more deliveries a second
// (docs/benchmarks.md). unnest yields the rows in array order.
const groupInsertSQL = `INSERT INTO deliveries
	(source, delivery_id, event_key, body, received_at, state, attempts, next_attempt_at)
	SELECT v.source, v.delivery_id, v.event_key, v.body, v.received_at, $6, 0, v.received_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[])
		AS v (source, delivery_id, event_key, body, received_at)
	ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq, source, delivery_id`

func (s *Store) insertOne(ctx context.Context, d *store.Delivery) enqueueRes {
	var seq int64
	err := s.pool.QueryRow(ctx, `INSERT INTO deliveries
		(source, delivery_id, event_key, body, received_at, state, attempts, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0, $5)
		ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq`, deliveryArgs(d)...).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return enqueueRes{}
	}
	if err != nil {
		return enqueueRes{err: fmt.Errorf("postgres: enqueue: %w", err)}
	}
	d.Seq, d.State, d.NextAttemptAt = seq, store.DeliveryPending, d.ReceivedAt
	return enqueueRes{inserted: true}
}

func deliveryArgs(d *store.Delivery) []any {
	body := d.Body
	if body == nil {
		body = []byte{}
	}
	return []any{string(d.Source), d.DeliveryID, d.EventKey, body, ts(d.ReceivedAt), string(store.DeliveryPending)}
}
