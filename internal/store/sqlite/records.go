package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
		return 0, errors.New("sqlite: save decision: zero created time")
	}
	pub := store.NewPublicID()
	var id int64
	// evidence (h6): the decision's record is appended in the same transaction.
	err := s.withEvidence(ctx, func(tx *sql.Tx) (string, time.Time, any, error) {
		err := tx.QueryRowContext(ctx, `INSERT INTO decisions
		(public_id, kind, repository, pr, commit_sha, issue_key, team, trigger_event, delivery_id, summary, decision, snapshot, outcome, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			pub, string(d.Kind), d.Repository, d.PR, d.Commit, d.IssueKey, d.Team, d.Trigger, d.DeliveryID, d.Summary,
			codec.Raw(d.Decision), codec.Raw(d.Snapshot), d.Outcome, ms(d.CreatedAt)).Scan(&id)
		rec := *d
		rec.ID = id
		return evidence.KindDecision, d.CreatedAt, store.DecisionEvidence(&rec), err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: save decision: %w", err)
	}
	d.ID, d.PublicID = id, pub
	return id, nil
}

// SetOutcome records what the adapters did; ErrNotFound when id is unknown.
func (s *Store) SetOutcome(ctx context.Context, id int64, outcome string) error {
	// evidence (h6): the outcome's record is appended in the same transaction.
	err := s.withEvidence(ctx, func(tx *sql.Tx) (string, time.Time, any, error) {
		err := affected(tx.ExecContext(ctx, `UPDATE decisions SET outcome = ? WHERE id = ?`, outcome, id))
		return evidence.KindDecisionOutcome, time.Now(), store.OutcomeEvidence(id, outcome), err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set outcome %d: %w", id, err)
	}
	return nil
}

// GetDecision returns one decision; ErrNotFound when missing.
func (s *Store) GetDecision(ctx context.Context, id int64) (*store.DecisionRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get decision %d: %w", id, err)
	}
	out, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get decision %d: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sqlite: get decision %d: %w", id, store.ErrNotFound)
	}
	return &out[0], nil
}

// GetDecisionByPublicID returns the decision whose public page is
// publicID; ErrNotFound when none is (the id is not logged: it is the
// page's only protection).
func (s *Store) GetDecisionByPublicID(ctx context.Context, publicID string) (*store.DecisionRecord, error) {
	if publicID == "" {
		return nil, fmt.Errorf("sqlite: get decision by public id: %w", store.ErrNotFound)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions WHERE public_id = ?`, publicID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get decision by public id: %w", err)
	}
	out, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get decision by public id: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sqlite: get decision by public id: %w", store.ErrNotFound)
	}
	return &out[0], nil
}

// ListDecisions lists decisions matching f by CreatedAt, then ID.
func (s *Store) ListDecisions(ctx context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error) {
	var w where
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if f.Repository != "" {
		w.add("repository = ?", f.Repository)
	}
	if f.PR != 0 {
		w.add("pr = ?", f.PR)
	}
	if f.IssueKey != "" {
		w.add("issue_key = ?", f.IssueKey)
	}
	if !f.Since.IsZero() {
		w.add("created_at >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("created_at < ?", ms(f.Until))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+decisionCols+` FROM decisions`+w.sql()+` ORDER BY created_at, id`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list decisions: %w", err)
	}
	out, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list decisions: %w", err)
	}
	return out, nil
}

func scanDecisions(rows *sql.Rows) ([]store.DecisionRecord, error) {
	defer rows.Close()
	var out []store.DecisionRecord
	for rows.Next() {
		var d store.DecisionRecord
		var kind string
		var pub, decision, snapshot sql.NullString
		var created sql.NullInt64
		if err := rows.Scan(&d.ID, &pub, &kind, &d.Repository, &d.PR, &d.Commit, &d.IssueKey, &d.Team, &d.Trigger, &d.DeliveryID,
			&d.Summary, &decision, &snapshot, &d.Outcome, &created); err != nil {
			return nil, err
		}
		d.Kind, d.PublicID = model.SubjectKind(kind), pub.String
		d.Decision, d.Snapshot = fromRaw(decision), fromRaw(snapshot)
		d.CreatedAt = fromMS(created)
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
		return errors.New("sqlite: upsert pr: empty repository")
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
			return fmt.Errorf("sqlite: upsert pr %s#%d: %w", pr.Repository, pr.ID, err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: upsert pr %s#%d: %w", pr.Repository, pr.ID, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO pull_requests (`+prCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
		pr.Repository, pr.ID, pr.Team, pr.Title, pr.AuthorAccountID, string(pr.State), b2i(pr.Draft), pr.SourceCommit,
		pr.DestinationBranch, pr.MergeCommit, pr.ClosedBy, pr.DiffCommit, enc[0], enc[1], enc[2], enc[3], pr.CommentID, enc[4],
		b2i(pr.ReviewMet), ms(pr.CreatedAt), ms(pr.UpdatedAt), ms(pr.FirstReviewAt), ms(pr.ApprovedAt), ms(pr.ClosedAt), ms(pr.SeenAt))
	if err == nil {
		err = writeReviewRequests(ctx, tx, pr)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("sqlite: upsert pr %s#%d: %w", pr.Repository, pr.ID, err)
	}
	return nil
}

// writeReviewRequests replaces the pull request's rows of the review load
// (store.ReviewCounts).
func writeReviewRequests(ctx context.Context, tx *sql.Tx, pr *store.PRRecord) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM pr_review_requests WHERE repository = ? AND id = ?`, pr.Repository, pr.ID); err != nil {
		return err
	}
	for _, r := range store.PendingReviewers(pr) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pr_review_requests (repository, id, account_id) VALUES (?, ?, ?)`,
			pr.Repository, pr.ID, r); err != nil {
			return err
		}
	}
	return nil
}

// OpenReviews counts the open review requests per account but those of
// exceptRepo#exceptID (store.ReviewCounts).
func (s *Store) OpenReviews(ctx context.Context, exceptRepo string, exceptID int) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT account_id, count(*) FROM pr_review_requests
		WHERE NOT (repository = ? AND id = ?) GROUP BY account_id`, exceptRepo, exceptID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open reviews: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("sqlite: open reviews: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: open reviews: %w", err)
	}
	return out, nil
}

// GetPR returns one record; ErrNotFound when missing.
func (s *Store) GetPR(ctx context.Context, repo string, id int) (*store.PRRecord, error) {
	out, err := s.queryPRs(ctx, `SELECT `+prCols+` FROM pull_requests WHERE repository = ? AND id = ?`, repo, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get pr %s#%d: %w", repo, id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sqlite: get pr %s#%d: %w", repo, id, store.ErrNotFound)
	}
	return &out[0], nil
}

// ListPRs lists records matching f by Repository, then ID. The ClosedAt
// bounds match closed records only.
func (s *Store) ListPRs(ctx context.Context, f store.PRFilter) ([]store.PRRecord, error) {
	var w where
	if f.Repository != "" {
		w.add("repository = ?", f.Repository)
	}
	if f.State != "" {
		w.add("state = ?", string(f.State))
	}
	if !f.UpdatedSince.IsZero() {
		w.add("updated_at >= ?", ms(f.UpdatedSince))
	}
	if !f.UpdatedUntil.IsZero() {
		w.add("updated_at < ?", ms(f.UpdatedUntil))
	}
	if !f.ClosedSince.IsZero() {
		w.add("closed_at >= ?", ms(f.ClosedSince))
	}
	if !f.ClosedUntil.IsZero() {
		w.add("closed_at < ?", ms(f.ClosedUntil))
	}
	out, err := s.queryPRs(ctx, `SELECT `+prCols+` FROM pull_requests`+w.sql()+` ORDER BY repository, id`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list prs: %w", err)
	}
	return out, nil
}

// PRsByCommit returns the repository's PRs whose merge or source commit is
// commit, a full hash; none for anything shorter (never a prefix match).
func (s *Store) PRsByCommit(ctx context.Context, repo, commit string) ([]store.PRRecord, error) {
	if !model.IsFullCommit(commit) {
		return nil, nil
	}
	c := strings.ToLower(commit)
	out, err := s.queryPRs(ctx, `SELECT `+prCols+` FROM pull_requests WHERE repository = ? AND
		(merge_commit = ? OR source_commit = ?) -- stored as Bitbucket gives them: lower case
		ORDER BY id`, repo, c, c)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prs by commit %s: %w", commit, err)
	}
	return out, nil
}

func (s *Store) queryPRs(ctx context.Context, query string, args ...any) ([]store.PRRecord, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PRRecord
	for rows.Next() {
		var pr store.PRRecord
		var state string
		var changed, reviewers, requested, approvals, statuses sql.NullString
		var created, updated, firstReview, approved, closed, seen sql.NullInt64
		if err := rows.Scan(&pr.Repository, &pr.ID, &pr.Team, &pr.Title, &pr.AuthorAccountID, &state, &pr.Draft,
			&pr.SourceCommit, &pr.DestinationBranch, &pr.MergeCommit, &pr.ClosedBy, &pr.DiffCommit,
			&changed, &reviewers, &requested, &approvals, &pr.CommentID, &statuses, &pr.ReviewMet,
			&created, &updated, &firstReview, &approved, &closed, &seen); err != nil {
			return nil, err
		}
		pr.State = model.PRState(state)
		for _, j := range []struct {
			v   sql.NullString
			dst any
		}{
			{changed, &pr.ChangedFiles}, {reviewers, &pr.Reviewers}, {requested, &pr.Requested},
			{approvals, &pr.Approvals}, {statuses, &pr.Statuses},
		} {
			if err := decJSON(j.v, j.dst); err != nil {
				return nil, fmt.Errorf("decode %s#%d: %w", pr.Repository, pr.ID, err)
			}
		}
		pr.CreatedAt, pr.UpdatedAt, pr.FirstReviewAt = fromMS(created), fromMS(updated), fromMS(firstReview)
		pr.ApprovedAt, pr.ClosedAt, pr.SeenAt = fromMS(approved), fromMS(closed), fromMS(seen)
		out = append(out, pr)
	}
	return out, rows.Err()
}

const findingCols = `finding_key, kind, rule_id, team, subject, ref, url, reason, held, occurred_at, recorded_at, actor, details`

// AddFinding stores f once per Key; false when the key exists. f.OccurredAt
// is required.
func (s *Store) AddFinding(ctx context.Context, f model.Finding) (bool, error) {
	if f.Key == "" {
		return false, errors.New("sqlite: add finding: empty key")
	}
	if f.OccurredAt.IsZero() {
		return false, fmt.Errorf("sqlite: add finding %s: zero occurred time", f.Key)
	}
	var n int64
	// evidence (h6): a stored finding's record is appended in the same transaction.
	err := s.withEvidence(ctx, func(tx *sql.Tx) (string, time.Time, any, error) {
		res, err := tx.ExecContext(ctx, `INSERT INTO findings (`+findingCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (finding_key) DO NOTHING`,
			f.Key, f.Kind, f.RuleID, f.Team, string(f.Subject), f.Ref, f.URL, f.Reason, b2i(f.Held),
			ms(f.OccurredAt), ms(f.RecordedAt), f.Actor, f.Details)
		if err != nil {
			return "", time.Time{}, nil, err
		}
		if n, err = res.RowsAffected(); err != nil || n != 1 {
			return "", time.Time{}, nil, err
		}
		return evidence.KindFinding, store.FindingEvidenceTime(f), store.FindingEvidence(f), nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: add finding %s: %w", f.Key, err)
	}
	return n == 1, nil
}

// ListFindings lists findings matching f by OccurredAt, then Key.
func (s *Store) ListFindings(ctx context.Context, f store.FindingFilter) ([]model.Finding, error) {
	var w where
	if !f.Since.IsZero() {
		w.add("occurred_at >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("occurred_at < ?", ms(f.Until))
	}
	if f.Team != "" {
		w.add("team = ?", f.Team)
	}
	if f.Kind != "" {
		w.add("kind = ?", f.Kind)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+findingCols+` FROM findings`+w.sql()+` ORDER BY occurred_at, finding_key`+limit(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list findings: %w", err)
	}
	defer rows.Close()
	var out []model.Finding
	for rows.Next() {
		var f model.Finding
		var subject string
		var occurred, recorded sql.NullInt64
		if err := rows.Scan(&f.Key, &f.Kind, &f.RuleID, &f.Team, &subject, &f.Ref, &f.URL, &f.Reason, &f.Held,
			&occurred, &recorded, &f.Actor, &f.Details); err != nil {
			return nil, fmt.Errorf("sqlite: list findings: %w", err)
		}
		f.Subject = model.SubjectKind(subject)
		f.OccurredAt, f.RecordedAt = fromMS(occurred), fromMS(recorded)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list findings: %w", err)
	}
	return out, nil
}
