package evidence

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Checkpoint reasons.
const (
	ReasonScheduled    = "scheduled"     // the hourly job
	ReasonWeeklyReport = "weekly_report" // the head when the weekly report was made
	ReasonWeekEnd      = "week_end"      // the last record of a reported week
	ReasonPrune        = "prune"         // the cut of retention: records up to Seq were deleted
	ReasonExport       = "export"        // the last record of an exported bundle
)

// Checkpoint pins the chain's hash at a sequence number at a time, signed
// when a key is configured.
type Checkpoint struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Kind      string `json:"kind,omitempty"` // of the record at Seq, for messages
	Time      string `json:"time"`           // canonical time it was made
	Reason    string `json:"reason"`
	Note      string `json:"note,omitempty"`       // the week of a week_end checkpoint, …
	PublicKey string `json:"public_key,omitempty"` // base64 ed25519 public key; "" unsigned
	Signature string `json:"signature,omitempty"`  // base64 ed25519 signature of Message(); "" unsigned
}

// checkpointDomain separates checkpoint signatures from anything else the
// key might sign.
const checkpointDomain = "rolekeeper evidence checkpoint v1\n"

// Message is what a checkpoint's signature covers: the domain line, then the
// canonical JSON {"hash":…,"note":…,"reason":…,"seq":…,"time":…}.
func (c Checkpoint) Message() []byte {
	b := append([]byte(checkpointDomain), `{"hash":`...)
	b = appendString(b, c.Hash)
	b = append(b, `,"note":`...)
	b = appendString(b, c.Note)
	b = append(b, `,"reason":`...)
	b = appendString(b, c.Reason)
	b = append(b, `,"seq":`...)
	b = fmt.Appendf(b, "%d", c.Seq)
	b = append(b, `,"time":`...)
	b = appendString(b, c.Time)
	return append(b, '}')
}

// Signed reports whether the checkpoint carries a signature.
func (c Checkpoint) Signed() bool { return c.Signature != "" }

// CheckSignature verifies the signature against the checkpoint's own
// public key, and against pinned when given (the key the auditor trusts).
func (c Checkpoint) CheckSignature(pinned ed25519.PublicKey) error {
	if !c.Signed() {
		if pinned != nil {
			return errors.New("unsigned, but a public key was given")
		}
		return nil
	}
	pub, err := ParsePublicKey(c.PublicKey)
	if err != nil {
		return err
	}
	if pinned != nil && !pub.Equal(pinned) {
		return fmt.Errorf("signed by key %s, not the given key %s", Fingerprint(pub), Fingerprint(pinned))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("signature is not base64 ed25519")
	}
	if !ed25519.Verify(pub, c.Message(), sig) {
		return errors.New("signature does not match")
	}
	return nil
}

// Signer signs checkpoints; a nil *Signer leaves them unsigned.
type Signer struct {
	key ed25519.PrivateKey
}

// ParsePrivateKey reads ROLEKEEPER_EVIDENCE_KEY: an ed25519 private key in
// standard base64, either the 32-byte seed or the 64-byte seed+public key
// (what `openssl`-free tools and Go's ed25519.PrivateKey give).
func ParsePrivateKey(s string) (*Signer, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("evidence key: not base64: %w", err)
	}
	switch len(b) {
	case ed25519.SeedSize:
		return &Signer{key: ed25519.NewKeyFromSeed(b)}, nil
	case ed25519.PrivateKeySize:
		k := ed25519.PrivateKey(b)
		if !ed25519.NewKeyFromSeed(k.Seed()).Equal(k) {
			return nil, errors.New("evidence key: public half does not match the seed")
		}
		return &Signer{key: k}, nil
	default:
		return nil, fmt.Errorf("evidence key: %d bytes, want a 32-byte seed or a 64-byte ed25519 private key", len(b))
	}
}

// PublicKey returns the verifying key.
func (s *Signer) PublicKey() ed25519.PublicKey {
	if s == nil {
		return nil
	}
	return s.key.Public().(ed25519.PublicKey)
}

// Sign fills c's PublicKey and Signature; a nil signer leaves c unsigned.
func (s *Signer) Sign(c Checkpoint) Checkpoint {
	if s == nil {
		c.PublicKey, c.Signature = "", ""
		return c
	}
	c.PublicKey = EncodePublicKey(s.PublicKey())
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, c.Message()))
	return c
}

// NewCheckpoint makes the checkpoint of head at now, signed when s is set.
func (s *Signer) NewCheckpoint(head Head, now time.Time, reason, note string) Checkpoint {
	if head.Hash == "" {
		head.Hash = GenesisHash
	}
	return s.Sign(Checkpoint{Seq: head.Seq, Hash: head.Hash, Kind: head.Kind, Time: Time(now), Reason: reason, Note: note})
}

// EncodePublicKey is the public key as `rolekeeper evidence pubkey` prints it.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParsePublicKey reads what EncodePublicKey wrote.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeBase64(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("public key is not base64 ed25519 (32 bytes)")
	}
	return ed25519.PublicKey(b), nil
}

// Fingerprint is a short name of a public key for messages.
func Fingerprint(pub ed25519.PublicKey) string {
	s := EncodePublicKey(pub)
	if len(s) > 12 {
		s = s[:12] + "…"
	}
	return s
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}
