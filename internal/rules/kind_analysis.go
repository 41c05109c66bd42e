package rules

import (
	"fmt"
	"strings"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// KindAnalysis: "Performs technical analysis for complex problems". A
// story estimated at or above points, or labelled with one of labels, gets
// an analysis sub-task assigned to a holder of assign_to (default: the
// rule's role) in the team, least loaded and not away, once.
const KindAnalysis roles.Kind = "analysis"

// AnalysisPrefix starts the summary of the analysis sub-task.
const AnalysisPrefix = "Analysis:"

// AnalysisSettings are an analysis rule's settings.
type AnalysisSettings struct {
	IssueTypes []string // default Story
	Points     int      // 1..100, default 8
	Labels     []string // default [complex]
	AssignTo   string   // role id ("" = the rule's role)
}

var analysisKind = KindInfo{
	Kind:   KindAnalysis,
	Doc:    "stories of at least points, or labelled complex, get an analysis sub-task for assign_to",
	Action: "Carry out the analysis sub-task, or record why the story needs none.",
	Spec: &roles.KindSpec{
		Kind:     KindAnalysis,
		Settings: []string{"issue_types", "points", "labels", "assign_to"},
		Decode: func(s *roles.Settings) any {
			return AnalysisSettings{
				IssueTypes: s.List("issue_types", []string{"Story"}, false, "issue type", "like [Story]"),
				Points:     s.Int("points", 8, 1, 100),
				Labels:     s.List("labels", []string{"complex"}, false, "label", "like [complex]"),
				AssignTo:   s.RoleRef("assign_to", ""),
			}
		},
		NeedsHolder: true,
		Effect:      "has nobody to assign analyses to",
	},
	Issue: &IssueKind{
		Types:      func(r *roles.Rule) []string { return settingsOf[AnalysisSettings](r).IssueTypes },
		TaskPrefix: AnalysisPrefix,
		Evaluate:   evaluateAnalysis,
	},
}

// analysisRole is the role an analysis rule assigns its task to.
func analysisRole(r *roles.Rule) string {
	if a := settingsOf[AnalysisSettings](r).AssignTo; a != "" {
		return a
	}
	return r.Role
}

func evaluateAnalysis(c issueCtx, res *IssueRuleResult) {
	is, set := c.snap.Issue, settingsOf[AnalysisSettings](c.rule)
	var why []string
	if !c.snap.StoryPointsField {
		res.Notes = append(res.Notes, "the site has no story-points field: only the labels are checked")
	}
	if is.StoryPoints != nil && set.Points > 0 && *is.StoryPoints >= float64(set.Points) {
		why = append(why, fmt.Sprintf("is estimated at %g points (at least %d)", *is.StoryPoints, set.Points))
	}
	for _, l := range is.Labels {
		if hasFold(set.Labels, l) {
			why = append(why, fmt.Sprintf("is labelled %s", l))
			break
		}
	}
	if len(why) == 0 {
		res.Applies = false
		res.Reason = fmt.Sprintf("%s is not complex (under %d points, none of the labels %s)", is.Key, set.Points, strings.Join(set.Labels, ", "))
		return
	}
	res.AssignRole = analysisRole(c.rule)
	role := c.role
	if res.AssignRole != c.rule.Role {
		role = c.org.Role(res.AssignRole)
	}
	evaluateTaskFor(c.org, c.team, role, res.AssignRole, c.rule, AnalysisPrefix, c.snap, res, c.claimed)
	res.Reason = is.Key + " " + strings.Join(why, " and ") + ": " + res.Reason
}
