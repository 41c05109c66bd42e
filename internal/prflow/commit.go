package prflow

import "github.com/reloadly/rolekeeper/internal/model"

// longer returns the longer of two hashes of the same commit, or a when they
// name different commits.
func longer(a, b string) string {
	if model.SameCommit(a, b) && len(b) > len(a) {
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
