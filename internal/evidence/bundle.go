package evidence

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Bundle file names.
const (
	BundleFormat      = "rolekeeper-evidence-bundle/1"
	FileManifest      = "manifest.json"
	FileRecords       = "records.jsonl"
	FileCheckpoints   = "checkpoints.jsonl"
	FileReportJSON    = "report.json"
	FileReportHTML    = "report.html"
	bundleFileMode    = 0o644
	bundleDirFileMode = 0o755
)

// BundleHead is a head as the manifest names it.
type BundleHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Manifest describes a bundle: the week, the range of records, the chain's
// heads before and after it, and the SHA-256 of every other file.
type Manifest struct {
	Format     string            `json:"format"`
	Week       string            `json:"week"`
	Records    int64             `json:"records"`
	FirstSeq   int64             `json:"first_seq"` // HeadBefore.Seq+1
	LastSeq    int64             `json:"last_seq"`  // HeadAfter.Seq
	HeadBefore BundleHead        `json:"head_before"`
	HeadAfter  BundleHead        `json:"head_after"`
	Files      map[string]string `json:"files"` // name → SHA-256 hex
}

// Bundle is what WriteBundle writes.
type Bundle struct {
	Week        string
	Before      Head     // the head before the week's first record
	Records     []Record // the week's records, in sequence
	Checkpoints []Checkpoint
	ReportJSON  []byte
	ReportHTML  []byte
}

// WriteBundle writes b into dir (created; files in it are replaced) and
// returns its manifest.
func WriteBundle(dir string, b Bundle) (Manifest, error) {
	if b.Before.Hash == "" {
		b.Before.Hash = GenesisHash
	}
	after := b.Before
	if n := len(b.Records); n > 0 {
		after = b.Records[n-1].Head()
	}
	m := Manifest{Format: BundleFormat, Week: b.Week, Records: int64(len(b.Records)),
		FirstSeq: b.Before.Seq + 1, LastSeq: after.Seq,
		HeadBefore: BundleHead{b.Before.Seq, b.Before.Hash}, HeadAfter: BundleHead{after.Seq, after.Hash},
		Files: map[string]string{}}
	var recs bytes.Buffer
	for _, r := range b.Records {
		recs.Write(r.MarshalLine())
		recs.WriteByte('\n')
	}
	var cps bytes.Buffer
	for _, c := range b.Checkpoints {
		line, err := Canonical(c)
		if err != nil {
			return m, err
		}
		cps.Write(line)
		cps.WriteByte('\n')
	}
	files := map[string][]byte{FileRecords: recs.Bytes(), FileCheckpoints: cps.Bytes(), FileReportJSON: b.ReportJSON, FileReportHTML: b.ReportHTML}
	if err := os.MkdirAll(dir, bundleDirFileMode); err != nil {
		return m, fmt.Errorf("evidence: bundle: %w", err)
	}
	for name, data := range files {
		sum := sha256.Sum256(data)
		m.Files[name] = hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, name), data, bundleFileMode); err != nil {
			return m, fmt.Errorf("evidence: bundle: %w", err)
		}
	}
	mb, err := manifestBytes(m)
	if err != nil {
		return m, err
	}
	if err := os.WriteFile(filepath.Join(dir, FileManifest), mb, bundleFileMode); err != nil {
		return m, fmt.Errorf("evidence: bundle: %w", err)
	}
	return m, nil
}

func manifestBytes(m Manifest) ([]byte, error) {
	b, err := Canonical(m)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// BundleResult is what VerifyBundle found.
type BundleResult struct {
	Result
	Manifest Manifest
	// HeadSigned: a signed checkpoint covers the bundle's last record.
	HeadSigned bool
}

// reportEvidence is what VerifyBundle reads of report.json.
type reportEvidence struct {
	Week     string `json:"week"`
	Evidence *struct {
		FirstSeq int64  `json:"first_seq"`
		LastSeq  int64  `json:"last_seq"`
		Head     string `json:"head"`
	} `json:"evidence"`
}

// VerifyBundle checks an exported bundle with no database and no network:
// every file against the manifest, the records as a chain from the head
// before the week to the head after it, the checkpoints against the records
// and their signatures (against pinned when given), and the report's
// evidence line against the manifest. An error means the bundle could not be
// read; a broken bundle is a Result with a Problem.
func VerifyBundle(dir string, pinned ed25519.PublicKey) (BundleResult, error) {
	var out BundleResult
	broken := func(file, format string, args ...any) (BundleResult, error) {
		out.Problem = &Problem{File: file, What: fmt.Sprintf(format, args...)}
		return out, nil
	}
	mb, err := os.ReadFile(filepath.Join(dir, FileManifest))
	if err != nil {
		return out, fmt.Errorf("evidence: bundle: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return broken(FileManifest, "not a manifest: %v", err)
	}
	out.Manifest = m
	if again, err := manifestBytes(m); err != nil || !bytes.Equal(again, mb) {
		return broken(FileManifest, "not in canonical form (changed after export)")
	}
	if m.Format != BundleFormat {
		return broken(FileManifest, "format %q, want %q", m.Format, BundleFormat)
	}
	want := []string{FileCheckpoints, FileRecords, FileReportHTML, FileReportJSON}
	var names []string
	for name := range m.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	if fmt.Sprint(names) != fmt.Sprint(want) {
		return broken(FileManifest, "lists files %v, want %v", names, want)
	}
	data := map[string][]byte{}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return broken(name, "missing (listed in the manifest)")
		}
		if err != nil {
			return out, fmt.Errorf("evidence: bundle: %w", err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != m.Files[name] {
			return broken(name, "SHA-256 %.12s… differs from the manifest's %.12s… (changed after export)", got, m.Files[name])
		}
		data[name] = b
	}
	if m.FirstSeq != m.HeadBefore.Seq+1 || m.LastSeq != m.HeadAfter.Seq || m.Records != m.LastSeq-m.HeadBefore.Seq {
		return broken(FileManifest, "sequence numbers disagree: head before %d, first %d, last %d, head after %d, %d records",
			m.HeadBefore.Seq, m.FirstSeq, m.LastSeq, m.HeadAfter.Seq, m.Records)
	}

	var cps []Checkpoint
	sc := bufio.NewScanner(bytes.NewReader(data[FileCheckpoints]))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		var c Checkpoint
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&c); err != nil {
			return broken(FileCheckpoints, "line %d: %v", len(cps)+1, err)
		}
		cps = append(cps, c)
	}
	if err := sc.Err(); err != nil {
		return broken(FileCheckpoints, "%v", err)
	}

	start := Head{Seq: m.HeadBefore.Seq, Hash: m.HeadBefore.Hash}
	end := Head{Seq: m.HeadAfter.Seq, Hash: m.HeadAfter.Hash}
	var inRange []Checkpoint
	for _, c := range cps {
		if c.Seq > start.Seq && c.Seq <= end.Seq {
			inRange = append(inRange, c)
			if c.Seq == end.Seq && c.Signed() && c.CheckSignature(pinned) == nil {
				out.HeadSigned = true
			}
		} else if err := c.CheckSignature(pinned); err != nil {
			out.Result.Problem = &Problem{File: FileCheckpoints, What: fmt.Sprintf("checkpoint at %d (%s): %v", c.Seq, c.Reason, err)}
			return out, nil
		}
	}
	v := NewVerifier(VerifyOptions{Start: &start, Head: &end, Checkpoints: inRange, PublicKey: pinned})
	sc = bufio.NewScanner(bytes.NewReader(data[FileRecords]))
	sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		r, err := ParseLine(sc.Bytes())
		if err != nil {
			return broken(FileRecords, "line %d: %v", line, err)
		}
		if !v.Add(r) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return broken(FileRecords, "%v", err)
	}
	out.Result = v.Finish()
	out.Result.Checkpoints, out.Result.Signed, out.Result.Keys = len(cps), 0, nil
	for _, c := range cps {
		if c.Signed() {
			out.Result.Signed++
			if !slices.Contains(out.Result.Keys, c.PublicKey) {
				out.Result.Keys = append(out.Result.Keys, c.PublicKey)
			}
		}
	}
	if out.Problem != nil {
		return out, nil
	}
	if out.Records != m.Records {
		return broken(FileRecords, "%d records, the manifest says %d", out.Records, m.Records)
	}

	var rep reportEvidence
	if err := json.Unmarshal(data[FileReportJSON], &rep); err != nil {
		return broken(FileReportJSON, "not JSON: %v", err)
	}
	if rep.Week != m.Week {
		return broken(FileReportJSON, "week %q, the manifest says %q", rep.Week, m.Week)
	}
	if rep.Evidence == nil {
		return broken(FileReportJSON, "has no evidence section")
	}
	if rep.Evidence.LastSeq != m.LastSeq || rep.Evidence.Head != m.HeadAfter.Hash ||
		(m.Records > 0 && rep.Evidence.FirstSeq != m.FirstSeq) {
		return broken(FileReportJSON, "evidence %d–%d head %.12s… disagrees with the manifest's %d–%d head %.12s…",
			rep.Evidence.FirstSeq, rep.Evidence.LastSeq, rep.Evidence.Head, m.FirstSeq, m.LastSeq, m.HeadAfter.Hash)
	}
	return out, nil
}
