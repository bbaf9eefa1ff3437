package daemon

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// proxyDoorWith returns the proxy socket's handler over a manager holding n
// answered calls, c000000 on, each of user u<i%7>, with the operator
// commands on and open to all.
func proxyDoorWith(tb testing.TB, n int) *proxyDoor {
	m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.NewJournal(),
		slog.New(slog.DiscardHandler))
	tb.Cleanup(m.Shutdown)
	now := time.Now()
	saved := make([]*session.Session, n)
	for i := range saved {
		saved[i] = &session.Session{CallID: fmt.Sprintf("c%06d", i), Party: fmt.Sprintf("sip:u%d@example.com", i%7),
			RURI: "sip:d@example.com", Limit: 3600, Cap: session.NoLimit, Created: now, Answered: now, EndAt: now.Add(time.Hour)}
	}
	m.Restore(saved)
	return &proxyDoor{m: m, legacy: true, log: slog.New(slog.DiscardHandler)}
}

// Every answer of the manager has its word on the wire, and no two share
// one.
func TestReplyWordsCoverEveryReply(t *testing.T) {
	seen := map[string]session.Reply{}
	for r := session.ReplyError; r <= session.ReplyNotFound; r++ {
		w := words(r)
		if w == "" {
			t.Fatalf("%v has no word", r)
		}
		if o, dup := seen[w]; dup {
			t.Fatalf("%v and %v both answer %q", o, r, w)
		}
		seen[w] = r
	}
	if got := words(session.ReplyNotFound + 1); got != proxy.Error {
		t.Fatalf("an unknown reply answers %q", got)
	}
}

func TestProxyDoorCallCycle(t *testing.T) {
	p := proxyDoorWith(t, 0)
	for _, tt := range []struct {
		req  proxy.Request
		want string
	}{
		{proxy.Request{Command: "init", CallID: "x", RURI: "sip:d@example.com", From: "<sip:a@example.com>;tag=1", FromTag: "1",
			Prepaid: "false"}, proxy.Limited},
		{proxy.Request{Command: "init", CallID: "x", RURI: "sip:d@example.com", From: "<sip:a@example.com>;tag=1", FromTag: "1",
			Prepaid: "false", CallToken: "other"}, proxy.DuplicatedCallID},
		{proxy.Request{Command: "start", CallID: "x", DialogID: "1:2"}, proxy.Ok},
		{proxy.Request{Command: "start"}, proxy.Error},
		{proxy.Request{Command: "stop", CallID: "x"}, proxy.Ok},
		{proxy.Request{Command: "stop", CallID: "x"}, proxy.NotFound},
		{proxy.Request{Command: "stop"}, proxy.Error},
		{proxy.Request{Command: "frobnicate"}, proxy.Error},
	} {
		if got := p.Handle(&tt.req, time.Now()); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.req.Command, tt.req.CallID, got, tt.want)
		}
	}
}

func TestDebugSessionsListsInOrderOfSetUp(t *testing.T) {
	const n = 600
	p := proxyDoorWith(t, n)
	if got := p.Handle(&proxy.Request{Command: "init", CallID: "pending-1", RURI: "sip:dest@example.com",
		From: "<sip:u1@example.com>;tag=1", FromTag: "1", Prepaid: "false"}, time.Now()); got != proxy.Limited {
		t.Fatalf("init: %q", got)
	}
	out := p.debug(&proxy.Request{Command: "debug", Show: "sessions"}, time.Now())
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	if len(lines) != n+1 || lines[0] != "Call id c000000 of u0@example.com to sip:d@example.com: in-progress" ||
		lines[n] != "Call id pending-1 of u1@example.com to sip:dest@example.com: pending" {
		t.Fatalf("%d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	out = p.debug(&proxy.Request{Command: "debug", Show: "sessions", User: "u1@"}, time.Now())
	if got := strings.Count(out, "\r\n"); got != (n+5)/7+1 || strings.Contains(out, "of u0@") {
		t.Fatalf("user u1@: %d lines\n%s", got, out)
	}
	out = p.debug(&proxy.Request{Command: "debug", Show: "session", CallID: "c000003"}, time.Now())
	if !strings.HasPrefix(out, "callid: c000003\r\nbilling_party: sip:u3@example.com\r\n") || !strings.Contains(out, "\r\nstate: in-progress\r\n") {
		t.Fatalf("debug show: session:\n%s", out)
	}
	if got := p.debug(&proxy.Request{Command: "debug", Show: "session", CallID: "nobody"}, time.Now()); got != "Call id nobody does not exist\r\n" {
		t.Fatalf("unknown call: %q", got)
	}
}

// BenchmarkDebugSessions100k lists 100,000 sessions as the proxy socket's
// "debug show: sessions" does (the proxy's latency meanwhile is measured
// by ccbench -run listing).
func BenchmarkDebugSessions100k(b *testing.B) {
	p := proxyDoorWith(b, 100_000)
	req := &proxy.Request{Command: "debug", Show: "sessions"}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if out := p.debug(req, time.Now()); len(out) < 100_000*40 {
			b.Fatalf("listing is %d bytes", len(out))
		}
	}
}
