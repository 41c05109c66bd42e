package prflow

import "strings"

// minHash is the shortest abbreviation compared as a commit.
const minHash = 7

// sameCommit reports whether two hashes name the same commit, allowing one
// to be an abbreviation of the other (payloads carry 12 characters, pushes
// and statuses 40).
func sameCommit(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if len(a) < minHash || len(b) < minHash {
		return a != "" && a == b
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a)
}

// longer returns the longer of two hashes of the same commit, or a when they
// name different commits.
func longer(a, b string) string {
	if sameCommit(a, b) && len(b) > len(a) {
		return b
	}
	return a
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
