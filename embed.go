// Package rolekeeper holds what the binary carries from the repository's
// root: the shipped roles.yaml, used by `rolekeeper serve` without --config.
package rolekeeper

import (
	_ "embed"

	// The rule kinds declared in package rules (break-glass, backlog,
	// analysis, requirements) register themselves with package roles:
	// whoever reads RolesYAML can load them.
	_ "github.com/reloadly/rolekeeper/internal/rules"
)

// RolesYAML is the repository's roles.yaml, built into the binary.
//
//go:embed roles.yaml
var RolesYAML []byte
