package rules

import (
	"fmt"
	"regexp"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// KindRequirements: engineers "Create and define product requirements for
// each user story". A story in progress (status category "indeterminate")
// whose description holds no acceptance criteria (acceptance_pattern) is a
// finding, and gets one comment.
const KindRequirements roles.Kind = "requirements"

// DefaultAcceptancePattern finds acceptance criteria: a heading or line
// "Acceptance criteria", or a Given … When … Then scenario.
const DefaultAcceptancePattern = `(?is)\bacceptance criteria\b|\bgiven\b.+?\bwhen\b.+?\bthen\b`

// RequirementsSettings are a requirements rule's settings.
type RequirementsSettings struct {
	IssueTypes        []string // default Story
	AcceptancePattern string   // regular expression, Go syntax
}

var requirementsKind = KindInfo{
	Kind:   KindRequirements,
	Doc:    "stories in progress without acceptance criteria (acceptance_pattern) are flagged",
	Action: "Write the acceptance criteria into the story.",
	Spec: &roles.KindSpec{
		Kind:     KindRequirements,
		Settings: []string{"issue_types", "acceptance_pattern"},
		Decode: func(s *roles.Settings) any {
			return RequirementsSettings{
				IssueTypes:        s.List("issue_types", []string{"Story"}, false, "issue type", "like [Story]"),
				AcceptancePattern: s.Regexp("acceptance_pattern", DefaultAcceptancePattern),
			}
		},
	},
	Issue: &IssueKind{
		Types:    func(r *roles.Rule) []string { return settingsOf[RequirementsSettings](r).IssueTypes },
		Marker:   "(rolekeeper: requirements)",
		Evaluate: evaluateRequirements,
	},
}

func evaluateRequirements(c issueCtx, res *IssueRuleResult) {
	is, set := c.snap.Issue, settingsOf[RequirementsSettings](c.rule)
	if is.StatusCategory != "indeterminate" {
		res.Applies = false
		res.Reason = fmt.Sprintf("%s is not in progress (%s)", is.Key, orDefault(is.Status, "status unknown"))
		return
	}
	pattern := orDefault(set.AcceptancePattern, DefaultAcceptancePattern)
	re, err := regexp.Compile(pattern)
	if err != nil { // validated when loading; a hand-built rule may not be
		res.Notes = append(res.Notes, "acceptance_pattern does not compile: "+err.Error())
		return
	}
	if re.MatchString(is.Description) {
		res.Reason = is.Key + " is in progress with acceptance criteria"
		return
	}
	res.Violation, res.FindingKey = true, FindingKey(string(KindRequirements), is.Key)
	res.Reason = fmt.Sprintf("%s is in progress (%s) without acceptance criteria (%s: %q)", is.Key, orDefault(is.Status, "in progress"), res.RoleTitle, c.rule.Responsibility)
	res.Comment = fmt.Sprintf("%s is in progress without acceptance criteria in its description.\n\n"+
		"Defining the requirements of each user story is the responsibility of the %s. "+
		"Please add them (\"Acceptance criteria\", or Given … When … Then); this is listed in the weekly report.", is.Key, res.RoleTitle)
}
