package jsonscan

import (
	"testing"

	"github.com/reloadly/rolekeeper/internal/fixtures"
)

// benchPayload is a real 6 KB pull request event, the size the intake
// sees most.
const benchPayload = "bitbucket/webhooks/pullrequest_approved__go-playground.json"

func BenchmarkValid(b *testing.B) {
	body := fixtures.Read(b, benchPayload)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !Valid(body) {
			b.Fatal("fixture not valid")
		}
	}
}

func BenchmarkEach(b *testing.B) {
	body := fixtures.Read(b, benchPayload)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		n := 0
		if !Each(body, func(k, v []byte) { n++ }) || n == 0 {
			b.Fatal("fixture not an object")
		}
	}
}
