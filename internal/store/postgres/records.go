package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/store"
	"github.com/reloadly/rolekeeper/internal/store/codec"
)

const decisionCols = `id, public_id, kind, repository, pr, commit_sha, issue_key, team, trigger_event, delivery_id,
	summary, decision, snapshot, outcome, created_at`

// SaveDecision stores d, sets d.ID and d.PublicID (fresh, random) and
// returns d.ID. d.CreatedAt is required.
func (s *Store) SaveDecision(ctx context.Context, d *store.DecisionRecord) (int64, error) {
	if d.CreatedAt.IsZero() {
		return 0, errors.New("postgres: save decision: zero created time")
	}
	pub := store.NewPublicID()
	var id int64
	// evidence (h6): the decision's record is appended in the same transaction.
	err := s.withEvidence(ctx, func(tx pgx.Tx) (string, time.Time, any, error) {
		err := tx.QueryRow(ctx, `INSERT INTO decisions
		(public_id, kind, repository, pr, commit_sha, issue_key, team, trigger_event, delivery_id, summary, decision, snapshot, outcome, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
			pub, string(d.Kind), d.Repository, d.PR, d.Commit, d.IssueKey, d.Team, d.Trigger, d.DeliveryID, d.Summary,
			codec.Raw(d.Decision), codec.Raw(d.Snapshot), d.Outcome, ts(d.CreatedAt)).Scan(&id)
		rec := *d
		rec.ID = id
		return evidence.KindDecision, d.CreatedAt, store.DecisionEvidence(&rec), err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: save decision: %w", err)
	}
	d.ID, d.PublicID = id, pub
	return id, nil
}

// SetOutcome records what the adapters did; ErrNotFound when id is unknown.
func (s *Store) SetOutcome(ctx context.Context, id int64, outcome string) error {
	// evidence (h6): the outcome's record is appended in the same transaction.
	err := s.withEvidence(ctx, func(tx pgx.Tx) (string, time.Time, any, error) {
		err := affected(tx.Exec(ctx, `UPDATE decisions SET outcome = $1 WHERE id = $2`, outcome, id))
		return evidence.KindDecisionOutcome, time.Now(), store.OutcomeEvidence(id, outcome), err
	})
	if err != nil {
		return fmt.Errorf("postgres: set outcome %d: %w", id, err)
	}
	return nil
}

// GetDecision returns one decision; ErrNotFound when missing.
func (s *Store) GetDecision(ctx context.Context, id int64) (*store.DecisionRecord, error) {
	out, err := s.queryDecisions(ctx, `SELECT `+decisionCols+` FROM decisions WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: get decision %d: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("postgres: get decision %d: %w", id, store.ErrNotFound)
	}
	return &out[0], nil
}

// GetDecisionByPublicID returns the decision whose public page is
// publicID; ErrNotFound when none is (the id is not logged: it is the
// page's only protection).
func (s *Store) GetDecisionByPublicID(ctx context.Context, publicID string) (*store.DecisionRecord, error) {
	if publicID == "" {
		return nil, fmt.Errorf("postgres: get decision by public id: %w", store.ErrNotFound)
	}
	out, err := s.queryDecisions(ctx, `SELECT `+decisionCols+` FROM decisions WHERE public_id = $1`, publicID)
	if err != nil {
		return nil, fmt.Errorf("postgres: get decision by public id: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("postgres: get decision by public id: %w", store.ErrNotFound)
	}
	return &out[0], nil
}

// ListDecisions lists decisions matching f by CreatedAt, then ID.
func (s *Store) ListDecisions(ctx context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error) {
	var w where
	if f.Kind != "" {
		w.add("kind =", string(f.Kind))
	}
	if f.Repository != "" {
		w.add("repository =", f.Repository)
	}
	if f.PR != 0 {
		w.add("pr =", f.PR)
	}
	if f.IssueKey != "" {
		w.add("issue_key =", f.IssueKey)
	}
	if !f.Since.IsZero() {
		w.add("created_at >=", ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at <", ts(f.Until))
	}
	out, err := s.queryDecisions(ctx, `SELECT `+decisionCols+` FROM decisions`+w.sql()+` ORDER BY created_at, id`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list decisions: %w", err)
	}
	return out, nil
}

func (s *Store) queryDecisions(ctx context.Context, query string, args ...any) ([]store.DecisionRecord, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DecisionRecord
	for rows.Next() {
		var d store.DecisionRecord
		var kind string
		var decision, snapshot pgtype.Text
		var created pgtype.Timestamptz
		if err := rows.Scan(&d.ID, &d.PublicID, &kind, &d.Repository, &d.PR, &d.Commit, &d.IssueKey, &d.Team, &d.Trigger, &d.DeliveryID,
			&d.Summary, &decision, &snapshot, &d.Outcome, &created); err != nil {
			return nil, err
		}
		d.Kind = model.SubjectKind(kind)
		d.Decision, d.Snapshot = fromRaw(decision), fromRaw(snapshot)
		d.CreatedAt = fromTS(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

const prCols = `repository, id, team, title, author_account_id, state, draft, source_commit, destination_branch,
	merge_commit, closed_by, diff_commit, changed_files, reviewers, requested, approvals, comment_id, statuses,
	review_met, created_at, updated_at, first_review_at, approved_at, closed_at, seen_at`

// UpsertPR inserts pr or replaces the stored record with it.
func (s *Store) UpsertPR(ctx context.Context, pr *store.PRRecord) error {
	if pr.Repository == "" {
		return errors.New("postgres: upsert pr: empty repository")
	}
	var enc [5]any
	var err error
	for i, v := range []struct {
		v     any
		isNil bool
	}{
		{pr.ChangedFiles, pr.ChangedFiles == nil},
		{pr.Reviewers, pr.Reviewers == nil},
		{pr.Requested, pr.Requested == nil},
		{codec.Approvals(pr.Approvals), pr.Approvals == nil},
		{pr.Statuses, pr.Statuses == nil},
	} {
		if enc[i], err = codec.JSON(v.v, v.isNil); err != nil {
			return fmt.Errorf("postgres: upsert pr %s#%d: %w", pr.Repository, pr.ID, err)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: upsert pr %s#%d: %w", pr.Repository, pr.ID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	_, err = tx.Exec(ctx, `INSERT INTO pull_requests (`+prCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
		ON CONFLICT (repository, id) DO UPDATE SET
			team = excluded.team, title = excluded.title, author_account_id = excluded.author_account_id,
			state = excluded.state, draft = excluded.draft, source_commit = excluded.source_commit,
			destination_branch = excluded.destination_branch, merge_commit = excluded.merge_commit,
			closed_by = excluded.closed_by, diff_commit = excluded.diff_commit, changed_files = excluded.changed_files,
			reviewers = excluded.reviewers, requested = excluded.requested, approvals = excluded.approvals,
			comment_id = excluded.comment_id, statuses = excluded.statuses, review_met = excluded.review_met,
			created_at = excluded.created_at, updated_at = excluded.updated_at,
			first_review_at = excluded.first_review_at, approved_at = excluded.approved_at,
			closed_at = excluded.closed_at, seen_at = excluded.seen_at`,
		pr.Repository, pr.ID, pr.Team, pr.Title, pr.AuthorAccountID, string(pr.State), pr.Draft, pr.SourceCommit,
		pr.DestinationBranch, pr.MergeCommit, pr.ClosedBy, pr.DiffCommit, enc[0], enc[1], enc[2], enc[3], pr.CommentID, enc[4],
		pr.ReviewMet, ts(pr.CreatedAt), ts(pr.UpdatedAt), ts(pr.FirstReviewAt), ts(pr.ApprovedAt), ts(pr.ClosedAt), ts(pr.SeenAt))
	if err == nil {
		err = writeReviewRequests(ctx, tx, pr)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("postgres: upsert pr %s#%d: %w", pr.Repository, pr.ID, err)
	}
	return nil
}

// writeReviewRequests replaces the pull request's rows of the review load
// (store.ReviewCounts).
func writeReviewRequests(ctx context.Context, tx pgx.Tx, pr *store.PRRecord) error {
	if _, err := tx.Exec(ctx, `DELETE FROM pr_review_requests WHERE repository = $1 AND id = $2`, pr.Repository, pr.ID); err != nil {
		return err
	}
	if pending := store.PendingReviewers(pr); len(pending) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO pr_review_requests (repository, id, account_id)
			SELECT $1, $2, a FROM unnest($3::text[]) AS a`, pr.Repository, pr.ID, pending); err != nil {
			return err
		}
	}
	return nil
}

// OpenReviews counts the open review requests per account but those of
// exceptRepo#exceptID (store.ReviewCounts).
func (s *Store) OpenReviews(ctx context.Context, exceptRepo string, exceptID int) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT account_id, count(*) FROM pr_review_requests
		WHERE NOT (repository = $1 AND id = $2) GROUP BY account_id`, exceptRepo, exceptID)
	if err != nil {
		return nil, fmt.Errorf("postgres: open reviews: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("postgres: open reviews: %w", err)
		}
		out[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: open reviews: %w", err)
	}
	return out, nil
}

// GetPR returns one record; ErrNotFound when missing.
func (s *Store) GetPR(ctx context.Context, repo string, id int) (*store.PRRecord, error) {
	out, err := s.queryPRs(ctx, `SELECT `+prCols+` FROM pull_requests WHERE repository = $1 AND id = $2`, repo, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: get pr %s#%d: %w", repo, id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("postgres: get pr %s#%d: %w", repo, id, store.ErrNotFound)
	}
	return &out[0], nil
}

// ListPRs lists records matching f by Repository, then ID. The ClosedAt
// bounds match closed records only.
func (s *Store) ListPRs(ctx context.Context, f store.PRFilter) ([]store.PRRecord, error) {
	var w where
	if f.Repository != "" {
		w.add("repository =", f.Repository)
	}
	if f.State != "" {
		w.add("state =", string(f.State))
	}
	if !f.UpdatedSince.IsZero() {
		w.add("updated_at >=", ts(f.UpdatedSince))
	}
	if !f.UpdatedUntil.IsZero() {
		w.add("updated_at <", ts(f.UpdatedUntil))
	}
	if !f.ClosedSince.IsZero() {
		w.add("closed_at >=", ts(f.ClosedSince))
	}
	if !f.ClosedUntil.IsZero() {
		w.add("closed_at <", ts(f.ClosedUntil))
	}
	out, err := s.queryPRs(ctx, `SELECT `+prCols+` FROM pull_requests`+w.sql()+` ORDER BY repository, id`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list prs: %w", err)
	}
	return out, nil
}

// PRsByCommit returns the repository's PRs whose merge or source commit is
// commit, a full hash; none for anything shorter (never a prefix match).
func (s *Store) PRsByCommit(ctx context.Context, repo, commit string) ([]store.PRRecord, error) {
	if !model.IsFullCommit(commit) {
		return nil, nil
	}
	out, err := s.queryPRs(ctx, `SELECT `+prCols+` FROM pull_requests WHERE repository = $1 AND
		(merge_commit = $2 OR source_commit = $2) -- hashes are stored as Bitbucket gives them: lower case
		ORDER BY id`, repo, strings.ToLower(commit))
	if err != nil {
		return nil, fmt.Errorf("postgres: prs by commit %s: %w", commit, err)
	}
	return out, nil
}

func (s *Store) queryPRs(ctx context.Context, query string, args ...any) ([]store.PRRecord, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PRRecord
	for rows.Next() {
		pr, err := scanPR(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, pr)
	}
	return out, rows.Err()
}

func scanPR(rows pgx.Rows) (store.PRRecord, error) {
	var pr store.PRRecord
	var state string
	var changed, reviewers, requested, approvals, statuses pgtype.Text
	var created, updated, firstReview, approved, closed, seen pgtype.Timestamptz
	if err := rows.Scan(&pr.Repository, &pr.ID, &pr.Team, &pr.Title, &pr.AuthorAccountID, &state, &pr.Draft,
		&pr.SourceCommit, &pr.DestinationBranch, &pr.MergeCommit, &pr.ClosedBy, &pr.DiffCommit,
		&changed, &reviewers, &requested, &approvals, &pr.CommentID, &statuses, &pr.ReviewMet,
		&created, &updated, &firstReview, &approved, &closed, &seen); err != nil {
		return pr, err
	}
	pr.State = model.PRState(state)
	for _, j := range []struct {
		v   pgtype.Text
		dst any
	}{
		{changed, &pr.ChangedFiles}, {reviewers, &pr.Reviewers}, {requested, &pr.Requested},
		{approvals, &pr.Approvals}, {statuses, &pr.Statuses},
	} {
		if err := decJSON(j.v, j.dst); err != nil {
			return pr, fmt.Errorf("decode %s#%d: %w", pr.Repository, pr.ID, err)
		}
	}
	pr.CreatedAt, pr.UpdatedAt, pr.FirstReviewAt = fromTS(created), fromTS(updated), fromTS(firstReview)
	pr.ApprovedAt, pr.ClosedAt, pr.SeenAt = fromTS(approved), fromTS(closed), fromTS(seen)
	return pr, nil
}

const findingCols = `finding_key, kind, rule_id, team, subject, ref, url, reason, held, occurred_at, recorded_at, actor, details`

// AddFinding stores f once per Key; false when the key exists. f.OccurredAt
// is required.
func (s *Store) AddFinding(ctx context.Context, f model.Finding) (bool, error) {
	if f.Key == "" {
		return false, errors.New("postgres: add finding: empty key")
	}
	if f.OccurredAt.IsZero() {
		return false, fmt.Errorf("postgres: add finding %s: zero occurred time", f.Key)
	}
	var stored bool
	// evidence (h6): a stored finding's record is appended in the same transaction.
	err := s.withEvidence(ctx, func(tx pgx.Tx) (string, time.Time, any, error) {
		tag, err := tx.Exec(ctx, `INSERT INTO findings (`+findingCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (finding_key) DO NOTHING`,
			f.Key, f.Kind, f.RuleID, f.Team, string(f.Subject), f.Ref, f.URL, f.Reason, f.Held,
			ts(f.OccurredAt), ts(f.RecordedAt), f.Actor, f.Details)
		if stored = err == nil && tag.RowsAffected() == 1; !stored {
			return "", time.Time{}, nil, err
		}
		return evidence.KindFinding, store.FindingEvidenceTime(f), store.FindingEvidence(f), nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: add finding %s: %w", f.Key, err)
	}
	return stored, nil
}

// ListFindings lists findings matching f by OccurredAt, then Key.
func (s *Store) ListFindings(ctx context.Context, f store.FindingFilter) ([]model.Finding, error) {
	var w where
	if !f.Since.IsZero() {
		w.add("occurred_at >=", ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("occurred_at <", ts(f.Until))
	}
	if f.Team != "" {
		w.add("team =", f.Team)
	}
	if f.Kind != "" {
		w.add("kind =", f.Kind)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+findingCols+` FROM findings`+w.sql()+` ORDER BY occurred_at, finding_key`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list findings: %w", err)
	}
	defer rows.Close()
	var out []model.Finding
	for rows.Next() {
		var f model.Finding
		var subject string
		var occurred, recorded pgtype.Timestamptz
		if err := rows.Scan(&f.Key, &f.Kind, &f.RuleID, &f.Team, &subject, &f.Ref, &f.URL, &f.Reason, &f.Held,
			&occurred, &recorded, &f.Actor, &f.Details); err != nil {
			return nil, fmt.Errorf("postgres: list findings: %w", err)
		}
		f.Subject = model.SubjectKind(subject)
		f.OccurredAt, f.RecordedAt = fromTS(occurred), fromTS(recorded)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list findings: %w", err)
	}
	return out, nil
}
