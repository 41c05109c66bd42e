package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/model"
)

// Evidence is the tamper-evident log (internal/evidence, docs/evidence.md).
// SaveDecision, SetOutcome, AddFinding (when it stores), CreateGate and
// UpdateGate append their record in the same transaction as their write, so
// nothing they store escapes the chain; appends are serialized across
// replicas and cost no extra commit.
type Evidence interface {
	// AppendEvidence appends a record of another fact (a roles.yaml version,
	// a chain break) after the stored head.
	AppendEvidence(ctx context.Context, kind string, at time.Time, content any) (evidence.Record, error)
	// EvidenceHead returns the stored head (evidence.Genesis() when empty).
	EvidenceHead(ctx context.Context) (evidence.Head, error)
	// ScanEvidence calls fn with the records from <= Seq <= to (to 0: to the
	// end) in sequence order until fn returns false.
	ScanEvidence(ctx context.Context, from, to int64, fn func(evidence.Record) bool) error
	// EvidenceSpan returns the heads that bound the records of [since,
	// until): before is the last record timed before since (genesis, or the
	// retention cut, when none), last the last record timed before until
	// (never before `before`). The span's records are before.Seq+1…last.Seq.
	EvidenceSpan(ctx context.Context, since, until time.Time) (before, last evidence.Head, err error)
	// AddCheckpoint stores a checkpoint.
	AddCheckpoint(ctx context.Context, c evidence.Checkpoint) error
	// ListCheckpoints lists checkpoints by Seq, then Time.
	ListCheckpoints(ctx context.Context) ([]evidence.Checkpoint, error)
	// PruneEvidence stores cut (a checkpoint of the record at cut.Seq, whose
	// hash it must carry) and deletes the records up to cut.Seq, in one
	// transaction; it returns how many it deleted.
	PruneEvidence(ctx context.Context, cut evidence.Checkpoint) (int64, error)
}

// DecisionEvidence is the content of a decision's record: every field but
// the snapshot, which is represented by its SHA-256 (it can be large, and
// the decision's reasons say what was seen).
func DecisionEvidence(d *DecisionRecord) any {
	c := map[string]any{
		"id": d.ID, "kind": string(d.Kind), "repository": d.Repository, "pr": d.PR, "commit": d.Commit,
		"issue_key": d.IssueKey, "team": d.Team, "trigger": d.Trigger, "delivery_id": d.DeliveryID,
		"summary": d.Summary, "outcome": d.Outcome, "created_at": msTime(d.CreatedAt),
		"decision": rawOrNull(d.Decision),
	}
	if len(d.Snapshot) > 0 {
		sum := sha256.Sum256(d.Snapshot)
		c["snapshot_sha256"] = hex.EncodeToString(sum[:])
	}
	return c
}

// OutcomeEvidence is the content of a decision.outcome record.
func OutcomeEvidence(id int64, outcome string) any {
	return map[string]any{"decision_id": id, "outcome": outcome}
}

// FindingEvidence is the content of a finding's record.
func FindingEvidence(f model.Finding) any {
	return map[string]any{
		"key": f.Key, "kind": f.Kind, "rule_id": f.RuleID, "team": f.Team, "subject": string(f.Subject),
		"ref": f.Ref, "url": f.URL, "reason": f.Reason, "held": f.Held, "occurred_at": msTime(f.OccurredAt),
		"recorded_at": msTime(f.RecordedAt), "actor": f.Actor, "details": f.Details,
	}
}

// FindingEvidenceTime is when a finding's record is timed: when it was
// recorded, else when it occurred.
func FindingEvidenceTime(f model.Finding) time.Time {
	if !f.RecordedAt.IsZero() {
		return f.RecordedAt
	}
	return f.OccurredAt
}

// GateEvidence is the content of a gate's record: the whole gate, who
// decided and why, break-glass and its follow-up, and the gate package's
// history (Data).
func GateEvidence(g *Gate) any {
	return map[string]any{
		"id": g.ID, "repository": g.Repository, "commit": g.Commit, "environment": g.Environment, "team": g.Team,
		"rule_id": g.RuleID, "state": g.State, "approvers": nonNil(g.Approvers), "excluded": nonNil(g.Excluded),
		"prs": g.PRs, "pipeline_uuid": g.PipelineUUID, "build_number": g.BuildNumber,
		"created_at": msTime(g.CreatedAt), "expires_at": msTime(g.ExpiresAt),
		"decided_by": g.DecidedBy, "decided_at": msTime(g.DecidedAt), "reason": g.Reason,
		"break_glass": g.BreakGlass, "notified": g.Notified, "follow_up": g.FollowUp, "data": rawOrNull(g.Data),
		"version": g.Version,
	}
}

// GateEvidenceKind names a gate write: gate.break_glass when break-glass
// was just used, gate.<state> when the state changed, gate.updated otherwise.
func GateEvidenceKind(oldState string, oldBreakGlass bool, g *Gate) string {
	switch {
	case g.BreakGlass && !oldBreakGlass:
		return evidence.KindGateBreakGlass
	case g.State != oldState:
		return "gate." + g.State
	default:
		return evidence.KindGateUpdated
	}
}

// GateEvidenceTime is when a gate write is timed: its decision when the
// state changed to decided, else now.
func GateEvidenceTime(kind string, g *Gate, now time.Time) time.Time {
	if kind != evidence.KindGateUpdated && kind != evidence.KindGateAsked && !g.DecidedAt.IsZero() {
		return g.DecidedAt
	}
	if kind == evidence.KindGateAsked {
		return g.CreatedAt
	}
	return now
}

func rawOrNull(b json.RawMessage) any {
	if len(b) == 0 || !json.Valid(b) {
		if len(b) > 0 {
			return string(b) // kept as a string rather than dropped
		}
		return nil
	}
	return b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// msTime is a stored time in records: truncated to the millisecond as the
// stores keep it, so a record matches the row it records.
func msTime(t time.Time) string { return evidence.Time(t.Truncate(time.Millisecond)) }
