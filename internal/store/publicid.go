package store

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// PublicIDBytes is the number of random bytes in a decision's public id:
// 128 bits, so that the public pages cannot be walked or guessed.
const PublicIDBytes = 16

// NewPublicID returns a fresh public id for a decision: PublicIDBytes from
// crypto/rand in lower-case hex (32 characters). Stores call it in
// SaveDecision; migration 0003 gives older decisions ids of the same form.
func NewPublicID() string {
	var b [PublicIDBytes]byte
	// crypto/rand.Read never returns an error (it panics if the system
	// has no randomness, which is the right answer for a secret).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidPublicID reports whether s has the form NewPublicID gives. A
// numeric decision id never has it, so it is never served.
func ValidPublicID(s string) bool {
	if len(s) != 2*PublicIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DecisionURL is the public page of a decision, the link posted with
// statuses and comments: publicURL/decisions/{public id}. It is the one
// place such links are built (server, prflow and gate use it); a decision
// without a public id has no page, and gets "".
func DecisionURL(publicURL, publicID string) string {
	if publicID == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/decisions/" + publicID
}

// GateURL is the public page of a deployment gate, reached through the
// public id of one of its decisions (a gate's own id is shorter than a
// secret): the gate as it is now.
func GateURL(publicURL, decisionPublicID string) string {
	if decisionPublicID == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/gates/" + decisionPublicID
}
