package evidence

import (
	"context"
	"crypto/ed25519"
	"time"
)

// Source is what verification reads of a store.
type Source interface {
	EvidenceHead(ctx context.Context) (Head, error)
	ScanEvidence(ctx context.Context, from, to int64, fn func(Record) bool) error
	ListCheckpoints(ctx context.Context) ([]Checkpoint, error)
}

// VerifySource re-hashes the whole chain in src and checks every
// checkpoint (signatures against pinned when given). An error means the
// store could not be read; a broken chain is a Result with a Problem.
func VerifySource(ctx context.Context, src Source, pinned ed25519.PublicKey) (Result, error) {
	head, err := src.EvidenceHead(ctx)
	if err != nil {
		return Result{}, err
	}
	cps, err := src.ListCheckpoints(ctx)
	if err != nil {
		return Result{}, err
	}
	v := NewVerifier(VerifyOptions{Head: &head, Checkpoints: cps, PublicKey: pinned})
	if err := src.ScanEvidence(ctx, 0, 0, v.Add); err != nil {
		return Result{}, err
	}
	return v.Finish(), nil
}

// Log is what the daemon's keeper needs of the store.
type Log interface {
	Source
	AppendEvidence(ctx context.Context, kind string, at time.Time, content any) (Record, error)
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	EvidenceSpan(ctx context.Context, since, until time.Time) (before, last Head, err error)
	PruneEvidence(ctx context.Context, cut Checkpoint) (int64, error)
}
