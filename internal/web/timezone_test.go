package web

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Times on the script-less page say their date and zone, as the CLI
// prints them (`2026-11-30 08:00:00 UTC`, the daemon host's zone); the
// <time> element carries the instant in RFC 3339.
func TestPageTimesSayTheirZone(t *testing.T) {
	ts := newServer(t, fakeBackend(), "", "")
	_, body := do(t, ts, req{method: "GET", path: "/"})
	want := answered.Local().Format("2006-01-02 15:04:05 MST")
	if !strings.Contains(body, `<time datetime="2026-11-30T08:00:00Z">`+want+`</time>`) {
		t.Errorf("the answer time is not shown as %q with its instant:\n%s", want, body)
	}
	zone := time.Now().Format("MST")
	if !regexp.MustCompile(`Shown at \d\d:\d\d:\d\d ` + regexp.QuoteMeta(zone) + `\b`).MatchString(body) {
		t.Errorf("the page's time does not say its zone %s", zone)
	}
}

// The JSON the page reads carries each time's zone (RFC 3339 with Z or
// an offset), as `callcontrol --json` does.
func TestAPITimesSayTheirZone(t *testing.T) {
	ts := newServer(t, fakeBackend(), "", "")
	_, body := do(t, ts, req{method: "GET", path: "/api/v1/sessions"})
	var raw []map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	zoned := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
	seen := 0
	for _, s := range raw {
		for _, k := range []string{"created", "answered"} {
			if v, ok := s[k]; ok {
				seen++
				if str, _ := v.(string); !zoned.MatchString(str) {
					t.Errorf("%s = %v: no zone", k, v)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatalf("no times in %s", body)
	}
}

// With the script, the page shows times in the browser's zone, and says
// which: a browser in New York shows the call answered at 08:00 UTC as
// 03:00 EST, with its date; the footer's time says its zone too.
func TestPageScriptTimesSayTheirZone(t *testing.T) {
	ctx := browser(t)
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, fakeBackend(), "", "")
	live(t, ctx, ts.URL+"/")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('tr[data-callid="a/1@host"] td.answered').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "2026-11-30 03:00:00 EST" {
		t.Errorf("answered shown as %q, want 2026-11-30 03:00:00 EST", got)
	}
	updated, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('updated').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^Live, updated \d\d:\d\d:\d\d E[SD]T$`).MatchString(updated) {
		t.Errorf("footer %q does not say its zone", updated)
	}
}
