package report

import (
	"math"
	"regexp"
	"strconv"
	"testing"
)

// TestColourContrast: in the light and the dark palette every text colour
// keeps WCAG AA contrast (4.5:1) on every background it is drawn on.
func TestColourContrast(t *testing.T) {
	// The formula itself: #767676 on white is the lightest grey that passes.
	if contrast("#767676", "#fff") < 4.5 || contrast("#777", "#ffffff") >= 4.5 {
		t.Fatalf("contrast formula: %.3f %.3f", contrast("#767676", "#fff"), contrast("#777", "#ffffff"))
	}
	palettes := map[string]map[string]string{}
	block := regexp.MustCompile(`(?:^|\n)(@media \(prefers-color-scheme:dark\)\{)?:root\{([^}]*)\}`)
	decl := regexp.MustCompile(`--([a-z-]+):(#[0-9a-f]{3,6})`)
	for _, m := range block.FindAllStringSubmatch(pageHTML, -1) {
		name := "light"
		if m[1] != "" {
			name = "dark"
		}
		vars := map[string]string{}
		for _, d := range decl.FindAllStringSubmatch(m[2], -1) {
			vars[d[1]] = d[2]
		}
		palettes[name] = vars
	}
	if len(palettes) != 2 {
		t.Fatalf("found palettes %v, want light and dark", palettes)
	}
	pairs := [][2]string{ // text, background
		{"fg", "bg"}, {"fg", "card"}, {"fg", "head"}, {"muted", "bg"}, {"muted", "card"}, {"muted", "head"},
		{"link", "bg"}, {"link", "card"}, {"ok", "ok-bg"}, {"bad", "bad-bg"}, {"bad", "card"}, {"ok", "card"}, {"wait", "card"},
	}
	for name, vars := range palettes {
		for _, p := range pairs {
			fg, bg := vars[p[0]], vars[p[1]]
			if fg == "" || bg == "" {
				t.Errorf("%s palette lacks --%s or --%s", name, p[0], p[1])
				continue
			}
			if c := contrast(fg, bg); c < 4.5 {
				t.Errorf("%s: --%s %s on --%s %s has contrast %.2f, want at least 4.5", name, p[0], fg, p[1], bg, c)
			}
		}
	}
}

func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// luminance is WCAG's relative luminance of #rgb or #rrggbb.
func luminance(hex string) float64 {
	h := hex[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var ch [3]float64
	for i := range ch {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			ch[i] = c / 12.92
		} else {
			ch[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*ch[0] + 0.7152*ch[1] + 0.0722*ch[2]
}
