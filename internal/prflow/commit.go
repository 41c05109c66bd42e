package prflow

import "github.com/reloadly/rolekeeper/internal/model"

// sameCommit reports whether two hashes name the same head of one pull
// request, allowing one to be Bitbucket's abbreviation (12 hex) of the
// other (payloads carry 12 characters, pushes and statuses 40). Only for
// hashes of the same pull request (model.SameCommit); matching a commit to
// pull requests is by the full hash (store.PRsByCommit).
func sameCommit(a, b string) bool { return model.SameCommit(a, b) }

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
