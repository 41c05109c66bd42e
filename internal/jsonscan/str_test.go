package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The bytes that may end a plain run, and bytes around them that must not.
var edgeBytes = []byte{'"', '\\', 0x00, 0x01, 0x02, 0x1f, 0x20, '!', '#', '[', ']', '\\' - 1, '\\' + 1, 0x7f, 0x80, 0xa2, 0xdc, 0xff}

// Every edge byte at every offset of strings of 0 to 24 bytes: str, which
// reads a word at a time, must stop where encoding/json does, whatever the
// filler (ASCII, or bytes of 0x80 and above) and whatever follows.
func TestStrWordEdges(t *testing.T) {
	for _, fill := range []byte{'a', 0x80, 0xff} {
		for n := 0; n <= 24; n++ {
			for off := 0; off <= 16 && off < max(n, 1); off++ {
				for _, c := range edgeBytes {
					s := bytes.Repeat([]byte{fill}, n)
					if n > 0 {
						s[off] = c
					}
					for _, tail := range []string{``, `,"b":"xyzzyxyzzy"}`} {
						checkString(t, s, tail)
					}
				}
			}
		}
	}
}

// Escapes, whole or cut short, straddling each word boundary.
func TestStrEscapesAcrossWords(t *testing.T) {
	escapes := []string{`\"`, `\\`, `\/`, `\n`, `\u00e9`, `\uD83D\uDE00`, `\u00e`, `\x`, `\`, `\\\"`, `\\\\`, `\\\\"`}
	for _, esc := range escapes {
		for off := 0; off <= 16; off++ {
			for n := off; n <= off+9; n++ {
				s := []byte(strings.Repeat("a", off) + esc + strings.Repeat("b", n-off))
				checkString(t, s, ``)
				checkString(t, s, `,"b":"xyzzyxyzzy"}`)
			}
		}
	}
}

// Indentation of every length after a newline, mixed with the other white
// space and with bytes that are not white space: indent skips spaces a word
// at a time and must stop at the first other byte.
func TestIndentRuns(t *testing.T) {
	for n := 0; n <= 20; n++ {
		ind := strings.Repeat(" ", n)
		for _, after := range []string{``, "\t", "\r\n", "\n" + ind, "\v", "\x00", "x", "\xa0"} {
			for _, doc := range []string{
				"{\n" + ind + after + `"a":1` + "\n" + ind + after + "}",
				"[\n" + ind + after + "1,\n" + ind + after + "2" + "\n" + ind + after,
				"\n" + ind + after + "true",
			} {
				if got, want := Valid([]byte(doc)), json.Valid([]byte(doc)); got != want {
					t.Errorf("Valid(%q) = %v, encoding/json says %v", doc, got, want)
				}
			}
		}
	}
}
