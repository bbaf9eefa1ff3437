package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
	"github.com/chromedp/chromedp"
)

// Review of the web side door (operators' view). Each test names what an
// operator or an attacker would otherwise get.

// Without authentication the listener is on loopback, but a web page the
// operator visits can still reach it through DNS rebinding: its own name
// resolved to 127.0.0.1, so the browser calls the request same-origin
// (Sec-Fetch-Site and Origin agree) and lets the page read the calls and
// the form token and end calls. The Host header gives it away: a request
// for a name other than a loopback address or localhost is refused.
func TestNoAuthRefusesAForeignHostName(t *testing.T) {
	b := fakeBackend()
	ts := newServer(t, b, "", "")
	port := ts.URL[strings.LastIndex(ts.URL, ":"):]
	get := func(host, path string, header map[string]string) (int, string) {
		t.Helper()
		hr, err := http.NewRequest("GET", ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		hr.Host = host
		for k, v := range header {
			hr.Header.Set(k, v)
		}
		resp, err := ts.Client().Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin"}
	for _, host := range []string{"rebind.evil.example" + port, "rebind.evil.example", "localhost.evil.example" + port} {
		for _, path := range []string{"/", "/api/v1/sessions", "/api/v1/sessions/a/1@host", "/api/v1/stats"} {
			code, body := get(host, path, sameOrigin)
			if code != http.StatusForbidden || strings.Contains(body, "a/1@host") || tokenRE.MatchString(body) {
				t.Errorf("Host %s, GET %s: %d\n%.300s", host, path, code, body)
			}
		}
	}
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "[::1]" + port, "127.0.0.1"} {
		if code, body := get(host, "/api/v1/sessions", sameOrigin); code != http.StatusOK {
			t.Errorf("Host %s: %d %.300s", host, code, body)
		}
	}
	// Probes may use any name: health says nothing about calls.
	if code, _ := get("callcontrol.example"+port, "/healthz", nil); code != http.StatusOK {
		t.Errorf("healthz by name: %d", code)
	}
}

// Without JavaScript, End on a call that ended meanwhile answers "does not
// exist" on a page that must still list the calls in progress: it said
// "No calls." above an empty table while calls were up.
func TestNotFoundTerminatePageStillListsTheCalls(t *testing.T) {
	b := fakeBackend()
	ts := newServer(t, b, "", "")
	_, page := do(t, ts, req{method: "GET", path: "/"})
	token := tokenRE.FindStringSubmatch(page)[1]
	resp, body := do(t, ts, req{method: "POST", path: "/terminate",
		body: url.Values{"call_id": {"gone@host"}, "token": {token}}.Encode()})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "call id gone@host does not exist") {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `data-callid="a/1@host"`) || !strings.Contains(body, `data-callid="b-2@host"`) {
		t.Errorf("the calls up are not listed:\n%s", body)
	}
	if strings.Contains(body, `<p id="empty" class="empty">`) {
		t.Errorf("the page says there are no calls while two are up:\n%s", body)
	}
}

// browser opens a headless chromium (Debian's; CI=true makes its absence
// a failure, as in the daemon's browser test).
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found: CI needs it for the page's tests (scripts/deps.sh installs it)")
		}
		t.Skip("chromium not installed (scripts/deps.sh installs it)")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// live opens path and waits until the script has refreshed the page once.
func live(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('updated').textContent.startsWith('Live, updated')`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the script never refreshed the page: %v", err)
	}
}

// End on a call the proxy has not confirmed ending (or a ringing call
// ended only at answer) must not be shown as a success: the server's
// script-less page colours it "bad" (Terminated false); the script
// coloured every 200 green.
func TestPageDoesNotShowAnUnconfirmedEndAsDone(t *testing.T) {
	ctx := browser(t)
	for _, outcome := range []string{control.TerminatePending, control.TerminateAtAnswer} {
		b := fakeBackend()
		b.SetTerminateOutcome(control.TerminateInfo{Outcome: outcome, Detail: "the proxy has not confirmed yet"})
		ts := newServer(t, b, "", "")
		live(t, ctx, ts.URL+"/")
		if err := chromedp.Do(ctx,
			chromedp.Click(`tr[data-callid="a/1@host"] button`),
			chromedp.WaitVisible(`#confirm-end`),
			chromedp.Click(`#confirm-end`),
			chromedp.WaitVisible(`#result`),
		); err != nil {
			t.Fatal(err)
		}
		cls, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('result').className`))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('result').textContent`))
		if strings.Contains(cls, "ok") {
			t.Errorf("%s: the result %q is shown as a success (class %q)", outcome, msg, cls)
		}
	}
}

// The page's ?limit= (how many calls it shows) stays when the operator
// filters: the script dropped it from the address, and from then on
// showed up to 1000 calls.
func TestPageKeepsItsLimitWhenFiltering(t *testing.T) {
	ctx := browser(t)
	var list []control.SessionInfo
	for i := range 3 {
		list = append(list, control.SessionInfo{CallID: fmt.Sprintf("c%d@host", i), Party: "alice@example.com",
			Destination: "sip:100@example.com", State: "in-progress", Limit: 600, Remaining: 420})
	}
	ts := newServer(t, controltest.New(control.Stats{Sessions: map[string]int{"in-progress": 3}, Parties: 1}, list...), "", "")
	live(t, ctx, ts.URL+"/?limit=1")
	rows := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#calls tbody tr').length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 1 {
		t.Fatalf("?limit=1 shows %d rows", n)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
		var f = document.getElementById('filter');
		f.elements.party.value = 'alice';
		window.testRefreshed = false;
		var g = window.fetch;
		window.fetch = function (url) {
			var p = g.apply(this, arguments);
			if (String(url).indexOf('party=alice') >= 0) p.then(function () { setTimeout(function () { window.testRefreshed = true; }, 100); });
			return p;
		};
		f.requestSubmit();
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.testRefreshed`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the filter never refreshed: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`))
	count, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('count').textContent`))
	if n := rows(); n != 1 || !strings.Contains(loc, "limit=1") || !strings.Contains(count, "1 oldest shown of 3 matching") {
		t.Errorf("after filtering: %d rows, address %q, count %q", n, loc, count)
	}
}

// A Call-ID, party and destination come from the network: markup in them
// is shown as text by the page and by its script, never run.
func TestPageShowsMarkupFromTheNetworkAsText(t *testing.T) {
	ctx := browser(t)
	evil := `<img src=x onerror="window.pwned=1">"'` + "`"
	b := controltest.New(control.Stats{Sessions: map[string]int{"in-progress": 1, "pending": 1}, Parties: 2},
		control.SessionInfo{CallID: evil + "@host", Party: evil + "@example.com", Destination: "sip:" + evil,
			State: "in-progress", Limit: 600, Remaining: 420},
		control.SessionInfo{CallID: "2" + evil, Party: evil, Destination: evil, State: "pending", Limit: -1, Remaining: -1})
	ts := newServer(t, b, "", "")
	// The server renders the call in progress; the script builds the
	// pending one's row when the filter lets it in.
	live(t, ctx, ts.URL+"/?state=in-progress")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
		var f = document.getElementById('filter');
		f.elements.state.value = '';
		f.requestSubmit();
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll('#calls tbody tr').length === 2`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(`#calls tbody tr:nth-child(1) button`),
		chromedp.WaitVisible(`#confirm-end`),
	); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.pwned) + ' ' + document.querySelectorAll('main img, dialog img').length + ' ' +
		document.querySelectorAll('#calls tbody tr')[1].cells[0].textContent + ' ' + document.getElementById('confirm-text').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	want := "undefined 0 " + evil + "@host " + evil + " \u2192 " + evil + " (2" + evil + ")"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A DELETE the proxy has not confirmed within the wait is not a success:
// `callcontrol terminate` exits 3 for it, and a script reading the API
// must not take 200 OK for an ended call. 202 Accepted says what
// happened: asked, kept and re-sent, not done yet.
func TestDeleteNotConfirmedIsAcceptedNotOK(t *testing.T) {
	b := fakeBackend()
	b.SetTerminateOutcome(control.TerminateInfo{Outcome: control.TerminatePending, Detail: "the proxy has not confirmed yet"})
	ts := newServer(t, b, "", "")
	resp, body := do(t, ts, req{method: "DELETE", path: "/api/v1/sessions/a/1@host"})
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"terminated": false`) {
		t.Errorf("DELETE, not confirmed: %d %s", resp.StatusCode, body)
	}
	_, page := do(t, ts, req{method: "GET", path: "/"})
	token := tokenRE.FindStringSubmatch(page)[1]
	resp, body = do(t, ts, req{method: "POST", path: "/terminate", header: map[string]string{"Accept": "application/json"},
		body: url.Values{"call_id": {"b-2@host"}, "token": {token}, "confirm": {"yes"}}.Encode()})
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"terminated": false`) {
		t.Errorf("the page's End, not confirmed: %d %s", resp.StatusCode, body)
	}
}

// The page's "Rating engines N/M up" counts an idle engine (its connection
// dropped after a timeout, reopened by the next prepaid call) as up, as
// callcontrol_engine_up and the sample alert do: it showed "1/2 up" in
// warning colours for two working engines. Server-rendered and script.
func TestEnginesChipCountsIdleEnginesUp(t *testing.T) {
	stats := control.Stats{Sessions: map[string]int{}, EnginesUp: 1, EnginesTotal: 3, StateSync: true,
		Engines: []control.EngineStatus{{Address: "10.0.0.1:9024", State: control.EngineConnected},
			{Address: "10.0.0.2:9024", State: control.EngineIdle},
			{Address: "10.0.0.3:9024", State: control.EngineUnreachable, Cause: "connection refused"}}}
	ts := newServer(t, controltest.New(stats), "", "")
	_, body := do(t, ts, req{method: "GET", path: "/"})
	if !strings.Contains(body, `<li id="engines" class="chip warn"><span>Rating engines</span> <b>2/3 up</b>`) {
		t.Errorf("server-rendered chip:\n%s", body[strings.Index(body, `<ul id="status"`):strings.Index(body, "</ul>")])
	}
	ctx := browser(t)
	live(t, ctx, ts.URL+"/")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('engines').className + ' ' + document.querySelector('#engines b').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "chip warn 2/3 up" {
		t.Errorf("script's chip: %q", got)
	}
}

// walkCounter counts the sessions a listing made the backend pass on.
type walkCounter struct {
	*controltest.Backend
	passed atomic.Int64
}

func (w *walkCounter) Sessions(ctx context.Context, prefix string, f func([]control.SessionInfo) error) error {
	return w.Backend.Sessions(ctx, prefix, func(chunk []control.SessionInfo) error {
		w.passed.Add(int64(len(chunk)))
		return f(chunk)
	})
}

// A state filter (no party) needs no walk of the whole table to say how
// many match: Stats counts by state. The page asks every 2 s; with
// ?state= it copied every session of a million-call table each time.
func TestStateFilterStopsAtTheLimit(t *testing.T) {
	w := &walkCounter{Backend: manyBackend()}
	ts := newServer(t, w, "", "")
	resp, body := do(t, ts, req{method: "GET", path: "/api/v1/sessions?state=pending&limit=10"})
	if resp.StatusCode != 200 || resp.Header.Get("X-Total-Count") != "300" || strings.Count(body, `"call_id"`) != 10 {
		t.Fatalf("%d, X-Total-Count %q, %.200s", resp.StatusCode, resp.Header.Get("X-Total-Count"), body)
	}
	// 10 pending are among the first 50 (one in five); a chunk beyond.
	if n := w.passed.Load(); n > 60 {
		t.Errorf("the listing walked %d sessions of 1500 for 10 pending ones", n)
	}
	w.passed.Store(0)
	_, body = do(t, ts, req{method: "GET", path: "/?state=in-progress&limit=20"})
	if n := w.passed.Load(); !strings.Contains(body, "20 oldest shown of 1200 matching") || n > 40 {
		t.Errorf("page: walked %d sessions; count line present: %v", n, strings.Contains(body, "20 oldest shown of 1200 matching"))
	}
}
