// Package rolekeeper holds what the binary carries from the repository's
// root: the shipped roles.yaml, used by `rolekeeper serve` without --config.
package rolekeeper

import (
	_ "embed"

	// Every rule kind is declared in package rules and registers itself
	// (its settings) with package roles: whoever reads RolesYAML can load
	// it.
	_ "github.com/reloadly/rolekeeper/internal/rules"
)

// RolesYAML is the repository's roles.yaml, built into the binary.
//
//go:embed roles.yaml
var RolesYAML []byte
