package store

import "testing"

func TestNewPublicID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewPublicID()
		if !ValidPublicID(id) {
			t.Fatalf("NewPublicID() = %q: not %d bytes in lower-case hex", id, PublicIDBytes)
		}
		if seen[id] {
			t.Fatalf("NewPublicID repeated %q", id)
		}
		seen[id] = true
	}
	if PublicIDBytes*8 < 128 {
		t.Errorf("public ids carry %d bits, want at least 128", PublicIDBytes*8)
	}
}

func TestValidPublicID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"", false},
		{"7", false},
		{"12345678901234567890123456789012345", false},
		{"0123456789ABCDEF0123456789ABCDEF", false}, // one spelling per id
		{"0123456789abcdef0123456789abcde", false},
		{"0123456789abcdef0123456789abcdefa", false},
		{"0123456789abcdef0123456789abcdeg", false},
		{"../../../../../../../../etc/pass", false},
	} {
		if got := ValidPublicID(tc.id); got != tc.want {
			t.Errorf("ValidPublicID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestDecisionURL(t *testing.T) {
	id := NewPublicID()
	for _, base := range []string{"https://rk.example.com", "https://rk.example.com/"} {
		if got := DecisionURL(base, id); got != "https://rk.example.com/decisions/"+id {
			t.Errorf("DecisionURL(%q) = %q", base, got)
		}
	}
	if got := DecisionURL("https://rk.example.com", ""); got != "" {
		t.Errorf("a decision without a public id got a link: %q", got)
	}
}
