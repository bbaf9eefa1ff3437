package web

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Review of the web side door (operators' view). Each test names what an
// operator or an attacker would otherwise get.

// Without authentication the listener is on loopback, but a web page the
// operator visits can still reach it through DNS rebinding: its own name
// resolved to 127.0.0.1, so the browser calls the request same-origin
// (Sec-Fetch-Site and Origin agree) and lets the page read the calls and
// the form token and end calls. The Host header gives it away: a request
// for a name other than a loopback address or localhost is refused.
func TestReviewNoAuthRefusesAForeignHostName(t *testing.T) {
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
func TestReviewNotFoundTerminatePageStillListsTheCalls(t *testing.T) {
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
