package postgres

// evidence.go: the tamper-evident log (store.Evidence). Every append takes a
// transaction-scoped advisory lock first, so replicas append one at a time
// and the chain never forks; the records of decisions, findings and gates
// are appended in the transaction of their write (see withEvidence), so the
// lock is held only from the append to the commit.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reloadly/rolekeeper/internal/evidence"
)

// evidenceLock is the advisory lock key of appends: one per schema.
const evidenceLock = `hashtextextended('rolekeeper.evidence.' || coalesce(current_schema(), ''), 0)`

// querier is what reads need of a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// withEvidence runs write in a transaction and appends the record it
// returns (none when it returns an empty kind) before committing.
func (s *Store) withEvidence(ctx context.Context, write func(tx pgx.Tx) (kind string, at time.Time, content any, err error)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	kind, at, content, err := write(tx)
	if err != nil {
		return err
	}
	if kind != "" {
		if _, err := appendEvidence(ctx, tx, kind, at, content); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// appendEvidence links a record after the stored head and moves the head,
// under the append lock. A head that fell behind the records (the head row
// edited) does not stop the append: it continues after the last record, and
// verify reports the break.
func appendEvidence(ctx context.Context, tx pgx.Tx, kind string, at time.Time, content any) (evidence.Record, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+evidenceLock+`)`); err != nil {
		return evidence.Record{}, fmt.Errorf("evidence lock: %w", err)
	}
	head, err := readHead(ctx, tx)
	if err != nil {
		return evidence.Record{}, fmt.Errorf("evidence head: %w", err)
	}
	if at, err = notBeforeLast(ctx, tx, at); err != nil {
		return evidence.Record{}, fmt.Errorf("evidence time: %w", err)
	}
	r, err := evidence.Link(head, kind, at, content)
	if err != nil {
		return r, err
	}
	ok, err := insertRecord(ctx, tx, r, at)
	if err != nil {
		return r, err
	}
	if !ok {
		if head, err = lastRecord(ctx, tx); err != nil {
			return r, fmt.Errorf("evidence head: %w", err)
		}
		if r, err = evidence.Link(head, kind, at, content); err != nil {
			return r, err
		}
		if ok, err = insertRecord(ctx, tx, r, at); err != nil || !ok {
			return r, fmt.Errorf("evidence append %d: %w", r.Seq, errors.Join(err, errors.New("sequence number taken")))
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO evidence_head (id, seq, hash, kind) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, kind = excluded.kind`, r.Seq, r.Hash, r.Kind); err != nil {
		return r, fmt.Errorf("evidence head: %w", err)
	}
	return r, nil
}

func insertRecord(ctx context.Context, tx pgx.Tx, r evidence.Record, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO evidence (seq, kind, at, at_ns, content, prev, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (seq) DO NOTHING`, r.Seq, r.Kind, r.Time, at.UnixNano(), string(r.Content), r.Prev, r.Hash)
	if err != nil {
		return false, fmt.Errorf("evidence append: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func readHead(ctx context.Context, q querier) (evidence.Head, error) {
	var h evidence.Head
	err := q.QueryRow(ctx, `SELECT seq, hash, kind FROM evidence_head WHERE id = 1`).Scan(&h.Seq, &h.Hash, &h.Kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return lastRecord(ctx, q) // the head row was deleted: the last record stands in
	}
	return h, err
}

func lastRecord(ctx context.Context, q querier) (evidence.Head, error) {
	var h evidence.Head
	err := q.QueryRow(ctx, `SELECT seq, hash, kind FROM evidence ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash, &h.Kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return evidence.Genesis(), nil
	}
	return h, err
}

// AppendEvidence appends a record of another fact.
func (s *Store) AppendEvidence(ctx context.Context, kind string, at time.Time, content any) (evidence.Record, error) {
	var r evidence.Record
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return r, fmt.Errorf("postgres: append evidence: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if r, err = appendEvidence(ctx, tx, kind, at, content); err != nil {
		return r, fmt.Errorf("postgres: append evidence: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return r, fmt.Errorf("postgres: append evidence: %w", err)
	}
	return r, nil
}

// EvidenceHead returns the stored head.
func (s *Store) EvidenceHead(ctx context.Context) (evidence.Head, error) {
	h, err := readHead(ctx, s.pool)
	if err != nil {
		return h, fmt.Errorf("postgres: evidence head: %w", err)
	}
	return h, nil
}

// ScanEvidence calls fn with the records from..to in sequence order.
func (s *Store) ScanEvidence(ctx context.Context, from, to int64, fn func(evidence.Record) bool) error {
	if to <= 0 {
		to = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, kind, at, content, prev, hash FROM evidence WHERE seq >= $1 AND seq <= $2 ORDER BY seq`, from, to)
	if err != nil {
		return fmt.Errorf("postgres: scan evidence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r evidence.Record
		var content string
		if err := rows.Scan(&r.Seq, &r.Kind, &r.Time, &content, &r.Prev, &r.Hash); err != nil {
			return fmt.Errorf("postgres: scan evidence: %w", err)
		}
		r.Content = []byte(content)
		if !fn(r) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: scan evidence: %w", err)
	}
	return nil
}

// EvidenceSpan returns the heads bounding the records of [since, until).
func (s *Store) EvidenceSpan(ctx context.Context, since, until time.Time) (before, last evidence.Head, err error) {
	before, err = s.headBefore(ctx, since)
	if err == nil {
		last, err = s.headBefore(ctx, until)
	}
	if err != nil {
		return before, last, fmt.Errorf("postgres: evidence span: %w", err)
	}
	if last.Seq < before.Seq {
		last = before
	}
	return before, last, nil
}

// headBefore is the last record timed before t; with none, the retention
// cut before the first record, else genesis.
func (s *Store) headBefore(ctx context.Context, t time.Time) (evidence.Head, error) {
	var h evidence.Head
	err := s.pool.QueryRow(ctx, `SELECT seq, hash, kind FROM evidence WHERE at_ns < $1 ORDER BY seq DESC LIMIT 1`, t.UnixNano()).Scan(&h.Seq, &h.Hash, &h.Kind)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return h, err
	}
	err = s.pool.QueryRow(ctx, `SELECT c.seq, c.hash, c.kind FROM evidence_checkpoints c
		WHERE c.reason = $1 AND c.seq + 1 = (SELECT min(seq) FROM evidence) ORDER BY c.id LIMIT 1`, evidence.ReasonPrune).Scan(&h.Seq, &h.Hash, &h.Kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return evidence.Genesis(), nil
	}
	return h, err
}

// AddCheckpoint stores c.
func (s *Store) AddCheckpoint(ctx context.Context, c evidence.Checkpoint) error {
	if err := addCheckpoint(ctx, s.pool, c); err != nil {
		return fmt.Errorf("postgres: add checkpoint: %w", err)
	}
	return nil
}

func addCheckpoint(ctx context.Context, q querier, c evidence.Checkpoint) error {
	_, err := q.Exec(ctx, `INSERT INTO evidence_checkpoints (seq, hash, kind, at, reason, note, public_key, signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.Seq, c.Hash, c.Kind, c.Time, c.Reason, c.Note, c.PublicKey, c.Signature)
	return err
}

// ListCheckpoints lists checkpoints by Seq, then when they were stored.
func (s *Store) ListCheckpoints(ctx context.Context) ([]evidence.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, hash, kind, at, reason, note, public_key, signature
		FROM evidence_checkpoints ORDER BY seq, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list checkpoints: %w", err)
	}
	defer rows.Close()
	var out []evidence.Checkpoint
	for rows.Next() {
		var c evidence.Checkpoint
		if err := rows.Scan(&c.Seq, &c.Hash, &c.Kind, &c.Time, &c.Reason, &c.Note, &c.PublicKey, &c.Signature); err != nil {
			return nil, fmt.Errorf("postgres: list checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list checkpoints: %w", err)
	}
	return out, nil
}

// PruneEvidence stores cut and deletes the records up to cut.Seq, under the
// append lock.
func (s *Store) PruneEvidence(ctx context.Context, cut evidence.Checkpoint) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune evidence: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+evidenceLock+`)`); err != nil {
		return 0, fmt.Errorf("postgres: prune evidence: %w", err)
	}
	var hash string
	if err := tx.QueryRow(ctx, `SELECT hash FROM evidence WHERE seq = $1`, cut.Seq).Scan(&hash); err != nil {
		return 0, fmt.Errorf("postgres: prune evidence at %d: %w", cut.Seq, err)
	}
	if hash != cut.Hash {
		return 0, fmt.Errorf("postgres: prune evidence at %d: the cut's hash is not the record's", cut.Seq)
	}
	if err := addCheckpoint(ctx, tx, cut); err != nil {
		return 0, fmt.Errorf("postgres: prune evidence: %w", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM evidence WHERE seq <= $1`, cut.Seq)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune evidence: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: prune evidence: %w", err)
	}
	return tag.RowsAffected(), nil
}

// notBeforeLast keeps record times in chain order: a record is never timed
// before the one it follows (replicas' clocks differ, and some writes carry
// no time of their own), so a week's records are one contiguous run of
// sequence numbers and a report's span names exactly them. The caller holds
// the evidence lock.
func notBeforeLast(ctx context.Context, tx pgx.Tx, at time.Time) (time.Time, error) {
	var last *int64
	err := tx.QueryRow(ctx, `SELECT at_ns FROM evidence ORDER BY seq DESC LIMIT 1`).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && last == nil) {
		return at, nil
	}
	if err != nil {
		return at, err
	}
	if at.UnixNano() < *last {
		return time.Unix(0, *last).UTC(), nil
	}
	return at, nil
}
