package report

// evidence.go (h6): the week's span of the evidence chain, carried by every
// format and repeated in the Jira issue, so that rewriting history in the
// database contradicts what Jira already holds.

import (
	"context"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/evidence"
)

// EvidenceSource is the optional part of a Source that keeps the chain.
type EvidenceSource interface {
	EvidenceSpan(ctx context.Context, since, until time.Time) (before, last evidence.Head, err error)
}

// EvidenceSpan is the week's records of the chain: FirstSeq…LastSeq
// (Records of them; none when LastSeq < FirstSeq), Head the hash of record
// LastSeq (the chain head at the end of the week), HeadBefore the hash the
// week's first record follows.
type EvidenceSpan struct {
	Records    int64  `json:"records"`
	FirstSeq   int64  `json:"first_seq"`
	LastSeq    int64  `json:"last_seq"`
	Head       string `json:"head"`
	HeadBefore string `json:"head_before"`
}

// NewEvidenceSpan is the span between two heads.
func NewEvidenceSpan(before, last evidence.Head) *EvidenceSpan {
	return &EvidenceSpan{Records: last.Seq - before.Seq, FirstSeq: before.Seq + 1, LastSeq: last.Seq, Head: last.Hash, HeadBefore: before.Hash}
}

// Line is the span as one line of text (Markdown, HTML, the Jira issue).
func (e *EvidenceSpan) Line() string {
	if e == nil {
		return ""
	}
	if e.Records == 0 {
		return "Evidence chain: no records this week; chain head at the end of the week: record " +
			strconv.FormatInt(e.LastSeq, 10) + " sha256:" + e.Head + "."
	}
	return "Evidence chain: records " + strconv.FormatInt(e.FirstSeq, 10) + "–" + strconv.FormatInt(e.LastSeq, 10) +
		" (" + strconv.FormatInt(e.Records, 10) + "); chain head at the end of the week: sha256:" + e.Head + "."
}

// LineHTML is Line for the HTML report: the 64-hex head may break after
// every 16 characters (<wbr>, which copies as nothing), so that it never
// pushes a phone's screen sideways.
func (e *EvidenceSpan) LineHTML() template.HTML {
	line := e.Line()
	if e == nil || e.Head == "" {
		return template.HTML(template.HTMLEscapeString(line))
	}
	var h strings.Builder
	for i := 0; i < len(e.Head); i += 16 {
		if i > 0 {
			h.WriteString("<wbr>")
		}
		h.WriteString(template.HTMLEscapeString(e.Head[i:min(i+16, len(e.Head))]))
	}
	before, after, _ := strings.Cut(line, e.Head)
	return template.HTML(template.HTMLEscapeString(before) + h.String() + template.HTMLEscapeString(after))
}

// csvColumns are the evidence values appended to every CSV row.
func (e *EvidenceSpan) csvColumns() []string {
	if e == nil {
		return []string{"", "", ""}
	}
	return []string{strconv.FormatInt(e.FirstSeq, 10), strconv.FormatInt(e.LastSeq, 10), e.Head}
}
