// Package browser drives Debian's Chromium, headless, from Go tests and
// benchmarks (with chromedp, the only package that imports it): a fresh
// profile per browser, every console error, uncaught exception and browser
// log error (a refused Content-Security-Policy, a failed request) collected
// and failing the test, and screenshots saved where the test run keeps its
// artifacts.
//
// Chromium comes from Debian (`apt-get install -y chromium`,
// deploy/setup.sh installs it); FLEETGATE_CHROMIUM names another binary.
// Artifacts go to $FLEETGATE_ARTIFACTS/<test name>, by default
// bin/artifacts/<test name> at the repository root (git-ignored).
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fleetgate/fleetgate/internal/testenv"
)

// DefaultTimeout bounds one Run of actions: a liveness guard, not a measure.
const DefaultTimeout = 60 * time.Second

// Browser is one headless Chromium with one tab. Start it; the test's
// cleanup closes it and fails the test on any error the page reported.
type Browser struct {
	t         testing.TB
	ctx       context.Context
	artifacts string
	shots     int

	mu     sync.Mutex
	errors []string
	logs   []string
}

// Options adjust a Browser; the zero value is a 1400×900 window.
type Options struct {
	Width, Height int
}

// Binary returns the Chromium to run: $FLEETGATE_CHROMIUM, else chromium
// on PATH or /usr/bin/chromium; it fails the test, naming the package to
// install, when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("FLEETGATE_CHROMIUM"); b != "" {
		return b
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no Chromium: install Debian's with `apt-get install -y chromium` (deploy/setup.sh does), or set FLEETGATE_CHROMIUM")
	return ""
}

// Start runs a headless Chromium with a fresh profile and opens a tab.
func Start(t testing.TB, o Options) *Browser {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 1400, 900
	}
	b := &Browser{t: t, artifacts: ArtifactsDir(t)}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Binary(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(o.Width, o.Height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		b.mu.Lock()
		defer b.mu.Unlock()
		if t.Failed() && len(b.logs) > 0 {
			t.Logf("the page's console and log:\n  %s", strings.Join(b.logs, "\n  "))
		}
		if len(b.errors) > 0 {
			t.Errorf("the page reported %d error(s):\n  %s", len(b.errors), strings.Join(b.errors, "\n  "))
		}
	})
	if err := chromedp.Listen(ctx, b.listen); err != nil { // starts the browser
		t.Fatalf("start %s: %v", Binary(t), err)
	}
	return b
}

// listen keeps the page's console output, exceptions and log entries.
func (b *Browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range e.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		line := fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
		b.logs = append(b.logs, line)
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			b.errors = append(b.errors, line)
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		b.errors = append(b.errors, fmt.Sprintf("exception: %s (%s:%d:%d)", msg, d.URL, d.LineNumber, d.ColumnNumber))
	case *cdplog.EventEntryAdded:
		line := fmt.Sprintf("log %s/%s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
		b.logs = append(b.logs, line)
		if e.Entry.Level == cdplog.EntryLevelError {
			b.errors = append(b.errors, line)
		}
	}
}

// Errors returns what the page reported as errors so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// Run runs actions in the tab within DefaultTimeout, failing the test on
// an error.
func (b *Browser) Run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.Screenshot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its value
// into out (which may be nil).
func (b *Browser) Eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, DefaultTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return fmt.Errorf("evaluate %s: %w", expr, err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Until polls cond (an error when the page is not there yet) until it
// holds, failing the test with its last error after within; it also fails
// at once when the page reported an error meanwhile.
func (b *Browser) Until(within time.Duration, what string, cond func() error) {
	b.t.Helper()
	failed := false
	testenv.Eventually(shotOnFail{b, what}, within, what, func() error {
		if errs := b.Errors(); len(errs) > 0 {
			failed = true
			return nil
		}
		return cond()
	})
	if failed {
		b.Screenshot("failed-" + what)
		b.t.Fatalf("waiting for %s: the page reported errors:\n  %s", what, strings.Join(b.Errors(), "\n  "))
	}
}

// shotOnFail takes a screenshot before it fails the test.
type shotOnFail struct {
	b    *Browser
	what string
}

func (s shotOnFail) Helper() { s.b.t.Helper() }

func (s shotOnFail) Fatalf(format string, args ...any) {
	s.b.t.Helper()
	s.b.Screenshot("failed-" + s.what)
	s.b.t.Fatalf(format, args...)
}

// Context returns the tab's context, for chromedp calls of one's own.
func (b *Browser) Context() context.Context { return b.ctx }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves the tab as NN-name.png in the artifacts directory,
// logs its path and returns it.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	b.shots++
	path := filepath.Join(b.artifacts, fmt.Sprintf("%02d-%s.png", b.shots, strings.Trim(unsafeName.ReplaceAllString(name, "-"), "-")))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactsDir returns (and makes) the directory where test's artifacts
// go: $FLEETGATE_ARTIFACTS/<test name>, else bin/artifacts/<test name> at
// the repository root. What an earlier run of the same test left there is
// removed first.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("FLEETGATE_ARTIFACTS")
	if root == "" {
		root = filepath.Join(testenv.ModuleRoot(t), "bin", "artifacts")
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// NodeCount returns how many nodes match a CSS selector now.
func (b *Browser) NodeCount(sel string) (int, error) {
	var n int
	err := b.Eval(fmt.Sprintf("document.querySelectorAll(%q).length", sel), &n)
	return n, err
}

// Text returns the text of the first node a CSS selector matches ("" and
// an error when none does).
func (b *Browser) Text(sel string) (string, error) {
	var s *string
	if err := b.Eval(fmt.Sprintf("document.querySelector(%q)?.textContent ?? null", sel), &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", fmt.Errorf("no %s on the page", sel)
	}
	return *s, nil
}
