package main

// evidence.go (h6): `rolekeeper evidence verify|export|pubkey`.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"time"

	"github.com/reloadly/rolekeeper/internal/app"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/evidence"
	"github.com/reloadly/rolekeeper/internal/report"
	"github.com/reloadly/rolekeeper/internal/store"
)

// Exit statuses of `evidence verify`: intact, broken, could not read.
const (
	exitIntact     = 0
	exitBroken     = 1
	exitCannotRead = 2
)

func runEvidence(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	usage := func(w io.Writer) {
		fmt.Fprint(w, `Usage:
  rolekeeper evidence verify --config FILE [--pubkey KEY]   re-hash the whole chain in the store, check every checkpoint
  rolekeeper evidence verify --bundle DIR [--pubkey KEY]    check an exported bundle (no database, no network)
  rolekeeper evidence export --config FILE --week YYYY-Www --out DIR
  rolekeeper evidence pubkey                                 the public key of ROLEKEEPER_EVIDENCE_KEY

verify exits 0 intact, 1 broken (naming the first bad record), 2 could not read.
--pubkey (base64, as 'evidence pubkey' prints it) is the only key a signature may
come from; without it, each signature is checked against the key its checkpoint
names (compare those keys with the ones you trust).
`)
	}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "verify":
		return evidenceVerify(ctx, args[1:], stdout, stderr, getenv)
	case "export":
		return evidenceExport(ctx, args[1:], stdout, stderr, getenv)
	case "pubkey":
		return evidencePubkey(args[1:], stdout, stderr, getenv)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "evidence: unknown subcommand %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// signerFromEnv reads ROLEKEEPER_EVIDENCE_KEY (nil when unset).
func signerFromEnv(getenv func(string) string) (*evidence.Signer, error) {
	key := config.LoadSecrets(getenv).EvidenceKey
	if key == "" {
		return nil, nil
	}
	s, err := evidence.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvEvidenceKey, err)
	}
	return s, nil
}

func evidencePubkey(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("evidence pubkey", stderr)
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	s, err := signerFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "evidence pubkey: %v\n", err)
		return exitFailed
	}
	if s == nil {
		fmt.Fprintf(stderr, "evidence pubkey: %s is not set: checkpoints are unsigned\n", config.EnvEvidenceKey)
		return exitFailed
	}
	fmt.Fprintln(stdout, evidence.EncodePublicKey(s.PublicKey()))
	return exitOK
}

func evidenceVerify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("evidence verify", stderr)
	path := fs.String("config", "", "configuration `file`: verify the chain in its store")
	bundle := fs.String("bundle", "", "exported bundle `dir`ectory: verify it offline")
	pub := fs.String("pubkey", "", "the only public `key` (base64) a signature may come from")
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	if (*path == "") == (*bundle == "") {
		fmt.Fprintln(stderr, "evidence verify: give exactly one of --config FILE or --bundle DIR")
		return exitUsage
	}
	var pinned ed25519.PublicKey
	if *pub != "" {
		var err error
		if pinned, err = evidence.ParsePublicKey(*pub); err != nil {
			fmt.Fprintf(stderr, "evidence verify: --pubkey: %v\n", err)
			return exitUsage
		}
	}
	if *bundle != "" {
		return verifyBundle(*bundle, pinned, stdout, stderr)
	}
	cfg, code := loadConfig(*path, stderr)
	if code != exitOK {
		return exitCannotRead
	}
	st, err := app.OpenStore(ctx, cfg, config.LoadSecrets(getenv))
	if err != nil {
		fmt.Fprintf(stderr, "evidence verify: %v\n", err)
		return exitCannotRead
	}
	defer st.Close()
	start := time.Now()
	res, err := evidence.VerifySource(ctx, st, pinned)
	if err != nil {
		fmt.Fprintf(stderr, "evidence verify: could not read the chain: %v\n", err)
		return exitCannotRead
	}
	took := time.Since(start)
	if !res.OK() {
		fmt.Fprintf(stdout, "evidence BROKEN: %s\n", res.Problem.Error())
		fmt.Fprintf(stdout, "%d records checked before it.\n", res.Records)
		return exitBroken
	}
	// The chain is intact: do the tables the reports read still say what it recorded?
	rowProblem, err := store.CheckRows(ctx, st)
	if err != nil {
		fmt.Fprintf(stderr, "evidence verify: could not read the stored rows: %v\n", err)
		return exitCannotRead
	}
	if rowProblem != nil {
		fmt.Fprintf(stdout, "evidence BROKEN: %s\n", rowProblem.Error())
		fmt.Fprintf(stdout, "the chain itself is intact (%d records): the table row was changed behind it.\n", res.Records)
		return exitBroken
	}
	rate := ""
	if s := took.Seconds(); s > 0 && res.Records > 0 {
		rate = fmt.Sprintf(" in %s (%.0f records/s)", took.Round(time.Millisecond), float64(res.Records)/s)
	}
	fmt.Fprintf(stdout, "evidence intact: %d records (%d–%d)%s\n", res.Records, res.First, res.Last.Seq, rate)
	fmt.Fprintf(stdout, "head: record %d sha256:%s\n", res.Last.Seq, res.Last.Hash)
	if res.First > 1 {
		fmt.Fprintf(stdout, "records 1–%d were pruned by retention; the checkpoint at the cut (sha256:%s) anchors the rest\n", res.First-1, res.Start.Hash)
	}
	fmt.Fprintf(stdout, "checkpoints: %d, %d signed%s\n", res.Checkpoints, res.Signed, pinNote(pinned))
	printKeys(stdout, res.Keys)
	fmt.Fprintln(stdout, "stored decisions, gates and findings match their last records")
	return exitIntact
}

func printKeys(w io.Writer, keys []string) {
	for _, k := range keys {
		fmt.Fprintf(w, "signing key: %s\n", k)
	}
}

func pinNote(pinned ed25519.PublicKey) string {
	if pinned == nil {
		return " (no key pinned: each signature checked against the key it names)"
	}
	return " by " + evidence.EncodePublicKey(pinned)
}

func verifyBundle(dir string, pinned ed25519.PublicKey, stdout, stderr io.Writer) int {
	res, err := evidence.VerifyBundle(dir, pinned)
	if err != nil {
		fmt.Fprintf(stderr, "evidence verify: %v\n", err)
		return exitCannotRead
	}
	if !res.OK() {
		fmt.Fprintf(stdout, "bundle BROKEN: %s\n", res.Problem.Error())
		return exitBroken
	}
	m := res.Manifest
	fmt.Fprintf(stdout, "bundle intact: week %s, %d records (%d–%d), every file matches its SHA-256\n", m.Week, m.Records, m.FirstSeq, m.LastSeq)
	fmt.Fprintf(stdout, "head before the week: record %d sha256:%s\n", m.HeadBefore.Seq, m.HeadBefore.Hash)
	fmt.Fprintf(stdout, "head after the week:  record %d sha256:%s\n", m.HeadAfter.Seq, m.HeadAfter.Hash)
	fmt.Fprintf(stdout, "checkpoints: %d, %d signed%s\n", res.Checkpoints, res.Signed, pinNote(pinned))
	printKeys(stdout, res.Keys)
	if res.HeadSigned {
		fmt.Fprintln(stdout, "the head after the week is covered by a signed checkpoint")
	} else {
		fmt.Fprintln(stdout, "the head after the week is NOT covered by a signed checkpoint: compare it with the weekly report's Jira issue")
	}
	return exitIntact
}

func evidenceExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlags("evidence export", stderr)
	path := fs.String("config", "", "configuration `file`")
	weekFlag := fs.String("week", "", "ISO `week` YYYY-Www")
	out := fs.String("out", "", "bundle `dir`ectory to write")
	if code, ok := parseFlags(fs, args, false); !ok {
		return code
	}
	if *path == "" || *weekFlag == "" || *out == "" {
		fmt.Fprintln(stderr, "evidence export: --config, --week and --out are required")
		return exitUsage
	}
	signer, err := signerFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "evidence export: %v\n", err)
		return exitFailed
	}
	a, closeApp, code := openApp(*path, stderr, getenv)
	if code != exitOK {
		return code
	}
	defer closeApp()
	w, err := report.ParseWeek(*weekFlag, a.Location())
	if err != nil {
		fmt.Fprintf(stderr, "evidence export: %v\n", err)
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "evidence export: %v\n", err)
		return exitFailed
	}
	st := a.Store()
	before, last, err := st.EvidenceSpan(ctx, w.Start(), w.End())
	if err != nil {
		return fail(err)
	}
	var recs []evidence.Record
	if last.Seq > before.Seq {
		if err := st.ScanEvidence(ctx, before.Seq+1, last.Seq, func(r evidence.Record) bool { recs = append(recs, r); return true }); err != nil {
			return fail(err)
		}
	}
	// Refuse to seal a broken week: verify says where.
	v := evidence.NewVerifier(evidence.VerifyOptions{Start: &before, Head: &last})
	for _, r := range recs {
		if !v.Add(r) {
			break
		}
	}
	if res := v.Finish(); !res.OK() {
		return fail(fmt.Errorf("the week's chain is broken at %s; run 'rolekeeper evidence verify --config'", res.Problem.Error()))
	}
	if signer != nil && last.Seq > 0 {
		if err := st.AddCheckpoint(ctx, signer.NewCheckpoint(last, time.Now(), evidence.ReasonExport, w.String())); err != nil {
			return fail(err)
		}
	}
	all, err := st.ListCheckpoints(ctx)
	if err != nil {
		return fail(err)
	}
	var cps []evidence.Checkpoint
	for _, c := range all {
		if c.Seq >= before.Seq && c.Seq <= last.Seq {
			cps = append(cps, c)
		}
	}
	r, err := a.WeeklyReport(ctx, w)
	if err != nil {
		return fail(err)
	}
	r.Evidence = report.NewEvidenceSpan(before, last) // the bundle's span, whatever was appended since
	var js, page bytes.Buffer
	if err := report.JSON(&js, r); err != nil {
		return fail(err)
	}
	if err := report.HTML(&page, r); err != nil {
		return fail(err)
	}
	m, err := evidence.WriteBundle(*out, evidence.Bundle{Week: w.String(), Before: before, Records: recs, Checkpoints: cps,
		ReportJSON: js.Bytes(), ReportHTML: page.Bytes()})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "wrote %s: week %s, %d records (%d–%d), %d checkpoints\n", *out, m.Week, m.Records, m.FirstSeq, m.LastSeq, len(cps))
	fmt.Fprintf(stdout, "head before: record %d sha256:%s\nhead after:  record %d sha256:%s\n", m.HeadBefore.Seq, m.HeadBefore.Hash, m.HeadAfter.Seq, m.HeadAfter.Hash)
	if signer == nil {
		fmt.Fprintf(stdout, "%s is not set: the bundle carries no new signature\n", config.EnvEvidenceKey)
	}
	return exitOK
}
