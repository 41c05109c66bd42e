package rules

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reloadly/rolekeeper/internal/roles"
)

func TestChoose(t *testing.T) {
	org := testOrg()
	leads := org.Holders("technical-lead", "checkout") // mei, kofi, amara, ghost
	newYear := time.Date(2026, 12, 28, 12, 0, 0, 0, time.UTC)
	christmas := time.Date(2026, 12, 22, 12, 0, 0, 0, time.UTC)
	janNext := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	load := map[string]int{accMei: 4, accKofi: 1, accAmara: 2}

	tests := []struct {
		name      string
		cands     []*roles.Person
		n         int
		opt       ChooseOptions
		want      []string // account ids, in order
		kept      []bool
		reasons   []string // substrings of each pick's reason
		notes     []string // substrings expected among the notes
		noNoteFor string   // substring no note may hold
	}{
		{
			name:    "least loaded first",
			cands:   leads,
			n:       2,
			opt:     ChooseOptions{Load: load, Now: june, Why: "technical lead of team checkout"},
			want:    []string{accKofi, accAmara},
			kept:    []bool{false, false},
			reasons: []string{"asked Kofi Mensah: technical lead of team checkout, fewest open reviews (1)", "fewest open reviews (2)"},
			notes:   []string{"Gus Host has no account_id in roles.yaml"},
		},
		{
			name:      "excluded person never picked",
			cands:     leads,
			n:         1,
			opt:       ChooseOptions{Exclude: []string{accKofi}, Load: load, Now: june},
			want:      []string{accAmara},
			kept:      []bool{false},
			noNoteFor: "Kofi",
		},
		{
			name:    "away person skipped with a note, same year",
			cands:   leads,
			n:       1,
			opt:     ChooseOptions{Load: load, Now: christmas},
			want:    []string{accAmara},
			kept:    []bool{false},
			notes:   []string{"Kofi Mensah is away until 2 Jan 2027"},
			reasons: []string{"fewest open reviews (2)"},
		},
		{
			name:  "away note omits the year when it is the same",
			cands: leads,
			n:     1,
			opt:   ChooseOptions{Load: load, Now: janNext},
			want:  []string{accAmara},
			kept:  []bool{false},
			notes: []string{"Kofi Mensah is away until 2 Jan"},
		},
		{
			name:    "kept first even when more loaded",
			cands:   leads,
			n:       1,
			opt:     ChooseOptions{Keep: []string{accMei}, Load: load, Now: june, Why: "technical lead of team checkout"},
			want:    []string{accMei},
			kept:    []bool{true},
			reasons: []string{"kept Mei Chen: already a reviewer, technical lead of team checkout"},
		},
		{
			name:  "kept person who is away is replaced",
			cands: leads,
			n:     1,
			opt:   ChooseOptions{Keep: []string{accKofi}, Load: load, Now: newYear},
			want:  []string{accAmara},
			kept:  []bool{false},
			notes: []string{"Kofi Mensah is away until 2 Jan 2027"},
		},
		{
			name:  "keep of a non-candidate is ignored",
			cands: leads,
			n:     1,
			opt:   ChooseOptions{Keep: []string{accRavi}, Load: load, Now: june},
			want:  []string{accKofi},
			kept:  []bool{false},
		},
		{
			name:    "preferred reused after kept",
			cands:   leads,
			n:       2,
			opt:     ChooseOptions{Keep: []string{accMei}, Prefer: []string{accAmara}, PreferWhy: "already asked", Load: load, Now: june},
			want:    []string{accMei, accAmara},
			kept:    []bool{true, false},
			reasons: []string{"kept Mei Chen", "asked Amara Okafor: already asked"},
		},
		{
			name:  "shortfall names who is missing and why",
			cands: leads,
			n:     4,
			opt:   ChooseOptions{Exclude: []string{accAmara}, ExcludeWhy: "is the author of the pull request", Load: load, Now: newYear, Why: "technical lead of team checkout"},
			want:  []string{accMei},
			kept:  []bool{false},
			notes: []string{"found 1 of 4 people needed (technical lead of team checkout): Kofi Mensah is away until 2 Jan 2027; Amara Okafor is the author of the pull request; Gus Host has no account_id in roles.yaml"},
		},
		{
			name:  "nobody holds the role",
			cands: nil,
			n:     1,
			opt:   ChooseOptions{Now: june},
			want:  []string{},
			notes: []string{"found 0 of 1 people needed: nobody holds the role"},
		},
		{
			name:  "zero wanted picks nobody",
			cands: leads,
			n:     0,
			opt:   ChooseOptions{Load: load, Now: june},
			want:  []string{},
		},
		{
			name:  "duplicates count once",
			cands: []*roles.Person{leads[0], leads[0], leads[1]},
			n:     3,
			opt:   ChooseOptions{Load: load, Now: june},
			want:  []string{accKofi, accMei},
			kept:  []bool{false, false},
			notes: []string{"found 2 of 3 people needed: nobody else holds the role"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			picks, notes := Choose(tc.cands, tc.n, tc.opt)
			got := make([]string, len(picks))
			for i, p := range picks {
				got[i] = p.AccountID
				if tc.kept != nil && p.Kept != tc.kept[i] {
					t.Errorf("pick %d (%s) Kept = %v, want %v", i, p.AccountID, p.Kept, tc.kept[i])
				}
				if p.Name == "" || p.Person == "" {
					t.Errorf("pick %d lacks name or handle: %+v", i, p)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("picks = %v, want %v (notes %q)", got, tc.want, notes)
			}
			for i, sub := range tc.reasons {
				if !strings.Contains(picks[i].Reason, sub) {
					t.Errorf("pick %d reason %q lacks %q", i, picks[i].Reason, sub)
				}
			}
			for _, sub := range tc.notes {
				if !containsSubstring(notes, sub) {
					t.Errorf("notes %q lack %q", notes, sub)
				}
			}
			if tc.noNoteFor != "" && containsSubstring(notes, tc.noNoteFor) {
				t.Errorf("notes %q mention %q", notes, tc.noNoteFor)
			}
		})
	}
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestChooseTieBreak checks that equally loaded people are ordered by the
// seeded hash: stable for one seed, spread over many.
func TestChooseTieBreak(t *testing.T) {
	org := testOrg()
	leads := org.Holders("technical-lead", "checkout")[:2] // mei, kofi
	load := map[string]int{accMei: 2, accKofi: 2}
	counts := map[string]int{}
	for n := 1; n <= 64; n++ {
		seed := "reloadly/checkout-api#" + strconv.Itoa(n)
		opt := ChooseOptions{Load: load, Seed: seed, Now: june}
		first, _ := Choose(leads, 1, opt)
		again, _ := Choose(leads, 1, opt)
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("seed %s: %v then %v", seed, first, again)
		}
		want := accMei
		if seededHash(seed, accKofi) < seededHash(seed, accMei) {
			want = accKofi
		}
		if first[0].AccountID != want {
			t.Fatalf("seed %s: picked %s, want %s (lower hash)", seed, first[0].AccountID, want)
		}
		if !strings.Contains(first[0].Reason, "tie broken by a hash of "+seed) {
			t.Errorf("reason %q does not say the tie was broken", first[0].Reason)
		}
		counts[first[0].AccountID]++
	}
	if counts[accMei] == 0 || counts[accKofi] == 0 {
		t.Errorf("ties are not spread over pull requests: %v", counts)
	}
}

func TestFormatDay(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		day  time.Time
		want string
	}{
		{day("2026-01-02"), "2 Jan"},
		{day("2027-01-02"), "2 Jan 2027"},
		{day("2025-12-31"), "31 Dec 2025"},
	} {
		if got := FormatDay(tc.day, now); got != tc.want {
			t.Errorf("FormatDay(%v) = %q, want %q", tc.day, got, tc.want)
		}
	}
}
