package rules

import "github.com/reloadly/rolekeeper/internal/roles"

// reportKind: people of the role receive the weekly report (package
// report builds it), filed in the Jira project when the rule names one.
// It applies across the organisation, so it takes no teams.
var reportKind = KindInfo{
	Kind: roles.KindReport,
	Doc:  "people of the role receive the weekly report",
	Spec: &roles.KindSpec{
		Kind:     roles.KindReport,
		Settings: []string{"project"},
		OrgOnly:  true,
		Apply:    func(s *roles.Settings, r *roles.Rule) { r.Project = s.ProjectKey("project", "") },
		// Nobody to send it to is a warning, not an error.
		NeedsHolder: true,
		Effect:      "has nobody to send the weekly report to",
	},
}
