package rules

// Asking is what the workflow knows of who is and was asked on a pull
// request.
type Asking struct {
	Author    string   // never asked
	Reviewers []string // account ids on the pull request now
	Asked     []string // account ids rolekeeper asked before
	Draft     bool
	// AssignDrafts asks for reviewers on draft pull requests too.
	AssignDrafts bool
}

// ToAsk lists the decision's picks to add as reviewers: only those not on
// the pull request yet, never the author, nobody on a draft (unless drafts
// are assigned), and never twice: someone rolekeeper asked before who is
// no longer on the pull request was removed by someone, and rolekeeper
// does not fight people. again lists those left out for that reason.
func ToAsk(d Decision, a Asking) (add []Pick, again []string) {
	if a.Draft && !a.AssignDrafts {
		return nil, nil
	}
	for _, pk := range d.Request {
		id := pk.AccountID
		switch {
		case id == "" || id == a.Author || containsString(a.Reviewers, id):
			continue
		case containsString(a.Asked, id):
			again = append(again, id)
			continue
		}
		add = append(add, pk)
	}
	return add, again
}

// CommentDue says whether a first explaining comment is due: someone is
// asked or a triggered rule is unmet. A pull request every rule is happy
// with, and a draft nobody is asked on yet, get none (the statuses say it
// all).
func CommentDue(d Decision, a Asking) bool {
	if a.Draft && !a.AssignDrafts {
		return false
	}
	if len(d.Request) > 0 {
		return true
	}
	for _, r := range d.Rules {
		if r.Triggered && !r.Met {
			return true
		}
	}
	return false
}
