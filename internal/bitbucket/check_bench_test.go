package bitbucket_test

import (
	"testing"

	"github.com/reloadly/rolekeeper/internal/bitbucket"
	"github.com/reloadly/rolekeeper/internal/fixtures"
)

// BenchmarkCheckWebhook runs the intake's check on fixtures of each kind
// it routes: pull request events of 6 and 11 KB, a comment, a commit
// status and a large push.
func BenchmarkCheckWebhook(b *testing.B) {
	for _, name := range []string{
		"pullrequest_approved__go-playground.json",
		"pullrequest_approved__b-arol-o-reviewer.json",
		"pullrequest_comment_created__go-scm.json",
		"repo_commit_status_created__go-scm.json",
		"repo_push__jenkins-bbs-commits.json",
	} {
		body := fixtures.Read(b, "bitbucket/webhooks/"+name)
		key := keyFromFixture(name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := bitbucket.CheckWebhook(key, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
