package postgres

import (
	"context"
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
		return 0, fmt.Errorf("postgres: prune deliveries: state %q is not done or dead", state)
	}
	if n <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM deliveries WHERE seq IN (
		SELECT seq FROM deliveries WHERE state = $1 AND done_at < $2 ORDER BY done_at LIMIT $3
		FOR UPDATE SKIP LOCKED)`, string(state), ts(before), n)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune %s deliveries: %w", state, err)
	}
	return int(tag.RowsAffected()), nil
}

// PruneDecisions deletes up to n decisions created before `before`.
func (s *Store) PruneDecisions(ctx context.Context, before time.Time, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM decisions WHERE id IN (
		SELECT id FROM decisions WHERE created_at < $1 ORDER BY created_at, id LIMIT $2
		FOR UPDATE SKIP LOCKED)`, ts(before), n)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune decisions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Size counts the rows of each table and adds up the on-disk size of the
// schema's relations (tables, their indexes and TOAST).
func (s *Store) Size(ctx context.Context) (store.StoreSize, error) {
	var out store.StoreSize
	for _, t := range tables {
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return out, fmt.Errorf("postgres: count %s: %w", t, err)
		}
		out.Tables = append(out.Tables, store.TableRows{Table: t, Rows: n})
	}
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&out.Bytes)
	if err != nil {
		return out, fmt.Errorf("postgres: size: %w", err)
	}
	return out, nil
}
