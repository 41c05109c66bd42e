package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/codec"
)

const gateCols = `id, dedupe_key, repository, commit_sha, environment, team, rule_id, state, approvers, excluded, prs,
	pipeline_uuid, build_number, created_at, expires_at, decided_by, decided_at, reason, break_glass, notified,
	follow_up, data, version`

// gateArgs returns the values of gateCols but version, in order ($1…$22).
func gateArgs(g *store.Gate) ([]any, error) {
	approvers, err := codec.JSON(g.Approvers, g.Approvers == nil)
	if err != nil {
		return nil, err
	}
	excluded, err := codec.JSON(g.Excluded, g.Excluded == nil)
	if err != nil {
		return nil, err
	}
	prs, err := codec.JSON(g.PRs, g.PRs == nil)
	if err != nil {
		return nil, err
	}
	return []any{g.ID, g.DedupeKey, g.Repository, g.Commit, g.Environment, g.Team, g.RuleID, g.State,
		approvers, excluded, prs, g.PipelineUUID, g.BuildNumber, ts(g.CreatedAt), ts(g.ExpiresAt), g.DecidedBy,
		ts(g.DecidedAt), g.Reason, g.BreakGlass, g.Notified, g.FollowUp, codec.Raw(g.Data)}, nil
}

// CreateGate inserts g with Version 1; ErrConflict when its ID or DedupeKey
// exists. g.ID and g.CreatedAt are required.
func (s *Store) CreateGate(ctx context.Context, g *store.Gate) error {
	if g.ID == "" {
		return errors.New("postgres: create gate: empty id")
	}
	if g.CreatedAt.IsZero() {
		return fmt.Errorf("postgres: create gate %s: zero created time", g.ID)
	}
	args, err := gateArgs(g)
	if err != nil {
		return fmt.Errorf("postgres: create gate %s: %w", g.ID, err)
	}
	// evidence (h6): the gate's record (gate.asked) is appended in the same transaction.
	err = s.withEvidence(ctx, func(tx pgx.Tx) (string, time.Time, any, error) {
		tag, err := tx.Exec(ctx, `INSERT INTO gates (`+gateCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, 1)
		ON CONFLICT DO NOTHING`, args...)
		rec := *g
		rec.Version = 1
		return evidence.KindGateAsked, g.CreatedAt, store.GateEvidence(&rec), affected(tag, err)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = store.ErrConflict
		}
		return fmt.Errorf("postgres: create gate %s: %w", g.ID, err)
	}
	g.Version = 1
	return nil
}

// GetGate returns one gate; ErrNotFound when missing.
func (s *Store) GetGate(ctx context.Context, id string) (*store.Gate, error) {
	return s.getGate(ctx, "id", id)
}

// GetGateByKey returns the gate with the dedupe key; ErrNotFound when missing.
func (s *Store) GetGateByKey(ctx context.Context, dedupeKey string) (*store.Gate, error) {
	return s.getGate(ctx, "dedupe_key", dedupeKey)
}

func (s *Store) getGate(ctx context.Context, col, v string) (*store.Gate, error) {
	out, err := s.queryGates(ctx, `SELECT `+gateCols+` FROM gates WHERE `+col+` = $1`, v)
	if err != nil {
		return nil, fmt.Errorf("postgres: get gate %s: %w", v, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("postgres: get gate %s: %w", v, store.ErrNotFound)
	}
	return &out[0], nil
}

// UpdateGate writes g when the stored Version equals g.Version and bumps
// g.Version. ErrConflict when the version moved on (or the new DedupeKey
// belongs to another gate), ErrNotFound when the gate does not exist.
func (s *Store) UpdateGate(ctx context.Context, g *store.Gate) error {
	args, err := gateArgs(g)
	if err != nil {
		return fmt.Errorf("postgres: update gate %s: %w", g.ID, err)
	}
	// evidence (h6): the write's record (gate.<state>, gate.break_glass or
	// gate.updated) is appended in the same transaction.
	err = s.withEvidence(ctx, func(tx pgx.Tx) (string, time.Time, any, error) {
		var oldState string
		var oldBreak bool
		if err := tx.QueryRow(ctx, `SELECT state, break_glass FROM gates WHERE id = $1 FOR UPDATE`, g.ID).Scan(&oldState, &oldBreak); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", time.Time{}, nil, err
		}
		tag, err := tx.Exec(ctx, `UPDATE gates SET
		dedupe_key = $2, repository = $3, commit_sha = $4, environment = $5, team = $6, rule_id = $7, state = $8,
		approvers = $9, excluded = $10, prs = $11, pipeline_uuid = $12, build_number = $13, created_at = $14,
		expires_at = $15, decided_by = $16, decided_at = $17, reason = $18, break_glass = $19, notified = $20,
		follow_up = $21, data = $22, version = version + 1
		WHERE id = $1 AND version = $23`, append(args, g.Version)...)
		rec := *g
		rec.Version++
		kind := store.GateEvidenceKind(oldState, oldBreak, g)
		return kind, store.GateEvidenceTime(kind, g, time.Now()), store.GateEvidence(&rec), affected(tag, err)
	})
	if isUnique(err) {
		return fmt.Errorf("postgres: update gate %s: %w", g.ID, store.ErrConflict)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			var exists bool
			if qerr := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM gates WHERE id = $1)`, g.ID).Scan(&exists); qerr != nil {
				return fmt.Errorf("postgres: update gate %s: %w", g.ID, qerr)
			}
			if exists {
				err = store.ErrConflict
			}
		}
		return fmt.Errorf("postgres: update gate %s: %w", g.ID, err)
	}
	g.Version++
	return nil
}

// ListGates lists gates matching f by CreatedAt, then ID.
func (s *Store) ListGates(ctx context.Context, f store.GateFilter) ([]store.Gate, error) {
	var w where
	if f.State != "" {
		w.add("state =", f.State)
	}
	if f.Repository != "" {
		w.add("repository =", f.Repository)
	}
	if !f.Since.IsZero() {
		w.add("created_at >=", ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at <", ts(f.Until))
	}
	out, err := s.queryGates(ctx, `SELECT `+gateCols+` FROM gates`+w.sql()+` ORDER BY created_at, id`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list gates: %w", err)
	}
	return out, nil
}

func (s *Store) queryGates(ctx context.Context, query string, args ...any) ([]store.Gate, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Gate
	for rows.Next() {
		var g store.Gate
		var approvers, excluded, prs, data pgtype.Text
		var created, expires, decided pgtype.Timestamptz
		if err := rows.Scan(&g.ID, &g.DedupeKey, &g.Repository, &g.Commit, &g.Environment, &g.Team, &g.RuleID, &g.State,
			&approvers, &excluded, &prs, &g.PipelineUUID, &g.BuildNumber, &created, &expires, &g.DecidedBy,
			&decided, &g.Reason, &g.BreakGlass, &g.Notified, &g.FollowUp, &data, &g.Version); err != nil {
			return nil, err
		}
		if err := errors.Join(decJSON(approvers, &g.Approvers), decJSON(excluded, &g.Excluded), decJSON(prs, &g.PRs)); err != nil {
			return nil, fmt.Errorf("decode gate %s: %w", g.ID, err)
		}
		g.CreatedAt, g.ExpiresAt, g.DecidedAt = fromTS(created), fromTS(expires), fromTS(decided)
		g.Data = fromRaw(data)
		out = append(out, g)
	}
	return out, rows.Err()
}

// PutIfAbsent stores key=value unless key exists; it reports whether it did.
func (s *Store) PutIfAbsent(ctx context.Context, key, value string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO kv (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, key, value)
	if err != nil {
		return false, fmt.Errorf("postgres: put %s: %w", key, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Set stores key=value.
func (s *Store) Set(ctx context.Context, key, value string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO kv (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("postgres: set %s: %w", key, err)
	}
	return nil
}

// Get returns the value of key and whether it exists.
func (s *Store) Get(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM kv WHERE name = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("postgres: get %s: %w", key, err)
	}
	return v, true, nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM kv WHERE name = $1`, key); err != nil {
		return fmt.Errorf("postgres: delete %s: %w", key, err)
	}
	return nil
}

// Keys lists the keys starting with prefix in byte order.
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM kv WHERE name >= $1 AND starts_with(name, $1) ORDER BY name`, prefix)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys %s: %w", prefix, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: keys %s: %w", prefix, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// AcquireLease takes the lease for holder until now+ttl when it is free,
// expired (expiry <= now) or already held by holder. One statement: two
// replicas racing for a free lease cannot both win.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	rows, err := s.pool.Query(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
		RETURNING holder`, name, holder, ts(now.Add(ttl)), ts(now))
	if err != nil {
		return false, fmt.Errorf("postgres: acquire lease %s: %w", name, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("postgres: acquire lease %s: %w", name, err)
	}
	return len(got) == 1, nil
}

// ReleaseLease frees the lease when holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("postgres: release lease %s: %w", name, err)
	}
	return nil
}
