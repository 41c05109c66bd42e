package gate

import (
	"time"

	"github.com/reloadly/rolekeeper/internal/model"
)

// INTERIM until the bitbucket client's commits and activity land: the
// shapes the gate reads.

// Commit is one commit of a pull request.
type Commit struct {
	Hash      string
	Author    model.Actor // AccountID only when Bitbucket maps the author
	AuthorRaw string
}

// Activity is one dated entry of a pull request's activity.
type Activity struct {
	Kind  string
	User  model.Actor
	At    time.Time
	State model.PRState
}

const (
	activityApproval = "approval"
	activityUpdate   = "update"
)
