package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Record kinds: what a record holds.
const (
	KindDecision        = "decision"         // a decision with its reasons
	KindDecisionOutcome = "decision.outcome" // what the adapters did about it
	KindFinding         = "finding"
	KindGateAsked       = "gate.asked"
	KindGateUpdated     = "gate.updated" // a write that changed no state (notified, follow-up, history)
	KindRoles           = "roles.version"
	KindChainBreak      = "chain.break" // the daemon found the chain broken and kept appending
	// Gate state changes are "gate." + the new state: gate.approved,
	// gate.rejected, gate.expired; a break-glass approval is gate.break_glass.
	KindGateBreakGlass = "gate.break_glass"
)

// GenesisHash is the previous hash of the first record.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one link of the chain.
type Record struct {
	Seq     int64           // 1, 2, … with no gap
	Kind    string          // what it records (Kind* constants)
	Time    string          // canonical time of the fact (Time)
	Content json.RawMessage // canonical JSON of what is recorded
	Prev    string          // Hash of the record Seq-1 (GenesisHash for the first)
	Hash    string          // SHA-256 of Entry(), lower-case hex
}

// Head is the end of the chain: the last record's sequence number and hash
// (0 and GenesisHash for an empty chain).
type Head struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	Kind string `json:"kind,omitempty"`
}

// Genesis is the head of an empty chain.
func Genesis() Head { return Head{Seq: 0, Hash: GenesisHash} }

// Link builds the record that follows head: Seq head.Seq+1, Prev head.Hash,
// its Hash computed. content is canonicalised here.
func Link(head Head, kind string, at time.Time, content any) (Record, error) {
	c, err := Canonical(content)
	if err != nil {
		return Record{}, fmt.Errorf("evidence: %s record: %w", kind, err)
	}
	if head.Hash == "" {
		head.Hash = GenesisHash
	}
	r := Record{Seq: head.Seq + 1, Kind: kind, Time: Time(at), Content: c, Prev: head.Hash}
	r.Hash = r.ComputeHash()
	return r, nil
}

// Entry is what the hash covers: the canonical JSON of the record without
// its hash, {"content":…,"kind":…,"prev":…,"seq":…,"time":…}.
func (r Record) Entry() []byte {
	return r.appendJSON(make([]byte, 0, len(r.Content)+160), false)
}

// ComputeHash is the SHA-256 of Entry in lower-case hex.
func (r Record) ComputeHash() string {
	var buf [512]byte
	sum := sha256.Sum256(r.appendJSON(buf[:0], false))
	return hex.EncodeToString(sum[:])
}

// Head is the head this record makes.
func (r Record) Head() Head { return Head{Seq: r.Seq, Hash: r.Hash, Kind: r.Kind} }

// MarshalLine is the record as one line of records.jsonl: its canonical
// JSON with the hash, {"content":…,"hash":…,"kind":…,"prev":…,"seq":…,"time":…}.
func (r Record) MarshalLine() []byte {
	return r.appendJSON(make([]byte, 0, len(r.Content)+240), true)
}

func (r Record) appendJSON(b []byte, withHash bool) []byte {
	b = append(b, `{"content":`...)
	if len(r.Content) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Content...)
	}
	if withHash {
		b = append(b, `,"hash":`...)
		b = appendString(b, r.Hash)
	}
	b = append(b, `,"kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"prev":`...)
	b = appendString(b, r.Prev)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	b = appendString(b, r.Time)
	return append(b, '}')
}

// appendString appends s as a JSON string: the fast path for the plain
// ASCII of kinds, hashes and times, encoding/json's escaping otherwise.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			var buf bytes.Buffer
			writeString(&buf, s)
			return append(b, buf.Bytes()...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// lineJSON is a records.jsonl line as decoded.
type lineJSON struct {
	Content json.RawMessage `json:"content"`
	Hash    string          `json:"hash"`
	Kind    string          `json:"kind"`
	Prev    string          `json:"prev"`
	Seq     int64           `json:"seq"`
	Time    string          `json:"time"`
}

// ParseLine reads a line MarshalLine wrote. The line must be exactly the
// record's canonical form: a byte changed anywhere either changes a field
// (and the hash check fails) or makes the line non-canonical (refused here).
func ParseLine(line []byte) (Record, error) {
	var l lineJSON
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Record{}, fmt.Errorf("not a record: %w", err)
	}
	r := Record{Seq: l.Seq, Kind: l.Kind, Time: l.Time, Content: l.Content, Prev: l.Prev, Hash: l.Hash}
	if !bytes.Equal(r.MarshalLine(), line) {
		return r, fmt.Errorf("record %d is not in canonical form", r.Seq)
	}
	return r, nil
}
