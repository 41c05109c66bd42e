package app

// evidence.go (h6): the daemon's side of the tamper-evident log — the
// keeper (chain checks, signed checkpoints, retention), its /readyz line,
// and the roles.yaml versions put in force.

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/report"
	"github.com/reloadly/rolekeeper/internal/server"
)

// JobEvidence is the hourly job: check the chain, checkpoint its head,
// prune past evidence.retention.
const JobEvidence = "evidence_checkpoint"

// rolesVersionKey remembers the last roles.yaml hash recorded in the chain.
const rolesVersionKey = "evidence:roles_sha256"

// wireEvidence builds the keeper. A malformed ROLEKEEPER_EVIDENCE_KEY stops
// the start: checkpoints the operator believes signed must be.
func (a *App) wireEvidence() error {
	var signer *evidence.Signer
	if a.secrets.EvidenceKey != "" {
		var err error
		if signer, err = evidence.ParsePrivateKey(a.secrets.EvidenceKey); err != nil {
			return fmt.Errorf("ROLEKEEPER_EVIDENCE_KEY: %w", err)
		}
	}
	k, err := evidence.NewKeeper(evidence.KeeperOptions{Log: a.store, Signer: signer, Logger: a.log.Named("evidence"), Now: a.now, Registerer: a.reg})
	if err != nil {
		return err
	}
	a.evidence = k
	a.AddReadiness(func(context.Context) map[string]server.Check {
		ok, detail := k.Status()
		return map[string]server.Check{"evidence": {OK: ok, Detail: detail}} // informs, never fails /readyz
	})
	a.OnStart(func(ctx context.Context) error {
		if signer == nil {
			a.log.Warn("ROLEKEEPER_EVIDENCE_KEY not set: evidence checkpoints are unsigned")
		}
		a.recordRolesVersion()
		return nil
	})
	return nil
}

// Evidence is the keeper of the evidence log.
func (a *App) Evidence() *evidence.Keeper { return a.evidence }

// recordRolesVersion appends the roles.yaml in force to the chain when it
// differs from the last one recorded. A failure is logged: it must not stop
// a reload.
func (a *App) recordRolesVersion() {
	if a.evidence == nil {
		return
	}
	org := a.roles.Get()
	if org == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last, _, err := a.store.Get(ctx, rolesVersionKey)
	if err == nil {
		var recorded bool
		if recorded, err = a.evidence.RolesVersion(ctx, org.Hash, org.Path, a.now(), last); err == nil && recorded {
			err = a.store.Set(ctx, rolesVersionKey, org.Hash)
		}
	}
	if err != nil {
		a.log.Error("record the roles.yaml version in the evidence log", zap.Error(err))
	}
}

// evidenceJob is the hourly job.
func (a *App) evidenceJob(ctx context.Context) error {
	if a.evidence == nil {
		return nil
	}
	if err := a.evidence.Scheduled(ctx); err != nil {
		return err
	}
	if r := a.cfg.Evidence.Retention; r > 0 {
		n, err := a.evidence.Prune(ctx, a.now().Add(-r))
		if err != nil {
			return fmt.Errorf("prune evidence: %w", err)
		}
		if n > 0 {
			a.log.Info("evidence pruned past retention, checkpoint kept at the cut", zap.Int64("records", n), zap.Duration("retention", r))
		}
	}
	return nil
}

// checkpointWeek signs the week's last record and the current head when
// the weekly report is made.
func (a *App) checkpointWeek(ctx context.Context, r *report.Report) error {
	if a.evidence == nil || r.Evidence == nil {
		return nil
	}
	week := evidence.Head{Seq: r.Evidence.LastSeq, Hash: r.Evidence.Head}
	if _, err := a.evidence.CheckpointAt(ctx, week, evidence.ReasonWeekEnd, r.Week); err != nil {
		return err
	}
	_, err := a.evidence.Checkpoint(ctx, evidence.ReasonWeeklyReport, r.Week)
	return err
}
