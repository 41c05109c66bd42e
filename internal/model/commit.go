package model

import "strings"

// FullCommitLen is the length of a full git commit hash in hex.
const FullCommitLen = 40

// IsFullCommit reports whether s is a full 40-hex commit hash (either case).
func IsFullCommit(s string) bool {
	if len(s) != FullCommitLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// SameFullCommit reports whether a and b name the same commit: both are full
// hashes and equal (without case). A short hash, as webhook payloads and
// pull request resources carry, is never the same as anything: resolve it
// to the full hash through the API first. Two different commits can share
// a 12-hex prefix, so prefix matching lets one commit stand for another.
func SameFullCommit(a, b string) bool {
	return IsFullCommit(a) && IsFullCommit(b) && strings.EqualFold(a, b)
}
