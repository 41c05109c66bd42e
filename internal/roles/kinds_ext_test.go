package roles_test

// Every rule kind, the older ones (code-review … report) included, is
// declared in package rules, which registers it when linked in: this
// external test file links it into the package's tests, whose golden
// files hold the kinds' settings errors and warnings.
import _ "github.com/reloadly/rolekeeper/internal/rules"
