package daemon

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium; CI=true makes its absence a failure.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: CI needs it for the live calls page test (scripts/deps.sh installs it)")
	}
	t.Skip("chromium not installed (scripts/deps.sh installs it)")
	return ""
}

// The live calls page in a real browser against a daemon carrying calls:
// the calls appear, the countdown moves, and End (after the page's
// confirmation) ends the call at the proxy's management socket.
func TestWebPageInBrowser(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t, "limit = 3600", httpLoopback)
	e.answered("browser-1@10.0.0.1", "alice")
	e.answered("browser-2@10.0.0.1", "bob")
	e.call(initReq("browser-3@10.0.0.1", "carol")) // pending

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 700),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	row := `tr[data-callid="browser-1@10.0.0.1"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.url("/")),
		chromedp.WaitVisible(row),
		// The script has taken over once the footer says "Live".
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('updated').textContent.startsWith('Live, updated')`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the script never refreshed the page: %v", err)
	}
	first := text(t, ctx, row+` td.remaining`)
	count := text(t, ctx, `#count`)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#calls tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 3 || !strings.Contains(count, "3 calls: 2 in progress, 1 pending") {
		t.Fatalf("%d rows, count %q", rows, count)
	}
	// The countdown moves without a reload: wait until the text changes.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('`+row+` td.remaining').textContent !== `+jsString(first),
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("countdown stuck at %q: %v", first, err)
	}
	later := text(t, ctx, row+` td.remaining`)
	if !(later < first) || !strings.HasPrefix(first, "59:") && !strings.HasPrefix(first, "1:00:00") {
		t.Errorf("countdown went from %q to %q", first, later)
	}

	// A call set up meanwhile appears without a reload.
	e.call(initReq("browser-4@10.0.0.1", "dave"))
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`tr[data-callid="browser-4@10.0.0.1"]`)); err != nil {
		t.Fatal(err)
	}

	shot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		dir := os.Getenv("CALLCONTROL_TEST_OUTPUT")
		if dir == "" {
			dir = t.ArtifactDir()
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	shot("live-calls.png")

	// End: the page asks first; Cancel ends nothing. The page sends a
	// terminate from its dialog's close handler; count what it fetches
	// there, and the closes seen by a listener added after the page's own,
	// which runs after it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
		window.testEnds = 0; window.testCloses = 0;
		var f = window.fetch;
		window.fetch = function (url) {
			if (String(url).indexOf('/terminate') >= 0) window.testEnds++;
			return f.apply(this, arguments);
		};
		document.getElementById('confirm').addEventListener('close', function () { window.testCloses++; });
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(row+` button`),
		chromedp.WaitVisible(`#confirm-cancel`),
		chromedp.Click(`#confirm-cancel`),
		chromedp.WaitNotVisible(`#confirm`),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.testCloses === 1`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the confirmation did not close: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.testEnds`)); err != nil || n != 0 {
		t.Fatalf("cancel sent %d terminate requests (%v)", n, err)
	}
	if n := e.kam.Len(); n != 0 {
		t.Fatalf("cancel sent %d dialog ends", n)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(row+` button`),
		chromedp.WaitVisible(`#confirm-end`),
	); err != nil {
		t.Fatal(err)
	}
	shot("confirm.png")
	if err := chromedp.Do(ctx,
		chromedp.Click(`#confirm-end`),
		chromedp.WaitVisible(`#result.ok`),
		chromedp.WaitNotPresent(row),
	); err != nil {
		t.Fatal(err)
	}
	// The count above sees the page's terminate.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.testEnds`)); err != nil || n != 1 {
		t.Fatalf("End sent %d terminate requests (%v), want 1", n, err)
	}
	result := text(t, ctx, `#result`)
	if !strings.Contains(result, "browser-1@10.0.0.1 ended") {
		t.Errorf("result %q", result)
	}
	reqs := e.kam.WaitFor(1, 10*time.Second)
	if len(reqs) != 1 || !reqs[0].Valid || reqs[0].Key() != "1:2" {
		t.Fatalf("proxy got %+v", reqs)
	}
	if _, ok := e.d.sessions.Get("browser-1@10.0.0.1"); ok {
		t.Error("the call is still tracked")
	}
	shot("after-end.png")

	// A phone-sized window gets cards, not a table wider than the screen.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Reload(),
		chromedp.WaitVisible(`tr[data-callid="browser-2@10.0.0.1"]`),
	); err != nil {
		t.Fatal(err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 390 {
		t.Errorf("page is %d px wide on a 390 px phone", width)
	}
	shot("phone.png")
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return s
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
