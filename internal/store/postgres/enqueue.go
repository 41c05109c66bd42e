package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reloadly/rolekeeper/internal/store"
)

// maxEnqueueBatch bounds one group insert (6 parameters a row, far below
// PostgreSQL's 65,535).
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
	leaders int // group inserts under way or handed over, at most maxInserts
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
		q.leaders++
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
	q.leaders--
	q.mu.Unlock()
}

// insertBatch stores a batch in one statement. Rows already stored (and
// the repeats of a delivery within the batch) are duplicates. When the
// statement fails, each row is tried on its own, so one bad row fails
// alone.
func (s *Store) insertBatch(ctx context.Context, batch []*enqueueReq) []enqueueRes {
	results := make([]enqueueRes, len(batch))
	args := make([]any, 0, 6*len(batch))
	for _, req := range batch {
		args = append(args, deliveryArgs(req.d)...)
	}
	rows, err := s.pool.Query(ctx, groupInsertSQL(len(batch)), args...)
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

// groupInserts holds the group insert's text by its number of rows, built
// once: pgx's statement cache finds the prepared statement by its text.
var groupInserts [maxEnqueueBatch + 1]atomic.Pointer[string]

func groupInsertSQL(n int) string {
	if p := groupInserts[n].Load(); p != nil {
		return *p
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO deliveries
		(source, delivery_id, event_key, body, received_at, state, attempts, next_attempt_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 6 * i
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, 0, $%d)", p+1, p+2, p+3, p+4, p+5, p+6, p+5)
	}
	b.WriteString(` ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq, source, delivery_id`)
	sql := b.String()
	groupInserts[n].Store(&sql)
	return sql
}

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
