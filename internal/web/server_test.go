package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
	"golang.org/x/crypto/bcrypt"
)

var answered = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func fakeBackend() *controltest.Backend {
	return controltest.New(control.Stats{Sessions: map[string]int{"pending": 1, "in-progress": 1}, Parties: 2,
		EnginesUp: 1, EnginesTotal: 2, DebitsWaiting: 3, DialogEndsPending: 0, StateSync: true, Version: "test"},
		control.SessionInfo{CallID: "a/1@host", Party: "alice@example.com", Destination: "sip:100@example.com",
			State: "in-progress", Answered: answered, Limit: 600, Remaining: 420, Prepaid: true},
		control.SessionInfo{CallID: "b-2@host", Party: "bob@example.com", Destination: "sip:200@example.com",
			State: "pending", Limit: -1, Remaining: -1})
}

// newServer serves a fake backend on loopback; user "" means no auth.
func newServer(t *testing.T, b control.Backend, user, password string) *httptest.Server {
	t.Helper()
	o := Options{Listen: "127.0.0.1:0", Backend: b, User: user}
	if user != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		o.PasswordHash = string(h)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.ln.Close() // httptest serves the handler instead
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type req struct {
	method, path string
	body         string
	header       map[string]string
	user, pass   string
}

func do(t *testing.T, ts *httptest.Server, r req) (*http.Response, string) {
	t.Helper()
	hr, err := http.NewRequest(r.method, ts.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	resp, err := ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRefusesPublicListenWithoutAuth(t *testing.T) {
	for _, listen := range []string{":9080", "0.0.0.0:9080", "192.0.2.1:9080", "[::]:9080"} {
		_, err := New(Options{Listen: listen, Backend: fakeBackend()})
		if err == nil || !strings.Contains(err.Error(), "reachable from other machines") {
			t.Errorf("%s: err = %v, want a refusal saying why", listen, err)
		}
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Backend: fakeBackend(), User: "op", PasswordHash: "secret"}); err == nil ||
		!strings.Contains(err.Error(), "bcrypt") {
		t.Errorf("clear-text password accepted: %v", err)
	}
}

func TestAPIShapes(t *testing.T) {
	ts := newServer(t, fakeBackend(), "", "")
	resp, body := do(t, ts, req{method: "GET", path: "/api/v1/sessions"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("sessions: %d %s", resp.StatusCode, body)
	}
	// The same field names as `callcontrol --json sessions`: control's tags.
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("sessions body %s: %v", body, err)
	}
	for _, k := range []string{"call_id", "party", "destination", "state", "prepaid", "limit", "remaining", "answered"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("session lacks %q: %v", k, list[0])
		}
	}
	var typed []control.SessionInfo
	json.Unmarshal([]byte(body), &typed)
	if typed[0].CallID != "a/1@host" || !typed[0].Answered.Equal(answered) || typed[0].Remaining != 420 {
		t.Errorf("session decoded as %+v", typed[0])
	}

	for _, c := range []struct{ path, want string }{
		{"/api/v1/sessions?party=bob", "b-2@host"},
		{"/api/v1/sessions?prefix=alice", "a/1@host"},
		{"/api/v1/sessions?state=pending", "b-2@host"},
	} {
		_, body := do(t, ts, req{method: "GET", path: c.path})
		json.Unmarshal([]byte(body), &typed)
		if len(typed) != 1 || typed[0].CallID != c.want {
			t.Errorf("%s: %s", c.path, body)
		}
	}

	// A Call-ID with a slash, escaped or not.
	for _, p := range []string{"/api/v1/sessions/a/1@host", "/api/v1/sessions/" + url.PathEscape("a/1@host")} {
		resp, body = do(t, ts, req{method: "GET", path: p})
		var one control.SessionInfo
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &one) != nil || one.CallID != "a/1@host" {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
	}

	resp, body = do(t, ts, req{method: "GET", path: "/api/v1/stats"})
	var stats map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &stats) != nil {
		t.Fatalf("stats: %d %s", resp.StatusCode, body)
	}
	for _, k := range []string{"sessions", "parties", "engines_up", "engines_total", "debits_waiting", "dialog_ends_pending",
		"state_sync", "state_write_errors", "uptime_seconds", "requests", "version"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stats lacks %q: %s", k, body)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	ts := newServer(t, fakeBackend(), "", "")
	for _, c := range []struct {
		method, path string
		status       int
		code         string
		exit         int
	}{
		{"GET", "/api/v1/sessions/nope", 404, "not_found", 1},
		{"DELETE", "/api/v1/sessions/nope", 404, "not_found", 1},
		{"POST", "/api/v1/sessions", 405, "bad_request", 64},
		{"PUT", "/api/v1/sessions/a/1@host", 405, "bad_request", 64},
		{"DELETE", "/api/v1/stats", 405, "bad_request", 64},
		{"GET", "/api/v2/whatever", 404, "bad_request", 64},
		{"POST", "/metrics", 404, "", 0}, // no metrics configured here
		{"GET", "/terminate", 405, "bad_request", 64},
		{"POST", "/", 405, "bad_request", 64},
	} {
		resp, body := do(t, ts, req{method: c.method, path: c.path})
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, body)
			continue
		}
		if c.code == "" {
			continue
		}
		var e apiError
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.OK || e.Code != c.code || e.ExitStatus != c.exit || e.Error == "" {
			t.Errorf("%s %s: body %s, want code %s exit %d", c.method, c.path, body, c.code, c.exit)
		}
		if c.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

func TestAuth(t *testing.T) {
	b := fakeBackend()
	ts := newServer(t, b, "operator", "s3cret")
	for _, c := range []struct {
		name, user, pass string
		status           int
	}{
		{"none", "", "", 401},
		{"wrong password", "operator", "guess", 401},
		{"wrong user", "admin", "s3cret", 401},
		{"right", "operator", "s3cret", 200},
		{"right again (cached)", "operator", "s3cret", 200},
	} {
		for _, path := range []string{"/", "/api/v1/sessions", "/api/v1/stats", "/assets/app.js"} {
			resp, body := do(t, ts, req{method: "GET", path: path, user: c.user, pass: c.pass})
			if resp.StatusCode != c.status {
				t.Errorf("%s %s: %d, want %d", c.name, path, resp.StatusCode, c.status)
			}
			if c.status == 401 && (!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") || !strings.Contains(body, `"exit_status": 2`)) {
				t.Errorf("%s %s: 401 without a Basic challenge or JSON error: %s", c.name, path, body)
			}
		}
		resp, _ := do(t, ts, req{method: "DELETE", path: "/api/v1/sessions/b-2@host", user: c.user, pass: c.pass})
		if c.status == 401 && resp.StatusCode != 401 {
			t.Errorf("%s: DELETE answered %d", c.name, resp.StatusCode)
		}
	}
	if got := b.Terminated(); len(got) != 1 || got[0] != "b-2@host" {
		t.Errorf("terminated %v, want only the authorized one", got)
	}
	// Health checks stay open to load balancers.
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, _ := do(t, ts, req{method: "GET", path: p}); resp.StatusCode != 200 {
			t.Errorf("%s without auth: %d", p, resp.StatusCode)
		}
	}
}

var tokenRE = regexp.MustCompile(`name="token" value="([0-9a-f]+)"`)

func TestTerminateFormAndCSRF(t *testing.T) {
	b := fakeBackend()
	ts := newServer(t, b, "", "")
	_, page := do(t, ts, req{method: "GET", path: "/"})
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in the page:\n%s", page)
	}
	token := m[1]
	form := func(v url.Values) string { return v.Encode() }

	// Refused: no token, a wrong token, a cross-site browser request (even
	// with the right token), an Origin of another site.
	for _, c := range []struct {
		name   string
		body   string
		header map[string]string
	}{
		{"no token", form(url.Values{"call_id": {"a/1@host"}, "confirm": {"yes"}}), nil},
		{"wrong token", form(url.Values{"call_id": {"a/1@host"}, "confirm": {"yes"}, "token": {"00ff"}}), nil},
		{"cross-site", form(url.Values{"call_id": {"a/1@host"}, "confirm": {"yes"}, "token": {token}}),
			map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"other origin", form(url.Values{"call_id": {"a/1@host"}, "confirm": {"yes"}, "token": {token}}),
			map[string]string{"Origin": "https://evil.example"}},
	} {
		resp, body := do(t, ts, req{method: "POST", path: "/terminate", body: c.body, header: c.header})
		if resp.StatusCode != 403 || !strings.Contains(body, `"code": "denied"`) {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
		}
	}
	resp, body := do(t, ts, req{method: "DELETE", path: "/api/v1/sessions/a/1@host", header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	if resp.StatusCode != 403 {
		t.Errorf("cross-site DELETE: %d %s", resp.StatusCode, body)
	}
	if got := b.Terminated(); len(got) != 0 {
		t.Fatalf("refused requests terminated %v", got)
	}

	// Without JavaScript: the first POST asks, the second acts.
	resp, body = do(t, ts, req{method: "POST", path: "/terminate", body: form(url.Values{"call_id": {"a/1@host"}, "token": {token}})})
	if resp.StatusCode != 200 || !strings.Contains(body, "End this call?") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("confirmation page: %d\n%s", resp.StatusCode, body)
	}
	if len(b.Terminated()) != 0 {
		t.Fatal("terminated before confirmation")
	}
	resp, body = do(t, ts, req{method: "POST", path: "/terminate", body: form(url.Values{"call_id": {"a/1@host"}, "token": {token}, "confirm": {"yes"}}),
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "ended: the proxy confirmed") {
		t.Fatalf("after confirmation: %d\n%s", resp.StatusCode, body)
	}
	// Its refresh must not repeat the POST (a GET of /terminate is refused).
	if !strings.Contains(body, `content="10; url=/"`) {
		t.Errorf("the result page refreshes itself in place:\n%s", body)
	}
	// The script's way: JSON back, and the truth about a ringing call that
	// the proxy can end only once answered.
	b.SetTerminateOutcome(control.TerminateInfo{Outcome: control.TerminateAtAnswer})
	resp, body = do(t, ts, req{method: "POST", path: "/terminate", body: form(url.Values{"call_id": {"b-2@host"}, "token": {token}, "confirm": {"yes"}}),
		header: map[string]string{"Accept": "application/json"}})
	var res terminated
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Terminated || res.Outcome != control.TerminateAtAnswer ||
		!strings.Contains(res.Message, "will be ended the moment it is answered") {
		t.Fatalf("JSON terminate: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, ts, req{method: "POST", path: "/terminate", body: form(url.Values{"call_id": {"b-2@host"}, "token": {token}, "confirm": {"yes"}}),
		header: map[string]string{"Accept": "application/json"}})
	if resp.StatusCode != 404 || !strings.Contains(body, "does not exist") {
		t.Fatalf("terminate twice: %d %s", resp.StatusCode, body)
	}
	if got := b.Terminated(); len(got) != 2 {
		t.Errorf("terminated %v", got)
	}
}

func TestPage(t *testing.T) {
	ts := newServer(t, fakeBackend(), "", "")
	resp, body := do(t, ts, req{method: "GET", path: "/?state=in-progress"})
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh"`, // works without JavaScript
		`data-callid="a/1@host"`, `data-remaining="420"`, ">7:00<", ">10:00<",
		"1 shown of 2 calls: 1 in progress, 1 pending, 2 parties",
		"1/2 up", "Debits waiting", `<option value="in-progress" selected>`,
		`src="/assets/app.js"`, `name="viewport"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "b-2@host") {
		t.Error("the state filter let a pending call through")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, a := range []string{"/assets/app.js", "/assets/style.css"} {
		if resp, body := do(t, ts, req{method: "GET", path: a}); resp.StatusCode != 200 || len(body) < 500 {
			t.Errorf("%s: %d, %d bytes", a, resp.StatusCode, len(body))
		}
	}
}

func TestReadyz(t *testing.T) {
	var problems []string
	s, err := New(Options{Listen: "127.0.0.1:0", Backend: fakeBackend(), Ready: func() []string { return problems }})
	if err != nil {
		t.Fatal(err)
	}
	s.ln.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if resp, body := do(t, ts, req{method: "GET", path: "/readyz"}); resp.StatusCode != 200 || !strings.HasPrefix(body, "ready") {
		t.Errorf("ready: %d %s", resp.StatusCode, body)
	}
	problems = []string{"the state log's last write failed"}
	if resp, body := do(t, ts, req{method: "GET", path: "/readyz"}); resp.StatusCode != 503 || !strings.Contains(body, "not ready: the state log") {
		t.Errorf("not ready: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts, req{method: "GET", path: "/healthz"}); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}
