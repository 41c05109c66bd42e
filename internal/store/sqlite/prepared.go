package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The statements the inbox runs for every delivery, prepared once on the
// writer. The driver compiles a statement each time it is run from SQL
// text; compiling the claim's UPDATE and the two inserts was 7 % of the
// daemon's CPU under load, all of it while holding the single writer
// connection that every webhook's commit waits for. A statement prepared
// on the DB and run through Tx.StmtContext is compiled once per
// connection: database/sql keeps it with the connection it was prepared
// on and prepares it again by itself should that connection be replaced.
const (
	insertDeliverySQL = `INSERT INTO deliveries
		(source, delivery_id, event_key, body_len, received_at, state, attempts, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq`
	insertBodySQL = `INSERT INTO delivery_bodies (seq, body) VALUES (?, ?)`
	claimSQL      = `UPDATE deliveries
		SET state = ?, claimed_by = ?, claimed_until = ?, claim_token = ?, attempts = attempts + 1
		WHERE seq IN (
			SELECT seq FROM deliveries INDEXED BY deliveries_open
			WHERE state IN ('pending', 'processing')
			  AND ((state = ? AND next_attempt_at <= ?)
			    OR (state = ? AND (claimed_until <= ?
			        OR claimed_by IN (SELECT id FROM replicas WHERE heartbeat_at <= ?))))
			ORDER BY seq LIMIT ?)
		RETURNING ` + deliveryCols
	completeSQL = `UPDATE deliveries SET state = ?, done_at = ?, claimed_until = NULL, claim_token = ''
		WHERE seq = ? AND state = ? AND claim_token = ?`
)

type prepared struct {
	insertDelivery, insertBody, claim, complete *sql.Stmt
}

// prepare prepares the inbox's statements on the writer. It must run
// before anything holds the writer's only connection (Open), since
// preparing on the DB takes that connection.
func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.stmts.insertDelivery, insertDeliverySQL},
		{&s.stmts.insertBody, insertBodySQL},
		{&s.stmts.claim, claimSQL},
		{&s.stmts.complete, completeSQL},
	} {
		st, err := s.w.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = st
	}
	return nil
}

func (p *prepared) close() error {
	var err error
	for _, st := range []*sql.Stmt{p.insertDelivery, p.insertBody, p.claim, p.complete} {
		if st != nil {
			err = errors.Join(err, st.Close())
		}
	}
	return err
}
