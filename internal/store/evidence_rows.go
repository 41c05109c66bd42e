package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/evidence"
)

// RowProblem is a stored row (what the reports read) that no longer
// matches the record that recorded it: changed in the database behind the
// chain's back, while the chain itself may be intact.
type RowProblem struct {
	Row  string // "decision 12", "gate 01J…", "finding merge-unapproved:…"
	Seq  int64  // the record it should match (0: none)
	Kind string // that record's kind
	What string
}

func (p *RowProblem) Error() string {
	if p.Seq == 0 {
		return fmt.Sprintf("%s: %s", p.Row, p.What)
	}
	return fmt.Sprintf("%s: %s (record %d, %s)", p.Row, p.What, p.Seq, p.Kind)
}

// rowRecord is what the chain says a row must be: the digest of the
// content of its latest record.
type rowRecord struct {
	seq  int64
	kind string
	sum  [sha256.Size]byte
}

// CheckRows compares the decisions, gates and findings stored now with the
// latest record of each in the chain, and returns the problem of the
// earliest record a row no longer matches (nil when every row matches). A
// row with no record is reported when it is newer than the chain's first
// record of its kind (older rows predate the chain or its retention cut).
// Rows deleted from the tables are not reported: retention deletes them.
func CheckRows(ctx context.Context, s Store) (*RowProblem, error) {
	decisions := map[int64]rowRecord{}
	outcomes := map[int64]string{}
	gates := map[string]rowRecord{}
	findings := map[string]rowRecord{}
	var firstDecision int64
	var firstGate, firstFinding time.Time // times of the first records
	var perr error
	err := s.ScanEvidence(ctx, 0, 0, func(r evidence.Record) bool {
		var c map[string]any
		dec := json.NewDecoder(bytes.NewReader(r.Content))
		dec.UseNumber()
		if dec.Decode(&c) != nil {
			return true // the chain check names a record whose content does not parse
		}
		switch {
		case r.Kind == evidence.KindDecision:
			id := number(c["id"])
			outcomes[id], _ = c["outcome"].(string)
			c["outcome"] = ""
			sum, err := digest(c)
			if err != nil {
				perr = err
				return false
			}
			decisions[id] = rowRecord{r.Seq, r.Kind, sum}
			if firstDecision == 0 || id < firstDecision {
				firstDecision = id
			}
		case r.Kind == evidence.KindDecisionOutcome:
			outcomes[number(c["decision_id"])], _ = c["outcome"].(string)
		case strings.HasPrefix(r.Kind, "gate."):
			id, _ := c["id"].(string)
			gates[id] = rowRecord{r.Seq, r.Kind, sha256.Sum256(r.Content)}
			if t, err := evidence.ParseTime(r.Time); err == nil && (firstGate.IsZero() || t.Before(firstGate)) {
				firstGate = t
			}
		case r.Kind == evidence.KindFinding:
			key, _ := c["key"].(string)
			findings[key] = rowRecord{r.Seq, r.Kind, sha256.Sum256(r.Content)}
			if t, err := evidence.ParseTime(r.Time); err == nil && (firstFinding.IsZero() || t.Before(firstFinding)) {
				firstFinding = t
			}
		}
		return true
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}

	var first *RowProblem
	note := func(p *RowProblem) {
		if first == nil || (p.Seq != 0 && (first.Seq == 0 || p.Seq < first.Seq)) {
			first = p
		}
	}
	changed := "the stored row differs from its last record (changed in the database after it was recorded)"

	ds, err := s.ListDecisions(ctx, DecisionFilter{})
	if err != nil {
		return nil, err
	}
	for i := range ds {
		d := &ds[i]
		row := fmt.Sprintf("decision %d", d.ID)
		rec, ok := decisions[d.ID]
		if !ok {
			if firstDecision != 0 && d.ID > firstDecision {
				note(&RowProblem{Row: row, What: "no record in the chain (inserted behind its back)"})
			}
			continue
		}
		c := DecisionEvidence(d).(map[string]any)
		c["outcome"] = ""
		sum, err := digest(c)
		if err != nil {
			return nil, err
		}
		switch {
		case sum != rec.sum:
			note(&RowProblem{Row: row, Seq: rec.seq, Kind: rec.kind, What: changed})
		case d.Outcome != outcomes[d.ID]:
			note(&RowProblem{Row: row, Seq: rec.seq, Kind: rec.kind, What: fmt.Sprintf("its outcome %q is not the recorded %q (changed in the database)", d.Outcome, outcomes[d.ID])})
		}
	}

	gs, err := s.ListGates(ctx, GateFilter{})
	if err != nil {
		return nil, err
	}
	for i := range gs {
		g := &gs[i]
		row := "gate " + g.ID
		rec, ok := gates[g.ID]
		if !ok {
			if !firstGate.IsZero() && g.CreatedAt.After(firstGate) {
				note(&RowProblem{Row: row, What: "no record in the chain (inserted behind its back)"})
			}
			continue
		}
		sum, err := digest(GateEvidence(g))
		if err != nil {
			return nil, err
		}
		if sum != rec.sum {
			note(&RowProblem{Row: row, Seq: rec.seq, Kind: rec.kind, What: changed})
		}
	}

	fs, err := s.ListFindings(ctx, FindingFilter{})
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		row := "finding " + f.Key
		rec, ok := findings[f.Key]
		if !ok {
			if !firstFinding.IsZero() && FindingEvidenceTime(f).After(firstFinding) {
				note(&RowProblem{Row: row, What: "no record in the chain (inserted behind its back)"})
			}
			continue
		}
		sum, err := digest(FindingEvidence(f))
		if err != nil {
			return nil, err
		}
		if sum != rec.sum {
			note(&RowProblem{Row: row, Seq: rec.seq, Kind: rec.kind, What: changed})
		}
	}
	return first, nil
}

func digest(v any) ([sha256.Size]byte, error) {
	b, err := evidence.Canonical(v)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(b), nil
}

func number(v any) int64 {
	n, _ := v.(json.Number)
	i, _ := n.Int64()
	return i
}
