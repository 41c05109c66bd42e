package rules

import (
	"fmt"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// unitTestsKind fails rolekeeper-tests when source changed without a test
// changing with it; a merge is judged on it (merge-tested /
// merge-untested). It asks nobody.
var unitTestsKind = KindInfo{
	Kind:   roles.KindUnitTests,
	Doc:    "source changed without a test changed fails rolekeeper-tests",
	Action: "Add the missing tests, or record on the pull request why none are needed.",
	Spec: &roles.KindSpec{
		Kind:     roles.KindUnitTests,
		Settings: []string{"source_paths", "test_paths"},
		Apply: func(s *roles.Settings, r *roles.Rule) {
			r.SourcePaths = s.Globs("source_paths", DefaultSourcePaths())
			r.TestPaths = s.Globs("test_paths", DefaultTestPaths())
		},
	},
	PR: &PRKind{
		Status:   StatusTests,
		Files:    true,
		Promise:  "source changes come with a test change",
		Merge:    testsAtMerge,
		evaluate: (*evaluation).unitTests,
	},
}

// DefaultSourcePaths are the unit-tests rule's default source-file globs.
func DefaultSourcePaths() []string {
	return []string{"**/*.go", "**/*.java", "**/*.kt", "**/*.ts", "**/*.tsx", "**/*.js", "**/*.jsx",
		"**/*.py", "**/*.rb", "**/*.cs", "**/*.php", "**/*.swift", "**/*.scala"}
}

// DefaultTestPaths are the unit-tests rule's default test-file globs.
func DefaultTestPaths() []string {
	return []string{"**/*_test.go", "**/*Test.java", "**/*Tests.java", "**/*Test.kt",
		"**/*.test.ts", "**/*.test.tsx", "**/*.spec.ts", "**/*.spec.tsx", "**/*.test.js", "**/*.spec.js",
		"**/test_*.py", "**/*_test.py", "**/*_spec.rb", "**/*Tests.cs", "**/*Test.php", "**/*Tests.swift",
		"**/*Spec.scala", "**/test/**", "**/tests/**", "**/__tests__/**", "**/src/test/**"}
}

// unitTests evaluates a unit-tests rule: source changed with no test
// changed fails.
func (ev *evaluation) unitTests(p *plan) RuleResult {
	r := p.rule
	rr := RuleResult{
		RuleID:         r.ID,
		Kind:           string(r.Kind),
		Role:           r.Role,
		Responsibility: r.Responsibility,
		Notes:          append([]string(nil), p.notes...),
	}
	var src, tests []string
	nsrc, ntests := 0, 0
	capacity := min(len(ev.s.ChangedFiles), maxMatchedPaths)
	for _, f := range ev.s.ChangedFiles {
		switch {
		case p.tests.match(f):
			ntests++
			if tests == nil {
				tests = make([]string, 0, capacity)
			}
			if len(tests) < maxMatchedPaths {
				tests = append(tests, f)
			}
		case p.source.match(f):
			nsrc++
			if src == nil {
				src = make([]string, 0, capacity)
			}
			if len(src) < maxMatchedPaths {
				src = append(src, f)
			}
		}
	}
	switch {
	case nsrc == 0:
		rr.Met = true
		rr.Reason = p.label + ": not triggered, no source file changed outside tests"
	case ntests > 0:
		rr.Triggered, rr.Met = true, true
		rr.MatchedPaths = src
		rr.Reason = fmt.Sprintf("%s: %s changed (%s) with %s (%s)", p.label, countNoun(nsrc, "source file"),
			listPaths(src, nsrc), countNoun(ntests, "test file"), listPaths(tests, ntests))
	default:
		rr.Triggered = true
		rr.MatchedPaths = src
		rr.Reason = fmt.Sprintf("%s: %s changed (%s) and no test file", p.label, countNoun(nsrc, "source file"), listPaths(src, nsrc))
		rr.Shortfall = "no test file changed with " + countNoun(nsrc, "source file")
	}
	return rr
}

// testsStatus summarises the unit-tests rules into rolekeeper-tests.
func testsStatus(rs []RuleResult, team string) Status {
	st := Status{Key: StatusTests, State: StateSuccessful}
	applies, triggered := false, false
	var missing []string
	for i := range rs {
		r := &rs[i]
		if statusOf(r.Kind) != StatusTests {
			continue
		}
		applies = true
		if !r.Triggered {
			continue
		}
		triggered = true
		if !r.Met {
			for _, f := range r.MatchedPaths {
				if !containsString(missing, f) {
					missing = append(missing, f)
				}
			}
		}
	}
	switch {
	case !applies:
		st.Description = "no unit-tests rule applies to " + team
	case !triggered:
		st.Description = "no source changes"
	case len(missing) == 0:
		st.Description = "tests changed with the source"
	default:
		st.State = StateFailed
		st.Description = "source changed without tests: " + listPaths(missing, len(missing))
	}
	st.Description = truncate(st.Description, maxDescription)
	return st
}
