package evidence

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
)

// Problem is the first thing found wrong, named by the record it concerns.
type Problem struct {
	Seq  int64
	Kind string // "" when the record is missing
	File string // a bundle file the problem is in, when it is not a record's
	What string
}

func (p *Problem) Error() string {
	if p.File != "" {
		return p.File + ": " + p.What
	}
	if p.Kind == "" {
		return fmt.Sprintf("record %d: %s", p.Seq, p.What)
	}
	return fmt.Sprintf("record %d (%s): %s", p.Seq, p.Kind, p.What)
}

// Result is what a verification found.
type Result struct {
	Records     int64    // records checked
	First       int64    // sequence number of the first record (0: none)
	Start       Head     // what the first record had to follow (genesis or a checkpoint at a cut)
	Last        Head     // the last record checked
	Checkpoints int      // checkpoints checked
	Signed      int      // of which signed (and valid, when Problem is nil)
	Keys        []string // the public keys the signed checkpoints name, first seen first
	Problem     *Problem
}

// OK reports whether the chain is intact.
func (r Result) OK() bool { return r.Problem == nil }

// Verifier checks records fed in sequence order, stopping at the first
// problem. Use NewVerifier, Add every record, then Finish.
type Verifier struct {
	start    *Head // nil: derived from the first record
	head     *Head // the stored head, when there is one
	pinned   ed25519.PublicKey
	cps      map[int64][]Checkpoint
	all      []Checkpoint
	prev     Head
	res      Result
	problem  *Problem
	cpFailed *Problem
	buf      []byte // reused for each record's entry
}

// VerifyOptions describe what the records must agree with.
type VerifyOptions struct {
	// Start is the head the first record must follow. Nil: genesis when the
	// first record is 1, else a checkpoint exactly at the cut before it
	// (retention deleted the records up to it).
	Start *Head
	// Head is the stored head the last record must equal (nil: not checked).
	Head *Head
	// Checkpoints are checked against the records at their sequence numbers
	// and their signatures verified.
	Checkpoints []Checkpoint
	// PublicKey, when set, is the only key a signature may come from.
	PublicKey ed25519.PublicKey
}

// NewVerifier starts a verification.
func NewVerifier(opt VerifyOptions) *Verifier {
	v := &Verifier{start: opt.Start, head: opt.Head, pinned: opt.PublicKey, cps: make(map[int64][]Checkpoint), all: opt.Checkpoints}
	for _, c := range opt.Checkpoints {
		v.cps[c.Seq] = append(v.cps[c.Seq], c)
		v.res.Checkpoints++
		if c.Signed() {
			v.res.Signed++
			if !slices.Contains(v.res.Keys, c.PublicKey) {
				v.res.Keys = append(v.res.Keys, c.PublicKey)
			}
		}
		if err := c.CheckSignature(opt.PublicKey); err != nil && (v.cpFailed == nil || c.Seq < v.cpFailed.Seq) {
			v.cpFailed = &Problem{Seq: c.Seq, Kind: c.Kind, What: fmt.Sprintf("checkpoint (%s at %s): %v", c.Reason, c.Time, err)}
		}
	}
	return v
}

// Add checks the next record; it returns false once a problem was found
// (the caller may stop reading).
func (v *Verifier) Add(r Record) bool {
	if v.problem != nil {
		return false
	}
	if v.res.Records == 0 {
		v.res.First = r.Seq
		switch {
		case v.start != nil:
			v.prev = *v.start
		case r.Seq == 1:
			v.prev = Genesis()
		default:
			if cut, ok := v.cutAt(r.Seq - 1); ok {
				v.prev = cut
			} else {
				v.fail(r.Seq-1, "", fmt.Sprintf("missing: the chain starts at record %d (%s) and no checkpoint marks a retention cut at %d (records deleted)", r.Seq, r.Kind, r.Seq-1))
				return false
			}
		}
		v.res.Start = v.prev
	}
	switch {
	case r.Seq > v.prev.Seq+1:
		v.fail(v.prev.Seq+1, "", fmt.Sprintf("missing: record %d (%s) follows record %d (deleted)", r.Seq, r.Kind, v.prev.Seq))
		return false
	case r.Seq <= v.prev.Seq:
		v.fail(r.Seq, r.Kind, fmt.Sprintf("out of order: comes after record %d", v.prev.Seq))
		return false
	}
	if v.head != nil && r.Seq > v.head.Seq {
		v.fail(r.Seq, r.Kind, fmt.Sprintf("after the stored head %d (inserted, or the head was rolled back)", v.head.Seq))
		return false
	}
	v.buf = r.appendJSON(v.buf[:0], false)
	sum := sha256.Sum256(v.buf)
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	if string(hexSum[:]) != r.Hash {
		v.fail(r.Seq, r.Kind, fmt.Sprintf("its content, kind, time or sequence number no longer match its hash (edited): stored %.12s…, computed %.12s…", r.Hash, hexSum[:]))
		return false
	}
	if r.Prev != v.prev.Hash {
		v.fail(r.Seq, r.Kind, fmt.Sprintf("its previous hash %.12s… is not the hash %.12s… of record %d (a record was replaced, inserted or reordered before it)", r.Prev, v.prev.Hash, v.prev.Seq))
		return false
	}
	for _, c := range v.cps[r.Seq] {
		if c.Hash != r.Hash {
			v.fail(r.Seq, r.Kind, fmt.Sprintf("does not match the checkpoint made at %s (%s): the chain was rewritten after it", c.Time, c.Reason))
			return false
		}
	}
	v.prev = r.Head()
	v.res.Records++
	v.res.Last = v.prev
	return true
}

// cutAt finds a checkpoint exactly at seq to start from.
func (v *Verifier) cutAt(seq int64) (Head, bool) {
	for _, c := range v.cps[seq] {
		return Head{Seq: c.Seq, Hash: c.Hash, Kind: c.Kind}, true
	}
	return Head{}, false
}

func (v *Verifier) fail(seq int64, kind, what string) {
	if v.problem == nil {
		v.problem = &Problem{Seq: seq, Kind: kind, What: what}
	}
}

// Finish completes the verification: the stored head, checkpoints beyond
// the last record, and signatures. The first problem by sequence number is
// the one reported.
func (v *Verifier) Finish() Result {
	if v.problem == nil && v.res.Records == 0 && v.start != nil {
		v.prev, v.res.Start = *v.start, *v.start
		v.res.Last = v.prev
	}
	if v.problem == nil && v.head != nil {
		switch {
		case v.head.Seq > v.prev.Seq:
			v.fail(v.prev.Seq+1, v.head.Kind, fmt.Sprintf("missing: the stored head is record %d but the chain ends at %d (records deleted from the end)", v.head.Seq, v.prev.Seq))
		case v.head.Hash != v.prev.Hash:
			v.fail(v.prev.Seq, v.prev.Kind, fmt.Sprintf("the stored head's hash %.12s… differs from the record's %.12s…", v.head.Hash, v.prev.Hash))
		}
	}
	if v.problem == nil {
		seqs := make([]int64, 0, len(v.cps))
		for s := range v.cps {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, s := range seqs {
			if s > v.prev.Seq {
				c := v.cps[s][0]
				v.fail(v.prev.Seq+1, "", fmt.Sprintf("missing: a checkpoint made at %s (%s) covers record %d but the chain ends at %d (records deleted from the end)", c.Time, c.Reason, s, v.prev.Seq))
				break
			}
		}
	}
	v.res.Problem = v.problem
	if v.cpFailed != nil && (v.res.Problem == nil || v.cpFailed.Seq < v.res.Problem.Seq) {
		v.res.Problem = v.cpFailed
	}
	return v.res
}
