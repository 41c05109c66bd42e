// Package rolekeeper holds what the binary carries from the repository's
// root: the shipped roles.yaml, used by `rolekeeper serve` without --config.
package rolekeeper

import _ "embed"

// RolesYAML is the repository's roles.yaml, built into the binary.
//
//go:embed roles.yaml
var RolesYAML []byte
