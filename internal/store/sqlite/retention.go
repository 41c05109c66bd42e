package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reloadly/rolekeeper/internal/store"
)

var _ store.Retention = (*Store)(nil)

// tables are the tables Size counts: rolekeeper's own, not schema_migrations.
var tables = []string{"deliveries", "decisions", "pull_requests", "findings", "gates", "kv", "leases", "replicas"}

// PruneDeliveries deletes up to n ended deliveries in state that ended
// before `before`.
func (s *Store) PruneDeliveries(ctx context.Context, state store.DeliveryState, before time.Time, n int) (int, error) {
	if state != store.DeliveryDone && state != store.DeliveryDead {
		return 0, fmt.Errorf("sqlite: prune deliveries: state %q is not done or dead", state)
	}
	if n <= 0 {
		return 0, nil
	}
	// The state is written into the statement (it is one of two constants)
	// so that the planner can prove its partial index covers it, and reads
	// no row it will not delete (a row's end time lies past its body).
	res, err := s.w.ExecContext(ctx, `DELETE FROM deliveries WHERE seq IN (
		SELECT seq FROM deliveries INDEXED BY deliveries_`+string(state)+`_at
		WHERE state = '`+string(state)+`' AND done_at < ? ORDER BY done_at LIMIT ?)`,
		before.UnixMilli(), n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune %s deliveries: %w", state, err)
	}
	k, err := res.RowsAffected()
	return int(k), err
}

// PruneDecisions deletes up to n decisions created before `before`.
func (s *Store) PruneDecisions(ctx context.Context, before time.Time, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM decisions WHERE id IN (
		SELECT id FROM decisions WHERE created_at < ? ORDER BY created_at, id LIMIT ?)`, before.UnixMilli(), n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune decisions: %w", err)
	}
	k, err := res.RowsAffected()
	return int(k), err
}

// Size counts the rows of each table and measures the file in use (pages
// times page size; freed pages are reused, so it stops growing once old
// rows are deleted as fast as new ones come).
func (s *Store) Size(ctx context.Context) (store.StoreSize, error) {
	var out store.StoreSize
	for _, t := range tables {
		var n int64
		err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n)
		if err != nil {
			return out, fmt.Errorf("sqlite: count %s: %w", t, err)
		}
		out.Tables = append(out.Tables, store.TableRows{Table: t, Rows: n})
	}
	var pages, size int64
	err := errors.Join(
		s.r.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages),
		s.r.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size))
	if err != nil {
		return out, fmt.Errorf("sqlite: size: %w", err)
	}
	out.Bytes = pages * size
	return out, nil
}
