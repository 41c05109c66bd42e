package roles

import (
	"strings"
	"testing"
)

func TestInvalidateOnPush(t *testing.T) {
	const head = `version: 1
organization: Example
roles:
  lead:
    title: Lead
    responsibilities:
      - text: Reviews code
        enforce:
`
	const tail = `teams:
  core:
people:
  - id: a
    account_id: "712020:00000000-0000-4000-8000-000000000001"
    roles: [lead]
    teams: [core]
  - id: b
    account_id: "712020:00000000-0000-4000-8000-000000000002"
    roles: [lead]
    teams: [core]
`
	org, err := ParseAt("ok.yaml", []byte(head+
		"          code-review: {invalidate_on_push: true}\n"+
		"          path-review: {paths: [\"helm/**\"], invalidate_on_push: false}\n"+tail), judged)
	if err != nil {
		t.Fatal(err)
	}
	if !org.Rules[0].InvalidateOnPush || org.Rules[1].InvalidateOnPush {
		t.Errorf("code-review %v, path-review %v", org.Rules[0].InvalidateOnPush, org.Rules[1].InvalidateOnPush)
	}
	for _, bad := range []string{
		"          code-review: {invalidate_on_push: \"yes\"}\n",
		"          code-review: {invalidate_on_push: 1}\n",
		"          unit-tests: {invalidate_on_push: true}\n",
	} {
		_, err := ParseAt("bad.yaml", []byte(head+bad+tail), judged)
		if err == nil || !strings.Contains(err.Error(), "invalidate_on_push") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
