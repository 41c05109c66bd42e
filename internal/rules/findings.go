package rules

import "strings"

// Topics of findings whose name is not a kind's: a merge is judged on the
// approvals and on the tests, held or violated; a release on its test
// plans; a deployment on its gate.
const (
	TopicMergeUnapproved = "merge-unapproved"
	TopicMergeApproved   = "merge-approved"
	TopicMergeUntested   = "merge-untested"
	TopicMergeTested     = "merge-tested"
	TopicDeploy          = "deploy"
	TopicTestPlanNotDone = "test-plan-not-done"
)

// FindingKey is the one key scheme of findings: "<topic>:<subject>", the
// subject's parts joined with ":". The topic is the kind's name (backlog,
// story-points, break-glass) or the verdict of a check (merge-unapproved);
// the subject names what was judged ("ws/slug#12", "PAY-7", a gate id,
// "ws/slug:{deployment uuid}", "<version id>:PAY-7"). A subject is a
// finding of a topic once, however often it is evaluated: the store adds a
// key once. Every key rolekeeper ever stored has this shape, so stored
// findings keep their keys:
//
//	merge-unapproved:ws/slug#12   merge-approved:…  merge-untested:…  merge-tested:…
//	deploy:ws/slug:{uuid}         break-glass:<gate id>
//	story-points:PAY-7            test-plan-not-done:<version id>:PAY-7
//	backlog:PAY-7                 analysis:…  requirements:PAY-7
func FindingKey(topic string, subject ...string) string {
	return topic + ":" + strings.Join(subject, ":")
}

// FindingTopic is the topic of a finding key ("merge-unapproved" of
// "merge-unapproved:ws/slug#12").
func FindingTopic(key string) string {
	topic, _, _ := strings.Cut(key, ":")
	return topic
}
