package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// ChooseOptions tune Choose. The zero value picks the least loaded people
// with nobody excluded and nobody kept.
type ChooseOptions struct {
	// Exclude lists account ids never picked (the author of the change).
	Exclude []string
	// ExcludeWhy completes "<name> ..." in notes about excluded people, e.g.
	// "is the author of the pull request". Default "is excluded".
	ExcludeWhy string
	// ExcludeReasons gives the reason of one excluded account id where it
	// differs from ExcludeWhy.
	ExcludeReasons map[string]string

	// Keep lists account ids already assigned (current reviewers): an
	// eligible one is kept before anyone new is asked (sticky), Kept=true.
	Keep []string

	// Prefer lists account ids already asked for something else in the same
	// decision: after Keep, an eligible one is reused before anyone new is
	// asked, so one person may answer for several rules. Kept stays false.
	Prefer []string
	// PreferWhy is added to the reason of a preferred pick, e.g. "already
	// asked for another rule of this pull request".
	PreferWhy string

	// Load is the number of open review requests per account id.
	Load map[string]int
	// LoadNoun names what Load counts in reasons ("fewest <noun> (2)");
	// default "open reviews".
	LoadNoun string
	// Seed breaks ties between equally loaded people: the FNV-1a hash of
	// Seed followed by the account id orders them, so the same pull request
	// always gets the same answer while different ones spread.
	Seed string
	// Now decides who is away.
	Now time.Time
	// Why is the phrase saying why these people are candidates, e.g.
	// "technical lead of team checkout".
	Why string
}

// Choose picks up to n people among the candidates: never an excluded
// person, never someone away at opt.Now, never a person without an account
// id; eligible kept people first, then preferred ones, then the least loaded
// (ties broken by the seeded hash). Every pick has a reason. Notes say who
// is away and, when fewer than n could be picked, who is missing and why.
// The same input always gives the same output.
func Choose(candidates []*roles.Person, n int, opt ChooseOptions) (picks []Pick, notes []string) {
	return choose(candidates, n, &opt, func(id string) int { return opt.Load[id] })
}

type candidate struct {
	p     *roles.Person
	load  int
	hash  uint64
	taken bool
}

// choose is Choose with the load behind a function, so the engine can add
// the picks of the decision under way without copying the load map.
func choose(cands []*roles.Person, n int, opt *ChooseOptions, load func(string) int) (picks []Pick, notes []string) {
	var buf [16]candidate
	eligible := buf[:0]
	var missing []string
	for i, p := range cands {
		if p == nil || seenBefore(cands[:i], p) {
			continue
		}
		name := p.DisplayName()
		if p.AccountID == "" {
			m := name + " has no account_id in roles.yaml"
			notes = append(notes, m)
			missing = append(missing, m)
			continue
		}
		if containsString(opt.Exclude, p.AccountID) {
			why := opt.ExcludeReasons[p.AccountID]
			if why == "" {
				why = opt.ExcludeWhy
			}
			if why == "" {
				why = "is excluded"
			}
			missing = append(missing, name+" "+why)
			continue
		}
		if away, until := p.AwayAt(opt.Now); away {
			m := name + " is away until " + FormatDay(until, opt.Now)
			notes = append(notes, m)
			missing = append(missing, m)
			continue
		}
		eligible = append(eligible, candidate{p: p, load: load(p.AccountID), hash: seededHash(opt.Seed, p.AccountID)})
	}
	if n <= 0 {
		return nil, notes
	}
	picks = make([]Pick, 0, min(n, len(eligible)))

	// Sticky first, then reuse, in the order given.
	for _, id := range opt.Keep {
		if len(picks) == n {
			break
		}
		if c := findCandidate(eligible, id); c != nil {
			c.taken = true
			picks = append(picks, newPick(c.p, true, "kept", join(", ", "already a reviewer", opt.Why)))
		}
	}
	for _, id := range opt.Prefer {
		if len(picks) == n {
			break
		}
		if c := findCandidate(eligible, id); c != nil {
			c.taken = true
			picks = append(picks, newPick(c.p, false, "asked", join(", ", opt.Why, opt.PreferWhy)))
		}
	}

	if len(picks) < n {
		var restBuf [16]*candidate
		rest := restBuf[:0]
		for i := range eligible {
			if !eligible[i].taken {
				rest = append(rest, &eligible[i])
			}
		}
		slices.SortFunc(rest, func(a, b *candidate) int {
			if c := cmp.Compare(a.load, b.load); c != 0 {
				return c
			}
			if c := cmp.Compare(a.hash, b.hash); c != 0 {
				return c
			}
			return strings.Compare(a.p.AccountID, b.p.AccountID)
		})
		take := min(n-len(picks), len(rest))
		for _, c := range rest[:take] {
			c.taken = true
			load := "fewest " + orDefault(opt.LoadNoun, "open reviews") + " (" + strconv.Itoa(c.load)
			// A tie with someone left out is broken by the hash: say so.
			if take < len(rest) && rest[take].load == c.load {
				load += ", tie broken by a hash of " + orDefault(opt.Seed, "the seed")
			}
			load += ")"
			picks = append(picks, newPick(c.p, false, "asked", join(", ", opt.Why, load)))
		}
	}

	if len(picks) < n {
		why := "nobody else holds the role"
		if len(cands) == 0 {
			why = "nobody holds the role"
		}
		if len(missing) > 0 {
			why = strings.Join(missing, "; ")
		}
		what := "people needed"
		if opt.Why != "" {
			what += " (" + opt.Why + ")"
		}
		notes = append(notes, fmt.Sprintf("found %d of %d %s: %s", len(picks), n, what, why))
	}
	return picks, notes
}

func newPick(p *roles.Person, kept bool, verb, why string) Pick {
	reason := verb + " " + p.DisplayName()
	if why != "" {
		reason += ": " + why
	}
	return Pick{AccountID: p.AccountID, Person: p.ID, Name: p.DisplayName(), Kept: kept, Reason: reason}
}

func findCandidate(cs []candidate, accountID string) *candidate {
	for i := range cs {
		if !cs[i].taken && cs[i].p.AccountID == accountID {
			return &cs[i]
		}
	}
	return nil
}

// seenBefore reports whether the same person (pointer or account id)
// appears earlier in the list, so duplicates count once.
func seenBefore(earlier []*roles.Person, p *roles.Person) bool {
	for _, q := range earlier {
		if q == p || (q != nil && p.AccountID != "" && q.AccountID == p.AccountID) {
			return true
		}
	}
	return false
}

// seededHash is 64-bit FNV-1a over seed then accountID, inline so that
// ranking allocates nothing.
func seededHash(seed, accountID string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(seed); i++ {
		h ^= uint64(seed[i])
		h *= prime
	}
	for i := 0; i < len(accountID); i++ {
		h ^= uint64(accountID[i])
		h *= prime
	}
	return h
}

// FormatDay renders a calendar day as "2 Jan", or "2 Jan 2027" when its year
// differs from now's.
func FormatDay(day, now time.Time) string {
	day = day.UTC()
	if day.Year() != now.UTC().Year() {
		return day.Format("2 Jan 2006")
	}
	return day.Format("2 Jan")
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// join joins the non-empty parts with sep.
func join(sep string, parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += sep
		}
		out += p
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
