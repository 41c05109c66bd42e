package replicatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"

	"github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/bitbucket/bitbuckettest"
	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// Repo is the repository pull requests are opened in: team payments owns it
// in the repository's roles.yaml, so each new pull request asks one of its
// two technical leads to review (code-review: reviewers 1).
const Repo = "reloadly/payments-api"

// Author is Ravi Iyer, a back-end engineer of payments in roles.yaml.
var Author = model.Actor{AccountID: "712020:49608dfd-47ea-432f-a459-51aa058fdc18", DisplayName: "Ravi Iyer", Nickname: "ravi"}

// Delivery is one signed webhook delivery, ready to send.
type Delivery struct {
	EventKey  string // X-Event-Key
	UUID      string // X-Request-UUID, the delivery id
	Body      []byte
	Signature string // X-Hub-Signature
	Repo      string // repository it is about
	PR        int    // pull request it is about
}

// AddPeople makes every person of the repository's roles.yaml a known
// Bitbucket user of the fake, as a real workspace's members are
// (Bitbucket refuses reviewers it does not know).
func AddPeople(bb *bitbuckettest.Server) error {
	org, err := roles.Parse("roles.yaml", rolekeeper.RolesYAML)
	if err != nil {
		return fmt.Errorf("roles.yaml: %w", err)
	}
	for _, p := range org.People {
		bb.AddUser(model.Actor{AccountID: p.AccountID, DisplayName: p.Name, Nickname: p.ID})
	}
	return nil
}

// OpenPR opens a pull request in Repo on the fake: a Go change with its
// test, so the unit-tests rule is satisfied and code-review asks one
// technical lead. It returns the pull request id.
func OpenPR(bb *bitbuckettest.Server, n int) int { return OpenPRIn(bb, Repo, n) }

// OpenPRIn is OpenPR in another repository.
func OpenPRIn(bb *bitbuckettest.Server, repo string, n int) int {
	return bb.AddPullRequest(repo, bitbuckettest.PR{
		Title:  fmt.Sprintf("Refund batch %d", n),
		Author: Author,
		Files: []model.ChangedFile{
			{Path: fmt.Sprintf("internal/refund/batch%d.go", n), Status: model.FileAdded},
			{Path: fmt.Sprintf("internal/refund/batch%d_test.go", n), Status: model.FileAdded},
		},
	})
}

// Event renders eventKey for pull request id from the fake's state, signed
// with secret, under a new delivery id.
func Event(bb *bitbuckettest.Server, secret, eventKey string, id int) Delivery {
	return EventIn(bb, secret, eventKey, Repo, id)
}

// EventIn is Event for a pull request of another repository.
func EventIn(bb *bitbuckettest.Server, secret, eventKey, repo string, id int) Delivery {
	body := bb.WebhookBody(eventKey, repo, id, Author)
	return Delivery{EventKey: eventKey, UUID: NewUUID(), Body: body, Signature: bitbuckettest.Sign(secret, body), Repo: repo, PR: id}
}

// NewUUID is a random version-4 UUID in braces, as Bitbucket's
// X-Request-UUID is written.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("{%x-%x-%x-%x-%x}", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Request builds the POST a Bitbucket webhook makes.
func (d Delivery) Request(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Bitbucket-Webhooks/2.0")
	req.Header.Set("X-Event-Key", d.EventKey)
	req.Header.Set("X-Request-UUID", d.UUID)
	req.Header.Set("X-Hub-Signature", d.Signature)
	req.Header.Set("X-Attempt-Number", "1")
	return req, nil
}

// Post sends d to url (the daemon's /webhooks/bitbucket) and returns the
// status code.
func Post(ctx context.Context, c *http.Client, url string, d Delivery) (int, error) {
	req, err := d.Request(ctx, url)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
