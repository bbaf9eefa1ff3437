package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// manyBackend tracks 1500 calls: 1200 in progress, 300 pending.
func manyBackend() *controltest.Backend {
	var list []control.SessionInfo
	for i := range 1500 {
		s := control.SessionInfo{CallID: fmt.Sprintf("%04d@host", i), Party: "alice@example.com",
			Destination: "sip:100@example.com", State: "in-progress", Limit: 600, Remaining: 420}
		if i%5 == 0 {
			s.State = "pending"
		}
		list = append(list, s)
	}
	return controltest.New(control.Stats{Sessions: map[string]int{"pending": 300, "in-progress": 1200}, Parties: 1}, list...)
}

// The API and the page show at most ?limit= sessions (default 1000), the
// oldest, and say how many match: a table of a million calls is never
// rendered or held whole by a request.
func TestSessionsLimit(t *testing.T) {
	ts := newServer(t, manyBackend(), "", "")
	for _, c := range []struct {
		query      string
		shown      int
		total      string
		firstState string
	}{
		{"", 1000, "1500", ""},
		{"?limit=5", 5, "1500", ""},
		{"?limit=10000", 1500, "1500", ""},
		{"?state=pending&limit=10", 10, "300", "pending"},
		{"?state=in-progress&limit=2000", 1200, "1200", "in-progress"},
		{"?party=bob", 0, "0", ""},
	} {
		resp, body := do(t, ts, req{method: "GET", path: "/api/v1/sessions" + c.query})
		var list []control.SessionInfo
		if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v %.200s", c.query, resp.StatusCode, err, body)
		}
		if len(list) != c.shown || resp.Header.Get("X-Total-Count") != c.total {
			t.Errorf("%s: %d sessions, X-Total-Count %q; want %d, %q", c.query, len(list), resp.Header.Get("X-Total-Count"), c.shown, c.total)
		}
		if len(list) > 0 && list[0].CallID != map[string]string{"": "0000@host", "pending": "0000@host", "in-progress": "0001@host"}[c.firstState] {
			t.Errorf("%s: the list starts at %s, not the oldest", c.query, list[0].CallID)
		}
		for _, s := range list {
			if c.firstState != "" && s.State != c.firstState {
				t.Errorf("%s: %s is %s", c.query, s.CallID, s.State)
			}
		}
	}
	for _, bad := range []string{"0", "-1", "10001", "all", "1e3"} {
		resp, body := do(t, ts, req{method: "GET", path: "/api/v1/sessions?limit=" + bad})
		if resp.StatusCode != 400 || !strings.Contains(body, `"code": "bad_request"`) || !strings.Contains(body, "limit") {
			t.Errorf("limit=%s: %d %s", bad, resp.StatusCode, body)
		}
	}

	_, body := do(t, ts, req{method: "GET", path: "/"})
	if rows := strings.Count(body, "<tr data-callid="); rows != 1000 {
		t.Errorf("the page shows %d calls, want the oldest 1000", rows)
	}
	if want := "1000 oldest shown of 1500 matching; 1500 calls: 1200 in progress, 300 pending, 1 parties"; !strings.Contains(body, want) {
		t.Errorf("the page's count line lacks %q", want)
	}
	_, body = do(t, ts, req{method: "GET", path: "/?state=pending&limit=20"})
	if rows := strings.Count(body, "<tr data-callid="); rows != 20 || !strings.Contains(body, "20 oldest shown of 300 matching") {
		t.Errorf("?state=pending&limit=20: %d rows", rows)
	}
	if !strings.Contains(body, `<input type="hidden" name="limit" value="20">`) {
		t.Error("the filter form does not keep the page's limit")
	}
	_, body = do(t, ts, req{method: "GET", path: "/?limit=junk"})
	if rows := strings.Count(body, "<tr data-callid="); rows != 1000 {
		t.Errorf("?limit=junk: %d rows, want the default 1000", rows)
	}
}
