package replicatest

import (
	"github.com/reloadly/rolekeeper/internal/store/pgtest"
)

// DefaultPostgresDSN is the server CI starts (trust auth); the environment
// variable ROLEKEEPER_TEST_POSTGRES_DSN overrides it, as for the store's
// own tests. Tests reach it through pgtest, which skips them without a
// server (fails with ROLEKEEPER_REQUIRE_POSTGRES=1).
const DefaultPostgresDSN = pgtest.DefaultDSN

// PostgresDSN is the base DSN tests and tools use.
func PostgresDSN() string { return pgtest.BaseDSN() }

// Schema is a schema of its own in a shared database.
type Schema = pgtest.Schema

// NewSchema creates a uniquely named schema (prefix + random hex) and
// returns its DSN. base must be a postgres:// URL.
var NewSchema = pgtest.NewSchema
