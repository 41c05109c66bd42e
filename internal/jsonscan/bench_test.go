package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/reloadly/rolekeeper/internal/fixtures"
)

// benchPayload is a real 6 KB pull request event, the size the intake
// sees most. The fixture is indented (a quarter of it white space), as
// Atlassian documents it; deliveries may come compact, so both are run.
const benchPayload = "bitbucket/webhooks/pullrequest_approved__go-playground.json"

func benchBodies(b *testing.B) map[string][]byte {
	body := fixtures.Read(b, benchPayload)
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		b.Fatal(err)
	}
	return map[string][]byte{"indented": body, "compact": compact.Bytes()}
}

func BenchmarkValid(b *testing.B) {
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !Valid(body) {
					b.Fatal("fixture not valid")
				}
			}
		})
	}
}

func BenchmarkEach(b *testing.B) {
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				n := 0
				if !Each(body, func(k, v []byte) { n++ }) || n == 0 {
					b.Fatal("fixture not an object")
				}
			}
		})
	}
}
