// Package browsertest loads rolekeeper's pages in a real headless Chromium
// (Debian's chromium, driven over the DevTools protocol with chromedp) and
// measures what a reader would see: elements past the edge of the
// viewport, charts without a title or text alternative, table cells
// narrower than their longest word, words broken over two lines. It also
// saves a full-page screenshot for a person to look at.
//
// Without chromium a test using it skips with one loud line; with
// ROLEKEEPER_REQUIRE_BROWSER=1 (CI) it fails instead.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// EnvRequire makes a missing browser a failure, not a skip.
const EnvRequire = "ROLEKEEPER_REQUIRE_BROWSER"

// EnvArtifacts is where screenshots go; default testdata/out at the
// module root (ignored by git).
const EnvArtifacts = "ROLEKEEPER_ARTIFACTS"

// EnvChromium names the browser binary; default chromium on the PATH.
const EnvChromium = "ROLEKEEPER_CHROMIUM"

// Browser is one headless Chromium for a test.
type Browser struct {
	ctx context.Context
}

// Start launches Chromium with a fresh profile and no background
// networking (this network refuses it), stopped when the test ends.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := findChromium()
	if path == "" {
		const missing = "no chromium found (apt-get install -y chromium, or set " + EnvChromium + ")"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal("BROWSER CHECK FAILED: " + missing + " and " + EnvRequire + "=1")
		}
		t.Skip("BROWSER CHECK SKIPPED: " + missing + "; set " + EnvRequire + "=1 to fail instead")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	parent, cancelTimeout := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc(); cancelTimeout() })
	// Launch now, so that a broken install fails here with a clear error.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &Browser{ctx: ctx}
}

func findChromium() string {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// View is how a page is looked at.
type View struct {
	Width  int64
	Height int64 // default 900
	Dark   bool  // prefers-color-scheme: dark
	Print  bool  // the print stylesheet (at the width of A4 less margins: use 700)
	// Screenshot takes a full-page PNG into Page.Screenshot (the slowest
	// step: about a second for a long page).
	Screenshot bool
}

// Page is what the browser measured on one page in one view.
type Page struct {
	Viewport    int      `json:"viewport"`
	ScrollWidth int      `json:"scrollWidth"`
	Elements    int      `json:"elements"`
	Cells       int      `json:"cells"`
	Words       int      `json:"words"`
	Charts      int      `json:"charts"`
	Overflows   []string `json:"overflows"`   // elements past the right or left edge
	Untitled    []string `json:"untitled"`    // <svg> without a non-empty <title>
	Undescribed []string `json:"undescribed"` // <svg> without a non-empty <desc> (text alternative)
	NarrowCells []string `json:"narrowCells"` // cells narrower than their longest word
	BrokenWords []string `json:"brokenWords"` // words laid out over two lines
	Screenshot  []byte   `json:"-"`           // full page, PNG
}

// Problems lists everything a reader would trip over, empty when none.
func (p *Page) Problems() []string {
	var out []string
	if p.ScrollWidth > p.Viewport {
		out = append(out, fmt.Sprintf("the page scrolls sideways: %d px wide in a %d px viewport", p.ScrollWidth, p.Viewport))
	}
	add := func(what string, xs []string) {
		for i, x := range xs {
			if i == 10 {
				out = append(out, fmt.Sprintf("%s: … and %d more", what, len(xs)-10))
				break
			}
			out = append(out, what+": "+x)
		}
	}
	add("overflows the viewport", p.Overflows)
	add("chart without a title", p.Untitled)
	add("chart without a text alternative", p.Undescribed)
	add("cell narrower than its longest word", p.NarrowCells)
	add("word broken over two lines", p.BrokenWords)
	return out
}

// Load opens url in the view, measures the page and, when the view asks,
// takes a full-page screenshot.
func (b *Browser) Load(t testing.TB, url string, v View) *Page {
	t.Helper()
	if v.Height == 0 {
		v.Height = 900
	}
	media := &emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}}
	if v.Dark {
		media.Features[0].Value = "dark"
	}
	if v.Print {
		media.Media = "print"
	}
	err := chromedp.Do(b.ctx,
		chromedp.EmulateViewport(v.Width, v.Height),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, *media)
			return err
		}),
		chromedp.Navigate(url),
	)
	if err != nil {
		t.Fatalf("load %s at %d px: %v", url, v.Width, err)
	}
	p, err := chromedp.Run(b.ctx, chromedp.Evaluate[*Page](measureJS))
	if err != nil {
		t.Fatalf("measure %s at %d px: %v", url, v.Width, err)
	}
	if !v.Screenshot {
		return p
	}
	if p.Screenshot, err = chromedp.Run(b.ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatalf("screenshot %s at %d px: %v", url, v.Width, err)
	}
	return p
}

// SaveScreenshot writes the page's screenshot as <dir>/<name>.png and
// returns the path; dir is ArtifactDir.
func SaveScreenshot(t testing.TB, p *Page, name string) string {
	t.Helper()
	dir := ArtifactDir(t)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, p.Screenshot, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	return path
}

// ArtifactDir is $ROLEKEEPER_ARTIFACTS, or testdata/out at the module
// root; it is created when missing.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("artifacts: %v", err)
		}
		dir = filepath.Join(root, "testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// measureJS runs in the page.
const measureJS = `(() => {
  const vw = document.documentElement.clientWidth;
  const out = {viewport: vw, scrollWidth: document.documentElement.scrollWidth, elements: 0, cells: 0, words: 0, charts: 0,
    overflows: [], untitled: [], undescribed: [], narrowCells: [], brokenWords: []};
  const desc = el => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const cls = el.getAttribute('class');
    if (cls) s += '.' + cls.trim().split(/\s+/).join('.');
    const t = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 50);
    return t ? s + ' "' + t + '"' : s;
  };
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    out.elements++;
    if (r.right > vw + 0.5 || r.left < -0.5) out.overflows.push(desc(el) + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px');
  }
  for (const svg of document.querySelectorAll('svg')) {
    out.charts++;
    const t = svg.querySelector(':scope > title');
    if (!t || !t.textContent.trim()) out.untitled.push(desc(svg));
    const d = svg.querySelector(':scope > desc');
    if (!d || !d.textContent.trim()) out.undescribed.push(desc(svg));
  }
  // A word is a run of letters, digits and marks: a line may break at a
  // space, after '/' or '-', or wherever Unicode allows between
  // punctuation, but never inside a word.
  const wordRE = /[\p{L}\p{N}\p{M}]+/gu;
  const ctx = document.createElement('canvas').getContext('2d');
  for (const cell of document.querySelectorAll('td, th')) {
    if (cell.getBoundingClientRect().width === 0) continue;
    out.cells++;
    const cs = getComputedStyle(cell);
    const inner = cell.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    let longest = 0, word = '';
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (n.parentElement.closest('svg')) continue;
      ctx.font = getComputedStyle(n.parentElement).font;
      for (const m of n.data.matchAll(wordRE)) {
        const wd = ctx.measureText(m[0]).width;
        if (wd > longest) { longest = wd; word = m[0]; }
      }
    }
    if (longest > inner + 1) out.narrowCells.push(desc(cell) + ': ' + Math.round(inner) + ' px for "' + word + '" (' + Math.round(longest) + ' px)');
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement || n.parentElement.closest('svg, style, script')) continue;
    for (const m of n.data.matchAll(wordRE)) {
      range.setStart(n, m.index);
      range.setEnd(n, m.index + m[0].length);
      const tops = new Set();
      for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) tops.add(Math.round(r.top));
      if (tops.size === 0) continue;
      out.words++;
      if (tops.size > 1) out.brokenWords.push('"' + m[0] + '" in ' + desc(n.parentElement));
    }
  }
  return out;
})()`
