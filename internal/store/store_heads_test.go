package store

import (
	"strings"
	"testing"
)

func TestPRRecordHeads(t *testing.T) {
	a, b, c := strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)
	var r PRRecord
	r.AddHeads(a, "abc", "", strings.Repeat("d", 12)) // only full hashes count
	r.AddHeads(b)
	r.AddHeads(strings.ToUpper(a)) // seen again: newest again, once
	if got := strings.Join(r.Heads(), ","); got != a+","+b {
		t.Errorf("heads %q", got)
	}
	for i := 0; i < maxListed+5; i++ {
		r.AddHeads(c[:38] + string("0123456789abcdef"[i%16]) + string("0123456789abcdef"[i/16]))
	}
	if n := len(r.Heads()); n != maxListed {
		t.Errorf("%d heads kept, want %d", n, maxListed)
	}
	r.AddPusher("acc-1")
	r.AddPusher("acc-2")
	r.AddPusher("acc-1")
	r.AddPusher("")
	r.AddPusher("a,b")
	if got := strings.Join(r.Pushers(), " "); got != "acc-1 acc-2" {
		t.Errorf("pushers %q", got)
	}
	var empty *PRRecord
	if empty.Heads() != nil {
		t.Error("nil record has heads")
	}
}
