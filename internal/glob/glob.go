// Package glob matches repository paths against patterns such as
// "helm/**", "**/*.go" or "**/openapi*.yaml".
//
// Paths and patterns are '/'-separated and relative to the repository root.
// Within one segment '*' matches any run of characters, '?' one character
// and "[...]" one character of a class ("[a-z]", "[!0-9]" or "[^0-9]");
// '\' quotes the next character. A segment that is exactly "**" matches zero
// or more whole segments. Patterns are anchored at the root: "Dockerfile"
// matches only the root Dockerfile; "**/Dockerfile" matches it anywhere.
//
// A pattern is compiled once into a list of segment matchers; Match walks
// the path in place and does not allocate.
package glob

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Glob is a compiled pattern. It is safe for concurrent use.
type Glob struct {
	pattern string
	segs    []segment
}

type segKind uint8

const (
	segLiteral    segKind = iota // the whole segment equals lit
	segStar                      // "*": any segment
	segPrefix                    // "lit*"
	segSuffix                    // "*lit"
	segContains                  // "*lit*"
	segWild                      // anything else: toks
	segDoubleStar                // "**": zero or more segments
)

type segment struct {
	kind segKind
	lit  string
	toks []token
}

type tokKind uint8

const (
	tokLit   tokKind = iota // lit, byte for byte
	tokAny                  // '?': one character
	tokClass                // [...]: one character of the class
	tokStar                 // '*': any run of characters
)

type token struct {
	kind  tokKind
	lit   string
	class *class
}

type class struct {
	negated bool
	ranges  []runeRange
}

type runeRange struct{ lo, hi rune }

func (c *class) match(r rune) bool {
	in := false
	for _, rr := range c.ranges {
		if rr.lo <= r && r <= rr.hi {
			in = true
			break
		}
	}
	return in != c.negated
}

// Compile parses a pattern. It fails on an empty pattern, one that starts
// or ends with '/' or holds an empty segment, an unclosed or empty class, a
// reversed range, or a trailing '\'.
func Compile(pattern string) (*Glob, error) {
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	if strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("pattern %q starts with '/': patterns are relative to the repository root", pattern)
	}
	if strings.HasSuffix(pattern, "/") {
		return nil, fmt.Errorf("pattern %q ends with '/': write %q to match everything below a folder", pattern, pattern+"**")
	}
	g := &Glob{pattern: pattern}
	for i, raw := range strings.Split(pattern, "/") {
		if raw == "" {
			return nil, fmt.Errorf("pattern %q has an empty segment", pattern)
		}
		seg, err := compileSegment(raw)
		if err != nil {
			return nil, fmt.Errorf("pattern %q, segment %d %q: %w", pattern, i+1, raw, err)
		}
		// "**/**" is the same as "**".
		if seg.kind == segDoubleStar && len(g.segs) > 0 && g.segs[len(g.segs)-1].kind == segDoubleStar {
			continue
		}
		g.segs = append(g.segs, seg)
	}
	return g, nil
}

// MustCompile is Compile for patterns known to be good; it panics on error.
func MustCompile(pattern string) *Glob {
	g, err := Compile(pattern)
	if err != nil {
		panic("glob: " + err.Error())
	}
	return g
}

// String returns the pattern as written.
func (g *Glob) String() string { return g.pattern }

func compileSegment(raw string) (segment, error) {
	if raw == "**" {
		return segment{kind: segDoubleStar}, nil
	}
	toks, err := tokenize(raw)
	if err != nil {
		return segment{}, err
	}
	// Common shapes get a direct string test.
	isLit := func(i int) bool { return i < len(toks) && toks[i].kind == tokLit }
	isStar := func(i int) bool { return i < len(toks) && toks[i].kind == tokStar }
	switch {
	case len(toks) == 0:
		return segment{kind: segLiteral}, nil // unreachable: raw is never empty
	case len(toks) == 1 && isLit(0):
		return segment{kind: segLiteral, lit: toks[0].lit}, nil
	case len(toks) == 1 && isStar(0):
		return segment{kind: segStar}, nil
	case len(toks) == 2 && isLit(0) && isStar(1):
		return segment{kind: segPrefix, lit: toks[0].lit}, nil
	case len(toks) == 2 && isStar(0) && isLit(1):
		return segment{kind: segSuffix, lit: toks[1].lit}, nil
	case len(toks) == 3 && isStar(0) && isLit(1) && isStar(2):
		return segment{kind: segContains, lit: toks[1].lit}, nil
	}
	return segment{kind: segWild, toks: toks}, nil
}

// tokenize splits one segment into tokens, merging adjacent literal
// characters and adjacent stars.
func tokenize(raw string) ([]token, error) {
	var toks []token
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, token{kind: tokLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(raw); {
		switch c := raw[i]; c {
		case '*':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
			i++
		case '?':
			flush()
			toks = append(toks, token{kind: tokAny})
			i++
		case '[':
			flush()
			cl, n, err := parseClass(raw[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokClass, class: cl})
			i += n
		case '\\':
			if i+1 >= len(raw) {
				return nil, errors.New("trailing '\\'")
			}
			_, w := utf8.DecodeRuneInString(raw[i+1:])
			lit.WriteString(raw[i+1 : i+1+w])
			i += 1 + w
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return toks, nil
}

// parseClass parses "[...]" at the start of s and returns the class and the
// number of bytes it spans.
func parseClass(s string) (*class, int, error) {
	cl := &class{}
	i := 1
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		cl.negated = true
		i++
	}
	first := true
	for {
		if i >= len(s) {
			return nil, 0, errors.New("unclosed '['")
		}
		if s[i] == ']' {
			if first {
				return nil, 0, errors.New("empty character class")
			}
			return cl, i + 1, nil
		}
		first = false
		lo, n, err := classChar(s[i:])
		if err != nil {
			return nil, 0, err
		}
		i += n
		hi := lo
		if i < len(s) && s[i] == '-' {
			i++
			if i >= len(s) {
				return nil, 0, errors.New("unclosed '['")
			}
			hi, n, err = classChar(s[i:])
			if err != nil {
				return nil, 0, err
			}
			i += n
			if hi < lo {
				return nil, 0, fmt.Errorf("reversed range %q-%q", lo, hi)
			}
		}
		cl.ranges = append(cl.ranges, runeRange{lo, hi})
	}
}

// classChar reads one (possibly quoted) character of a class.
func classChar(s string) (rune, int, error) {
	n := 0
	switch s[0] {
	case '-', ']':
		return 0, 0, fmt.Errorf("unquoted %q in a character class", s[0])
	case '\\':
		n = 1
		if len(s) < 2 {
			return 0, 0, errors.New("trailing '\\'")
		}
	}
	r, w := utf8.DecodeRuneInString(s[n:])
	return r, n + w, nil
}

// Match reports whether the path matches the pattern. The empty path
// matches nothing.
func (g *Glob) Match(path string) bool {
	if path == "" {
		return false
	}
	// Segments are walked by byte offset; a position past len(path) means
	// every segment was consumed. "**" works like '*' in wildcard matching
	// over segments: remember the last one and, on a mismatch, let it
	// swallow one more segment.
	n := len(path)
	si, pos := 0, 0
	starSi, starPos := -1, 0
	for {
		if si < len(g.segs) {
			s := &g.segs[si]
			if s.kind == segDoubleStar {
				starSi, starPos = si, pos
				si++
				continue
			}
			if pos <= n {
				end := segEnd(path, pos)
				if s.match(path[pos:end]) {
					si++
					pos = end + 1
					continue
				}
			}
		} else if pos > n {
			return true
		}
		if starSi >= 0 && starPos <= n {
			starPos = segEnd(path, starPos) + 1
			pos = starPos
			si = starSi + 1
			continue
		}
		return false
	}
}

// segEnd returns the offset of the '/' ending the segment starting at pos,
// or len(path).
func segEnd(path string, pos int) int {
	if i := strings.IndexByte(path[pos:], '/'); i >= 0 {
		return pos + i
	}
	return len(path)
}

func (s *segment) match(name string) bool {
	switch s.kind {
	case segLiteral:
		return name == s.lit
	case segStar:
		return true
	case segPrefix:
		return strings.HasPrefix(name, s.lit)
	case segSuffix:
		return strings.HasSuffix(name, s.lit)
	case segContains:
		return strings.Contains(name, s.lit)
	}
	return matchTokens(s.toks, name)
}

// matchTokens is wildcard matching with one backtrack point: every token
// but '*' matches in at most one way, so trying the leftmost match of each
// run between stars is enough.
func matchTokens(toks []token, name string) bool {
	ti, ni := 0, 0
	starTi, starNi := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tokStar:
				starTi, starNi = ti, ni
				ti++
				continue
			case tokLit:
				if strings.HasPrefix(name[ni:], t.lit) {
					ni += len(t.lit)
					ti++
					continue
				}
			case tokAny:
				if ni < len(name) {
					_, w := utf8.DecodeRuneInString(name[ni:])
					ni += w
					ti++
					continue
				}
			case tokClass:
				if ni < len(name) {
					r, w := utf8.DecodeRuneInString(name[ni:])
					if t.class.match(r) {
						ni += w
						ti++
						continue
					}
				}
			}
		} else if ni == len(name) {
			return true
		}
		if starTi >= 0 && starNi < len(name) {
			_, w := utf8.DecodeRuneInString(name[starNi:])
			starNi += w
			ni = starNi
			ti = starTi + 1
			continue
		}
		return false
	}
}
