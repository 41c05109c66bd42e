package report

import (
	"html"
	"html/template"
	"strconv"
	"strings"
	"unicode"
)

// Names, titles and reasons come from roles.yaml, Bitbucket and Jira: any
// of them may hold markup or right-to-left text. These helpers make them
// render as the text they are in every format.

// bidiControls are the explicit direction embeddings, overrides and
// isolates: inside a name they would reorder the text around it.
var bidiControls = strings.NewReplacer(
	"\u202a", "", "\u202b", "", "\u202c", "", "\u202d", "", "\u202e", "",
	"\u2066", "", "\u2067", "", "\u2068", "", "\u2069", "", "\u200e", "", "\u200f", "",
)

// plainText drops direction controls and folds line breaks and tabs into
// spaces: a value is one line of text.
func plainText(s string) string {
	s = bidiControls.Replace(s)
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || r == '\v' || r == '\f' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// hasRTL reports whether s holds a right-to-left letter.
func hasRTL(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko,
			unicode.Samaritan, unicode.Mandaic) {
			return true
		}
	}
	return false
}

// isolate wraps right-to-left text in a first-strong isolate, so that in a
// left-to-right line it neither reorders nor is reordered by its
// neighbours (Markdown and Jira have no <bdi>).
func isolate(s string) string {
	if hasRTL(s) {
		return "\u2068" + s + "\u2069"
	}
	return s
}

// breakAfter are the characters after which a long name may wrap.
const breakAfter = "/-#_@"

// htmlName escapes a name (repository, rule id, ref, person) and lets it
// wrap only after '/', '-', '#', '_' and '@', never inside a word; <bdi>
// keeps right-to-left names from reordering the line.
func htmlName(s string) template.HTML {
	s = plainText(s)
	var b strings.Builder
	b.WriteString("<bdi>")
	start := 0
	for i, r := range s {
		if strings.ContainsRune(breakAfter, r) {
			b.WriteString(html.EscapeString(s[start : i+1]))
			if i+1 < len(s) {
				b.WriteString("<wbr>")
			}
			start = i + 1
		}
	}
	b.WriteString(html.EscapeString(s[start:]))
	b.WriteString("</bdi>")
	return template.HTML(b.String())
}

// htmlText escapes prose (a reason) in a direction isolate.
func htmlText(s string) template.HTML {
	return template.HTML("<bdi>" + html.EscapeString(plainText(s)) + "</bdi>")
}

// duration says how long something has been open: "45 min", "5 h", "3 d 4 h".
func duration(hours float64) string {
	switch {
	case hours*60 < 1:
		return "under a minute"
	case hours < 1:
		return strconv.Itoa(int(hours*60+0.5)) + " min"
	case hours < 48:
		return strconv.Itoa(int(hours+0.5)) + " h"
	}
	d := int(hours) / 24
	h := int(hours+0.5) - d*24
	if h <= 0 {
		return strconv.Itoa(d) + " d"
	}
	return strconv.Itoa(d) + " d " + strconv.Itoa(h) + " h"
}

// sentence ends s with a full stop unless it ends with punctuation.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsRune(".!?…", []rune(s)[len([]rune(s))-1]) {
		return s
	}
	return s + "."
}
