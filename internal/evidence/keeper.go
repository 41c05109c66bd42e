package evidence

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Keeper is the daemon's side of the log: it checks the chain, signs
// checkpoints, records roles.yaml versions and prunes at the retention cut.
// A broken chain never stops the daemon: Check logs it loudly, sets
// rolekeeper_evidence_chain_ok to 0, records the break in the chain once,
// and appends go on after the stored head.
type Keeper struct {
	log    Log
	signer *Signer // nil: checkpoints unsigned
	logger *zap.Logger
	now    func() time.Time
	ok     prometheus.Gauge
	head   prometheus.Gauge

	mu      sync.Mutex
	checked bool
	last    Result
	lastErr error
	noted   map[string]bool // breaks already recorded in the chain
}

// KeeperOptions configure a Keeper.
type KeeperOptions struct {
	Log        Log
	Signer     *Signer
	Logger     *zap.Logger
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// NewKeeper builds a Keeper and registers its metrics.
func NewKeeper(opt KeeperOptions) (*Keeper, error) {
	k := &Keeper{log: opt.Log, signer: opt.Signer, logger: opt.Logger, now: opt.Now, noted: map[string]bool{},
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rolekeeper_evidence_chain_ok",
			Help: "1 when the last check of the evidence chain found it intact, 0 when it is broken or could not be read.",
		}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rolekeeper_evidence_head_seq",
			Help: "Sequence number of the evidence chain's head at the last check.",
		}),
	}
	if k.logger == nil {
		k.logger = zap.NewNop()
	}
	if k.now == nil {
		k.now = time.Now
	}
	k.ok.Set(1) // until a check says otherwise
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{k.ok, k.head} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return k, nil
}

// Signed reports whether checkpoints are signed.
func (k *Keeper) Signed() bool { return k.signer != nil }

// Check verifies the whole chain. A break is logged at error level, the
// gauge goes to 0 and a chain.break record naming it is appended (once per
// break), so that the chain itself says when the daemon noticed.
func (k *Keeper) Check(ctx context.Context) (Result, error) {
	// No key pinned: checkpoints signed before a key rotation stay valid
	// under the key they name; pinning is the auditor's (verify --pubkey).
	res, err := VerifySource(ctx, k.log, nil)
	k.mu.Lock()
	k.checked, k.last, k.lastErr = true, res, err
	k.mu.Unlock()
	if err != nil {
		k.ok.Set(0)
		k.logger.Error("evidence chain could not be read", zap.Error(err))
		return res, err
	}
	k.head.Set(float64(res.Last.Seq))
	if res.OK() {
		k.ok.Set(1)
		return res, nil
	}
	k.ok.Set(0)
	p := res.Problem
	k.logger.Error("EVIDENCE CHAIN BROKEN: the decision log was changed in the database; enforcement continues, appends continue after the stored head",
		zap.Int64("seq", p.Seq), zap.String("kind", p.Kind), zap.String("problem", p.What))
	key := p.Error()
	k.mu.Lock()
	done := k.noted[key]
	k.noted[key] = true
	k.mu.Unlock()
	if !done && !k.recorded(ctx, p.Seq, key) {
		if _, aerr := k.log.AppendEvidence(ctx, KindChainBreak, k.now(), map[string]any{
			"seq": p.Seq, "kind": p.Kind, "problem": key, "noticed_at": Time(k.now()),
		}); aerr != nil {
			k.logger.Error("record the evidence chain break", zap.Error(aerr))
		}
	}
	return res, nil
}

// recorded reports whether a chain.break record after seq already names
// the problem (a restarted daemon records it once).
func (k *Keeper) recorded(ctx context.Context, seq int64, problem string) bool {
	want, err := Canonical(problem)
	if err != nil {
		return false
	}
	found := false
	_ = k.log.ScanEvidence(ctx, seq, 0, func(r Record) bool {
		if r.Kind == KindChainBreak && containsProblem(r.Content, want) {
			found = true
		}
		return !found
	})
	return found
}

func containsProblem(content, want []byte) bool {
	return len(want) > 0 && bytes.Contains(content, want)
}

// Status is /readyz's evidence line (it never makes /readyz fail: a broken
// chain must not stop enforcement).
func (k *Keeper) Status() (ok bool, detail string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	signed := "unsigned checkpoints (ROLEKEEPER_EVIDENCE_KEY not set)"
	if k.signer != nil {
		signed = "signed checkpoints"
	}
	switch {
	case !k.checked:
		return true, "not checked yet; " + signed
	case k.lastErr != nil:
		return false, "could not read the chain: " + k.lastErr.Error()
	case k.last.Problem != nil:
		return false, "BROKEN at " + k.last.Problem.Error() + "; appends continue after the stored head"
	default:
		return true, fmt.Sprintf("intact: %d records, head %d sha256:%.12s; %s", k.last.Records, k.last.Last.Seq, k.last.Last.Hash, signed)
	}
}

// Checkpoint signs (when a key is set) and stores the current head.
func (k *Keeper) Checkpoint(ctx context.Context, reason, note string) (Checkpoint, error) {
	head, err := k.log.EvidenceHead(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	c := k.signer.NewCheckpoint(head, k.now(), reason, note)
	if err := k.log.AddCheckpoint(ctx, c); err != nil {
		return c, err
	}
	return c, nil
}

// CheckpointAt signs and stores a checkpoint of a given head (the last
// record of a week).
func (k *Keeper) CheckpointAt(ctx context.Context, head Head, reason, note string) (Checkpoint, error) {
	c := k.signer.NewCheckpoint(head, k.now(), reason, note)
	return c, k.log.AddCheckpoint(ctx, c)
}

// Scheduled is the hourly job: check the chain, then checkpoint the head.
// A broken chain is still checkpointed (the checkpoint pins what is there
// now; the break is already recorded).
func (k *Keeper) Scheduled(ctx context.Context) error {
	if _, err := k.Check(ctx); err != nil {
		return err
	}
	_, err := k.Checkpoint(ctx, ReasonScheduled, "")
	return err
}

// RolesVersion records a roles.yaml version in force, unless it is the
// last one recorded: hash is the file's SHA-256, at when it took effect.
func (k *Keeper) RolesVersion(ctx context.Context, hash, path string, at time.Time, last string) (bool, error) {
	if hash == last {
		return false, nil
	}
	_, err := k.log.AppendEvidence(ctx, KindRoles, at, map[string]any{"sha256": hash, "path": path, "took_effect_at": Time(at)})
	return err == nil, err
}

// Prune deletes the records timed before cutoff, after a checkpoint at the
// cut (signed when a key is set) that keeps every later record verifiable.
// It returns how many records it deleted.
func (k *Keeper) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	_, last, err := k.log.EvidenceSpan(ctx, cutoff, cutoff)
	if err != nil {
		return 0, err
	}
	if last.Seq == 0 {
		return 0, nil
	}
	var first int64
	if err := k.log.ScanEvidence(ctx, 0, 0, func(r Record) bool { first = r.Seq; return false }); err != nil {
		return 0, err
	}
	if first == 0 || first > last.Seq {
		return 0, nil // already pruned to here
	}
	cut := k.signer.NewCheckpoint(last, k.now(), ReasonPrune, "records up to here deleted by retention (before "+Time(cutoff)+")")
	return k.log.PruneEvidence(ctx, cut)
}
