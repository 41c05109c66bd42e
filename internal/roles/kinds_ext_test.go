package roles_test

// The kinds added since the registry (break-glass, backlog, analysis,
// requirements) are declared in package rules, which registers them when
// linked in: this external test file links it into the package's tests.
import _ "github.com/reloadly/rolekeeper/internal/rules"
