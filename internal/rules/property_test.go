package rules

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/reloadly/rolekeeper/internal/model"
	"github.com/reloadly/rolekeeper/internal/roles"
)

// TestEvaluateProperties checks invariants over random organisations and
// pull requests (seeded, so a failure replays).
func TestEvaluateProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const orgs, snapsPerOrg = 40, 25
	checked, requested := 0, 0
	for o := 0; o < orgs; o++ {
		spec := genSpec{people: 8 + rng.IntN(40), teams: 1 + rng.IntN(4), reposPerTeam: 1 + rng.IntN(2),
			leadsPerTeam: [2]int{0, 3}, noAccount: 0.1, away: 0.25, random: true}
		org := genOrg(rng, spec)
		engine := Compile(org)
		for i := 0; i < snapsPerOrg; i++ {
			s := genSnapshot(rng, org)
			d := engine.Evaluate(s)
			checkDecision(t, org, s, d)
			if again := Compile(org).Evaluate(s); !reflect.DeepEqual(d, again) {
				t.Fatalf("org %d snapshot %d: a fresh engine decided differently:\n%+v\n%+v", o, i, d, again)
			}
			checked++
			requested += len(d.Request)
		}
	}
	// Guard against a generator that never exercises the selector.
	if requested < checked/4 {
		t.Fatalf("only %d reviewers requested over %d decisions", requested, checked)
	}
}

func checkDecision(t *testing.T, org *roles.Org, s PRSnapshot, d Decision) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s#%d: "+format, append([]any{s.Repository, s.Number}, args...)...)
	}
	if d.Team == "" {
		if len(d.Request) > 0 || len(d.Statuses) > 0 || d.Skipped == "" {
			fail("no team, yet %+v", d)
		}
		return
	}
	mayRequest := s.State == model.PROpen && (!s.Draft || s.AssignDrafts)
	if !mayRequest && len(d.Request) > 0 {
		fail("requested %v on a %s draft=%v pull request", requestIDs(d), s.State, s.Draft)
	}
	latest := map[string]model.ReviewState{}
	for _, a := range s.Approvals {
		latest[a.AccountID] = a.State
	}
	seen := map[string]bool{}
	for _, p := range d.Request {
		if p.AccountID == "" || p.AccountID == s.Author.AccountID {
			fail("requested %q (author %q)", p.AccountID, s.Author.AccountID)
		}
		if seen[p.AccountID] {
			fail("requested %s twice", p.AccountID)
		}
		seen[p.AccountID] = true
		person := org.PersonByAccount(p.AccountID)
		if person == nil {
			fail("requested unknown account %s", p.AccountID)
		}
		if away, _ := person.AwayAt(s.Now); away {
			fail("requested %s who is away at %v", p.Name, s.Now)
		}
		if p.Kept && !containsString(s.Reviewers, p.AccountID) {
			fail("%s kept but not a reviewer", p.Name)
		}
		holder := false
		for _, r := range d.Rules {
			if r.Triggered && r.Kind != string(roles.KindUnitTests) && holds(org.Holders(r.Role, d.Team), p.AccountID) {
				holder = true
			}
		}
		if !holder {
			fail("requested %s who holds no triggered rule's role", p.Name)
		}
	}
	allMet := true
	for _, r := range d.Rules {
		if r.Kind == string(roles.KindUnitTests) {
			continue
		}
		rule := findRule(org, r.RuleID)
		if len(r.Picks) > max(rule.Reviewers, 0) {
			fail("rule %s picked %d, wants %d", r.RuleID, len(r.Picks), rule.Reviewers)
		}
		for _, p := range r.Picks {
			if !seen[p.AccountID] {
				fail("rule %s pick %s missing from Request", r.RuleID, p.Name)
			}
		}
		for _, acc := range r.ApprovedBy {
			if acc == s.Author.AccountID || latest[acc] != model.ReviewApproved || !holds(org.Holders(r.Role, d.Team), acc) {
				fail("rule %s counts approval of %s", r.RuleID, acc)
			}
		}
		if r.Triggered && r.Met && r.Required > 0 && len(r.ApprovedBy) < r.Required {
			fail("rule %s met with %d of %d approvals", r.RuleID, len(r.ApprovedBy), r.Required)
		}
		if r.Triggered && !r.Met {
			allMet = false
			if r.Shortfall == "" {
				fail("rule %s not met without a shortfall", r.RuleID)
			}
		}
	}
	if d.ApprovalsMet != allMet {
		fail("ApprovalsMet = %v, rules say %v", d.ApprovalsMet, allMet)
	}
	for _, st := range d.Statuses {
		if st.Description == "" || utf8.RuneCountInString(st.Description) > maxDescription {
			fail("status %s description %q", st.Key, st.Description)
		}
	}
	if st := statusByKey(d, StatusReview); st == nil || (st.State == StateSuccessful) != allMet {
		fail("review status %+v with approvals met %v", st, allMet)
	}
}

func findRule(org *roles.Org, id string) *roles.Rule {
	for _, r := range org.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// TestChooseProperties checks the selector alone over random candidates.
func TestChooseProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 300; i++ {
		org := genOrg(rng, genSpec{people: 5 + rng.IntN(30), teams: 1 + rng.IntN(3), reposPerTeam: 1,
			leadsPerTeam: [2]int{0, 4}, noAccount: 0.15, away: 0.3, random: true})
		cands := org.Holders("technical-lead", "team00")
		now := genNow.Add(time.Duration(rng.IntN(96)-48) * time.Hour)
		opt := ChooseOptions{Seed: "ws/x#" + strconv.Itoa(i), Now: now, Load: map[string]int{}}
		for _, p := range org.People {
			opt.Load[p.AccountID] = rng.IntN(5)
			switch rng.IntN(6) {
			case 0:
				opt.Exclude = append(opt.Exclude, p.AccountID)
			case 1:
				opt.Keep = append(opt.Keep, p.AccountID)
			}
		}
		n := rng.IntN(4)
		picks, notes := Choose(cands, n, opt)
		again, notesAgain := Choose(cands, n, opt)
		if !reflect.DeepEqual(picks, again) || !reflect.DeepEqual(notes, notesAgain) {
			t.Fatalf("case %d: not deterministic", i)
		}
		eligible := 0
		for _, c := range cands {
			if away, _ := c.AwayAt(now); c.AccountID != "" && !away && !containsString(opt.Exclude, c.AccountID) {
				eligible++
			}
		}
		if len(picks) != min(n, eligible) {
			t.Fatalf("case %d: %d picks, want min(%d, %d eligible)", i, len(picks), n, eligible)
		}
		if len(picks) < n && !containsSubstring(notes, "found ") {
			t.Fatalf("case %d: short without a note: %q", i, notes)
		}
		kept, maxNewLoad := true, -1
		for _, p := range picks {
			if containsString(opt.Exclude, p.AccountID) || p.AccountID == "" {
				t.Fatalf("case %d: picked %q", i, p.AccountID)
			}
			if away, _ := org.PersonByAccount(p.AccountID).AwayAt(now); away {
				t.Fatalf("case %d: picked %s who is away", i, p.Name)
			}
			// Kept picks come first; new picks come in load order and no
			// eligible, unpicked person is less loaded than a new pick.
			if p.Kept && !kept {
				t.Fatalf("case %d: kept pick after a new one", i)
			}
			kept = p.Kept
			if !p.Kept {
				l := opt.Load[p.AccountID]
				if l < maxNewLoad {
					t.Fatalf("case %d: loads out of order", i)
				}
				maxNewLoad = l
			}
		}
		if maxNewLoad >= 0 {
			for _, c := range cands {
				away, _ := c.AwayAt(now)
				if c.AccountID == "" || away || containsString(opt.Exclude, c.AccountID) || containsString(pickIDs(picks), c.AccountID) {
					continue
				}
				if opt.Load[c.AccountID] < maxNewLoad {
					t.Fatalf("case %d: %s (load %d) passed over for load %d", i, c.Name, opt.Load[c.AccountID], maxNewLoad)
				}
			}
		}
	}
}
