package evidence

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{json.RawMessage(`{ "b": 1, "a": [true, null, "x<y>&"], "c": {"z": 1.50, "y": "é\u2028"} }`),
			`{"a":[true,null,"x<y>&"],"b":1,"c":{"y":"é\u2028","z":1.50}}`},
		{map[string]any{"n": int64(1) << 60, "s": "tab\there"}, `{"n":1152921504606846976,"s":"tab\there"}`},
		{struct {
			B string `json:"b"`
			A int    `json:"a"`
		}{"q\"", 2}, `{"a":2,"b":"q\""}`},
	}
	for _, c := range cases {
		got, err := Canonical(c.in)
		if err != nil {
			t.Fatalf("Canonical(%v): %v", c.in, err)
		}
		if string(got) != c.want {
			t.Errorf("Canonical(%v)\n got  %s\n want %s", c.in, got, c.want)
		}
		again, _ := Canonical(json.RawMessage(got))
		if string(again) != string(got) {
			t.Errorf("not a fixed point: %s → %s", got, again)
		}
	}
	if _, err := Canonical(json.RawMessage(`{"a":1} {}`)); err == nil {
		t.Errorf("two values accepted")
	}
}

func TestTime(t *testing.T) {
	tm := time.Date(2026, 12, 7, 9, 0, 0, 500_000_000, time.FixedZone("CET", 3600))
	if got := Time(tm); got != "2026-12-07T08:00:00.5Z" {
		t.Errorf("Time = %s", got)
	}
	back, err := ParseTime(Time(tm))
	if err != nil || !back.Equal(tm) {
		t.Errorf("ParseTime: %v %v", back, err)
	}
}

func chain(t testing.TB, n int) []Record {
	head := Genesis()
	out := make([]Record, 0, n)
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for i := range n {
		r, err := Link(head, KindDecision, at.Add(time.Duration(i)*time.Minute), map[string]any{"i": i, "summary": "asked <amara>"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
		head = r.Head()
	}
	return out
}

func TestLineRoundTrip(t *testing.T) {
	r := chain(t, 2)[1]
	line := r.MarshalLine()
	if !strings.HasPrefix(string(line), `{"content":{"i":1,"summary":"asked <amara>"},"hash":"`) {
		t.Errorf("line: %s", line)
	}
	got, err := ParseLine(line)
	if err != nil || got.Hash != r.Hash || got.ComputeHash() != r.Hash {
		t.Fatalf("ParseLine: %+v %v", got, err)
	}
	if _, err := ParseLine([]byte(strings.Replace(string(line), `"kind"`, ` "kind"`, 1))); err == nil {
		t.Errorf("a non-canonical line was accepted")
	}
}

func TestVerifierNamesProblems(t *testing.T) {
	recs := chain(t, 5)
	run := func(rs []Record, head *Head) Result {
		v := NewVerifier(VerifyOptions{Head: head})
		for _, r := range rs {
			if !v.Add(r) {
				break
			}
		}
		return v.Finish()
	}
	head := recs[4].Head()
	if res := run(recs, &head); !res.OK() || res.Records != 5 {
		t.Fatalf("intact: %+v", res)
	}
	edited := append([]Record(nil), recs...)
	edited[2].Content = json.RawMessage(`{"i":2,"summary":"asked <kofi>"}`)
	if res := run(edited, &head); res.OK() || res.Problem.Seq != 3 || !strings.Contains(res.Problem.What, "edited") {
		t.Errorf("edited: %v", res.Problem)
	}
	// Rehashed in place: the next record's link breaks.
	edited[2].Hash = edited[2].ComputeHash()
	if res := run(edited, &head); res.OK() || res.Problem.Seq != 4 || !strings.Contains(res.Problem.What, "previous hash") {
		t.Errorf("rehashed: %v", res.Problem)
	}
	deleted := append(append([]Record(nil), recs[:2]...), recs[3:]...)
	if res := run(deleted, &head); res.OK() || res.Problem.Seq != 3 || !strings.Contains(res.Problem.What, "missing") {
		t.Errorf("deleted: %v", res.Problem)
	}
}

func testSigner(t testing.TB) *Signer {
	_, priv, _ := ed25519.GenerateKey(nil)
	s, err := ParsePrivateKey(base64.StdEncoding.EncodeToString(priv.Seed()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeys(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	for _, enc := range []string{base64.StdEncoding.EncodeToString(priv), base64.StdEncoding.EncodeToString(priv.Seed()), base64.RawStdEncoding.EncodeToString(priv) + "\n"} {
		s, err := ParsePrivateKey(enc)
		if err != nil || !s.PublicKey().Equal(priv.Public()) {
			t.Errorf("ParsePrivateKey(%d chars): %v", len(enc), err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParsePrivateKey(bad); err == nil {
			t.Errorf("ParsePrivateKey(%q) accepted", bad)
		}
	}
	s := testSigner(t)
	c := s.NewCheckpoint(Head{Seq: 3, Hash: strings.Repeat("ab", 32)}, time.Now(), ReasonScheduled, "")
	if err := c.CheckSignature(s.PublicKey()); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	c.Seq = 4
	if err := c.CheckSignature(nil); err == nil {
		t.Errorf("a changed checkpoint still verifies")
	}
	var none *Signer
	if u := none.NewCheckpoint(Head{Seq: 1, Hash: GenesisHash}, time.Now(), ReasonScheduled, ""); u.Signed() || u.CheckSignature(nil) != nil {
		t.Errorf("unsigned checkpoint: %+v", u)
	}
}

func writeTestBundle(t *testing.T, s *Signer) (string, []Record) {
	recs := chain(t, 8)
	dir := t.TempDir()
	week := recs[3:7] // a week: records 4…7
	report := `{"week":"2026-W49","evidence":{"first_seq":4,"last_seq":7,"head":"` + week[3].Hash + `"}}`
	cps := []Checkpoint{s.NewCheckpoint(recs[1].Head(), time.Now(), ReasonScheduled, ""), s.NewCheckpoint(week[3].Head(), time.Now(), ReasonExport, "2026-W49")}
	if _, err := WriteBundle(dir, Bundle{Week: "2026-W49", Before: recs[2].Head(), Records: week, Checkpoints: cps,
		ReportJSON: []byte(report), ReportHTML: []byte("<html>report</html>")}); err != nil {
		t.Fatal(err)
	}
	return dir, recs
}

func TestBundle(t *testing.T) {
	s := testSigner(t)
	dir, recs := writeTestBundle(t, s)
	res, err := VerifyBundle(dir, s.PublicKey())
	if err != nil || !res.OK() || !res.HeadSigned || res.Records != 4 || res.Manifest.HeadAfter.Hash != recs[6].Hash {
		t.Fatalf("intact bundle: %+v %v %v", res, res.Problem, err)
	}
	if res, _ := VerifyBundle(dir, testSigner(t).PublicKey()); res.OK() {
		t.Errorf("a bundle signed by another key passed with a pinned key")
	}
	if _, err := VerifyBundle(filepath.Join(dir, "nope"), nil); err == nil {
		t.Errorf("a missing bundle is not an error")
	}
}

// TestBundleAnyByteChanged flips every byte of the manifest and of the
// records, and one byte of each other file: each must fail.
func TestBundleAnyByteChanged(t *testing.T) {
	s := testSigner(t)
	dir, _ := writeTestBundle(t, s)
	for _, name := range []string{FileManifest, FileRecords, FileCheckpoints, FileReportJSON, FileReportHTML} {
		path := filepath.Join(dir, name)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		positions := []int{len(orig) / 2}
		if name == FileManifest || name == FileRecords {
			positions = positions[:0]
			for i := range orig {
				positions = append(positions, i)
			}
		}
		for _, i := range positions {
			changed := append([]byte(nil), orig...)
			changed[i] ^= 0x01
			if err := os.WriteFile(path, changed, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := VerifyBundle(dir, nil)
			if err == nil && res.OK() {
				t.Fatalf("%s with byte %d (%q) changed passed", name, i, orig[i])
			}
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := VerifyBundle(dir, nil); err != nil || !res.OK() {
		t.Fatalf("restored bundle: %v %v", res.Problem, err)
	}
}

func BenchmarkLink(b *testing.B) {
	head := Genesis()
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	content := map[string]any{"summary": strings.Repeat("x", 300), "reasons": []string{"asked amara"}}
	for range b.N {
		r, err := Link(head, KindDecision, at, content)
		if err != nil {
			b.Fatal(err)
		}
		head = r.Head()
	}
}

// BenchmarkVerify: the hashing side of verification, without a database.
func BenchmarkVerify(b *testing.B) {
	recs := chain(b, 100_000)
	head := recs[len(recs)-1].Head()
	b.ResetTimer()
	for range b.N {
		v := NewVerifier(VerifyOptions{Head: &head})
		for _, r := range recs {
			v.Add(r)
		}
		if res := v.Finish(); !res.OK() {
			b.Fatal(res.Problem)
		}
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
