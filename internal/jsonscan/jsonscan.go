// Package jsonscan checks JSON syntax and splits objects into members in a
// single pass, without decoding values. The webhook intake uses it to check
// a delivery's routing fields before answering, instead of decoding the
// whole payload (the workers decode it later). Valid answers exactly as
// encoding/json.Valid does (FuzzValidAgrees holds it to that).
package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// maxDepth is encoding/json's nesting limit: deeper input is a syntax
// error there, so it is one here.
const maxDepth = 10000

// Valid reports whether b is one JSON value, with optional white space
// around it.
func Valid(b []byte) bool {
	i, ok := value(b, space(b, 0), 0)
	return ok && space(b, i) == len(b)
}

// ValidEach is Valid and, when b is an object, Each, in one pass: the
// intake checks a body and splits it at once. isObject is false, calling
// fn for nothing, when b is not an object. fn is called for members as
// they are checked, so when valid is false it may have been called for
// some: the caller must drop what it was given.
func ValidEach(b []byte, fn func(key, value []byte)) (valid, isObject bool) {
	i := space(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Valid(b), false
	}
	end, ok := members(b, i, 1, fn)
	return ok && space(b, end) == len(b), true
}

// Each calls fn with the raw key (between its quotes, escapes as written)
// and the raw value of every member of the object obj, in order. obj must
// be valid (Valid); white space around it is allowed. Each returns false,
// calling fn for nothing, when obj is not an object.
//
// Each does not check obj again: it skips over values, finding only where
// they end. On input that is not valid its answer means nothing, though it
// neither panics nor loops.
func Each(obj []byte, fn func(key, value []byte)) bool {
	i := space(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = space(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) && obj[i] == '"' {
		k := skipStr(obj, i)
		key := obj[i+1 : max(i+1, k-1)]
		v := space(obj, space(obj, k)+1) // past ':'
		end := skip(obj, v)
		fn(key, obj[min(v, end):end])
		i = space(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			break
		}
		i = space(obj, i+1)
	}
	return true
}

// skip returns the end of the valid value at b[i] (at most len(b)).
func skip(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipStr(b, i)
	case '{', '[':
		return skipNested(b, i)
	}
	for i < len(b) && scalar[b[i]] { // a number or literal
		i++
	}
	return i
}

// scalar marks the bytes of numbers and of true, false and null.
var scalar = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eEtrufalsn") {
		t[c] = true
	}
	return t
}()

// skipStr returns the end (past the closing quote, at most len(b)) of the
// valid string at b[i]. Escapes are not checked, only stepped over: no
// escape's second byte ends a string.
func skipStr(b []byte, i int) int {
	for i++; i < len(b); i += 2 {
		i = quoteOrSlash(b, i)
		if i < len(b) && b[i] == '"' {
			return i + 1
		}
	}
	return len(b)
}

// quoteOrSlash returns the index of the first '"' or '\\' from b[i] on
// (len(b) when there is none), eight bytes at a time.
func quoteOrSlash(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		if m := (zero(v^quotes) | zero(v^slashs)) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && b[i] != '"' && b[i] != '\\' {
		i++
	}
	return i
}

// skipNested returns the end (at most len(b)) of the valid object or
// array at b[i], counting brackets outside strings. It reads a word at a
// time and visits only the bytes that may be a quote, a backslash or a
// bracket (marks), keeping its state (depth, in a string, escaped up to)
// across words: valid input leaves nothing else to look at.
func skipNested(b []byte, i int) int {
	depth, inStr, from := 0, false, i // from: bytes before it are escaped
	for ; i+8 <= len(b); i += 8 {
		for m := marks(binary.LittleEndian.Uint64(b[i:])); m != 0; m &= m - 1 {
			j := i + bits.TrailingZeros64(m)/8
			if j < from {
				continue
			}
			switch b[j] {
			case '"':
				inStr = !inStr
			case '\\':
				from = j + 2
			case '{', '[':
				if !inStr {
					depth++
				}
			case '}', ']':
				if !inStr {
					if depth--; depth == 0 {
						return j + 1
					}
				}
			}
		}
	}
	for i = max(i, from); i < len(b); i++ {
		switch b[i] {
		case '"':
			inStr = !inStr
		case '\\':
			i++
		case '{', '[':
			if !inStr {
				depth++
			}
		case '}', ']':
			if !inStr {
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	return len(b)
}

// marks sets the high bit of each byte of v that is '"', '\\' or a
// bracket, and of 0x02 and '|' too: a byte ORed with 0x20 is '"' only for
// 0x02 and '"', '{' only for '[' and '{', '}' only for ']' and '}', '|'
// only for '\\' and '|'. Unlike zero it is exact in every byte, so all the
// marks of a word can be visited.
func marks(v uint64) uint64 {
	v |= spaces
	return eq(v, quotes) | eq(v, opens) | eq(v, closes) | eq(v, bars)
}

// eq sets the high bit of each byte of v equal to the byte of c, exactly:
// no carry crosses a byte.
func eq(v, c uint64) uint64 {
	t := v ^ c
	return ^((t&lows + lows) | t | lows)
}

func space(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r':
			i++
		case '\n':
			i = indent(b, i+1)
		default:
			return i
		}
	}
	return i
}

// indent returns the end of the run of spaces at b[i], a word at a time:
// pretty-printed payloads (Bitbucket's documented examples among them) are
// a quarter indentation.
func indent(b []byte, i int) int {
	for i+8 <= len(b) {
		n := bits.TrailingZeros64(binary.LittleEndian.Uint64(b[i:])^spaces) / 8
		i += n
		if n < 8 {
			break
		}
	}
	return i
}

// value returns the end of the value starting at b[i].
func value(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{':
		return object(b, i, depth+1)
	case c == '[':
		return array(b, i, depth+1)
	case c == '"':
		return str(b, i)
	case c == '-' || '0' <= c && c <= '9':
		return number(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return i, false
}

func object(b []byte, i, depth int) (int, bool) {
	return members(b, i, depth, nil)
}

// members is object, calling fn (when not nil) for each member as Each
// does once the member is checked.
func members(b []byte, i, depth int, fn func(key, value []byte)) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = space(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		k, ok := str(b, i)
		if !ok {
			return k, false
		}
		key := b[i+1 : k-1]
		i = space(b, k)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		v := space(b, i+1)
		if i, ok = value(b, v, depth); !ok {
			return i, false
		}
		if fn != nil {
			fn(key, b[v:i])
		}
		i = space(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = space(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func array(b []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = space(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = value(b, i, depth); !ok {
			return i, false
		}
		i = space(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = space(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// plain marks the bytes a string holds without an escape: not '"', not
// '\\', not a control character. Bytes of 0x80 and above are kept as
// encoding/json keeps them (invalid UTF-8 is not a syntax error there).
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str returns the end (past the closing quote) of the string at b[i].
func str(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i++
	for {
		i = plainRun(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !hex(b[i+2]) || !hex(b[i+3]) || !hex(b[i+4]) || !hex(b[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

// SWAR constants: one byte repeated over a word.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = '"' * ones
	slashs = '\\' * ones
	spaces = ' ' * ones
	opens  = '{' * ones
	closes = '}' * ones
	bars   = '|' * ones
	lows   = 0x7f * ones
)

// plainRun returns the index of the first byte from b[i] on that is not
// plain (len(b) when there is none), reading eight bytes at a time: a JSON
// string's text is mostly plain runs longer than a word.
func plainRun(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// special sets the high bit of the bytes of v (little endian) that are
// '"', '\\' or below 0x20. A borrow can also set it in a byte above one
// that is set, never below, so the lowest set bit marks the first such
// byte exactly.
func special(v uint64) uint64 {
	return (zero(v^quotes) | zero(v^slashs) | (v-spaces)&^v) & highs
}

// zero sets the high bit of each zero byte of v, and maybe of bytes above
// one, and low bits that callers mask off with highs: (v - 0x01..) &^ v.
func zero(v uint64) uint64 {
	return (v - ones) &^ v
}

func hex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// number returns the end of -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}
