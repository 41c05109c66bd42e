package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reloadly/rolekeeper/internal/store"
)

// completeReq is one Complete call. Concurrent calls are grouped (package
// group) into one UPDATE (one round trip, one commit) as enqueuer groups
// inserts: every worker completes each delivery it processed, and under
// load those round trips were most of the statements the server ran.
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
		return fmt.Errorf("postgres: complete %d: %w", c.Seq, err)
	}
	return s.completions.Do(ctx, completeReq{c: c, at: now}, maxCompleteBatch, func(ctx context.Context, batch []completeReq) []error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
		defer cancel()
		return s.completeBatch(ctx, batch)
	})
}

// completeBatchSQL settles many claims: $1 done, $2 seqs, $3 tokens, $4
// end times, $5 processing.
const completeBatchSQL = `UPDATE deliveries d
	SET state = $1, done_at = v.done_at, claimed_until = NULL, claim_token = ''
	FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]) AS v (seq, token, done_at)
	WHERE d.seq = v.seq AND d.state = $5 AND d.claim_token = v.token
	RETURNING d.seq, v.token`

// completeBatch completes every claim of batch in one statement; a claim
// not matched (its delivery claimed by someone else since) gets
// ErrLostClaim. When the statement fails, each is tried on its own.
func (s *Store) completeBatch(ctx context.Context, batch []completeReq) []error {
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = s.completeOne(ctx, batch[0])
		return errs
	}
	seqs := make([]int64, len(batch))
	tokens := make([]string, len(batch))
	ats := make([]pgtype.Timestamptz, len(batch))
	for i, r := range batch {
		seqs[i], tokens[i], ats[i] = r.c.Seq, r.c.Token, tsArray(r.at)
	}
	rows, err := s.inbox.Query(ctx, completeBatchSQL,
		string(store.DeliveryDone), seqs, tokens, ats, string(store.DeliveryProcessing))
	type claim struct {
		seq   int64
		token string
	}
	done := map[claim]bool{}
	if err == nil {
		for rows.Next() {
			var c claim
			if err = rows.Scan(&c.seq, &c.token); err != nil {
				break
			}
			done[c] = true
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			for i, r := range batch {
				errs[i] = fmt.Errorf("postgres: complete %d: %w", r.c.Seq, err)
			}
			return errs
		}
		for i, r := range batch {
			errs[i] = s.completeOne(ctx, r)
		}
		return errs
	}
	for i, r := range batch {
		if !done[claim{r.c.Seq, r.c.Token}] {
			errs[i] = fmt.Errorf("postgres: complete %d: %w", r.c.Seq, store.ErrLostClaim)
		}
	}
	return errs
}

func (s *Store) completeOne(ctx context.Context, r completeReq) error {
	err := held(s.inbox.Exec(ctx, `UPDATE deliveries SET state = $1, done_at = $2, claimed_until = NULL, claim_token = ''
		WHERE seq = $3 AND state = $4 AND claim_token = $5`, string(store.DeliveryDone), ts(r.at), r.c.Seq, string(store.DeliveryProcessing), r.c.Token))
	if err != nil {
		return fmt.Errorf("postgres: complete %d: %w", r.c.Seq, err)
	}
	return nil
}
