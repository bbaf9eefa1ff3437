package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// A terminate the daemon could not do (TerminateFailed: the daemon is
// stopping, or the proxy gave no usable dialog id) must not be told as
// "asked the proxy ..., not confirmed yet" with 200: the CLI exits 3 for
// it, and docs/web.md maps failed to 500.
func TestTerminateFailedIsAnError(t *testing.T) {
	b := fakeBackend()
	b.SetTerminateOutcome(control.TerminateInfo{Outcome: control.TerminateFailed, Detail: "callcontrold is stopping: nothing was done"})
	ts := newServer(t, b, "", "")
	resp, body := do(t, ts, req{method: "DELETE", path: "/api/v1/sessions/a%2F1@host"})
	if resp.StatusCode == http.StatusOK || !strings.Contains(body, `"code": "failed"`) || strings.Contains(body, "asked the proxy") {
		t.Errorf("DELETE of a call the daemon could not end: %d\n%s", resp.StatusCode, body)
	}
	_, page := do(t, ts, req{method: "GET", path: "/"})
	token := tokenRE.FindStringSubmatch(page)[1]
	form := url.Values{"call_id": {"b-2@host"}, "token": {token}, "confirm": {"yes"}}.Encode()
	resp, body = do(t, ts, req{method: "POST", path: "/terminate", body: form, header: map[string]string{"Accept": "application/json"}})
	if resp.StatusCode == http.StatusOK || !strings.Contains(body, `"code": "failed"`) || strings.Contains(body, "asked the proxy") {
		t.Errorf("the page's End of a call the daemon could not end: %d\n%s", resp.StatusCode, body)
	}
}

// A Call-ID may hold "/" (RFC 3261 word) and docs/web.md says "/ may
// stay"; the mux must not redirect a DELETE of "x/../y@host" (or
// "x//y@host") to another call's URL: a client following the 307 (curl
// -L, Go, Python requests) would end a call the operator did not name.
func TestDeleteNeverRedirectsToAnotherCall(t *testing.T) {
	b := controltest.New(control.Stats{Version: "test"},
		control.SessionInfo{CallID: "x/../victim@host", Party: "mallory@example.com", State: "in-progress", Limit: -1, Remaining: -1},
		control.SessionInfo{CallID: "victim@host", Party: "alice@example.com", State: "in-progress", Limit: -1, Remaining: -1},
		control.SessionInfo{CallID: "p//q@host", Party: "mallory@example.com", State: "in-progress", Limit: -1, Remaining: -1},
		control.SessionInfo{CallID: "p/q@host", Party: "bob@example.com", State: "in-progress", Limit: -1, Remaining: -1})
	ts := newServer(t, b, "", "")
	// The default client follows a 307 with the same method, as scripts do.
	for _, id := range []string{"x/../victim@host", "p//q@host"} {
		resp, body := do(t, ts, req{method: "DELETE", path: "/api/v1/sessions/" + id})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("DELETE %s: %d %s", id, resp.StatusCode, body)
		}
	}
	got := b.Terminated()
	for _, id := range got {
		if id == "victim@host" || id == "p/q@host" {
			t.Errorf("a DELETE of another Call-ID ended %s (terminated %q)", id, got)
		}
	}
}
