package dialog

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

// A reply the proxy sends late to the previous process's request must not
// settle the new process's request that happens to reuse its id.
func TestLateReplyOfLastRunSettlesNothing(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	proxyPath := filepath.Join(dir, "proxy.sock")
	fake := dialogtest.NewKamailio(t, proxyPath)
	fake.SetAnswer(dialogtest.AnswerNone) // busy proxy: answers come later, by hand
	local := filepath.Join(dir, "dialog.sock")

	old, err := New(Options{Flavor: Kamailio, ProxySocket: proxyPath, LocalSocket: local, Timeout: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old.End(Target{CallID: "A", Dialog: ID{Entry: 1, ID: 1}})
	fake.WaitFor(1, 20*time.Second)
	old.Close() // the daemon stops (or is killed); "A" stays in the state log

	got := make(chan Target, 4)
	h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, LocalSocket: local, Timeout: time.Minute,
		OnDone: func(tg Target, o Outcome) {
			if o == Gone || o == Confirmed {
				got <- tg
			}
		}})
	h.client.End(Target{CallID: "B", Dialog: ID{Entry: 2, ID: 2}})
	reqs := fake.WaitFor(2, 20*time.Second)
	t.Logf("ids: old process %s, new process %s", reqs[0].ID, reqs[1].ID)
	// The old process's request gets its (late) answer: dialog 1:1 is gone.
	if err := fake.ReplyTo(reqs[0], dialogtest.AnswerNotFound); err != nil {
		t.Fatal(err)
	}
	// Then B's own answer; datagrams arrive in order, so the first
	// outcome must be B's own OK.
	if err := fake.ReplyTo(reqs[1], dialogtest.AnswerOK); err != nil {
		t.Fatal(err)
	}
	select {
	case tg := <-got:
		if o := h.rec.wait(t, 1, 20*time.Second)["B"]; len(o) == 0 || o[0] != outcomeOK {
			t.Fatalf("B (dialog 2:2) settled as %v by the late reply to A's request (dialog 1:1); target %+v", o, tg)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no outcome")
	}
}

// After a numeric 404 the client asks by Call-ID; a 404 that then arrives
// for an EARLIER numeric attempt must not settle the request as gone
// while the Call-ID request is unanswered.
func TestStaleNumeric404AfterCallIDFallback(t *testing.T) {
	fake, proxyPath := startFake(t, OpenSIPS)
	fake.SetAnswer(dialogtest.AnswerNone) // slow proxy: answers by hand
	finals := make(chan Outcome, 4)
	h := newClient(t, Options{Flavor: OpenSIPS, ProxySocket: proxyPath, OpenSIPSKey: ByDecimalID,
		Timeout: 100 * time.Millisecond, MaxRetryWait: time.Minute,
		OnDone: func(_ Target, o Outcome) { finals <- o }})
	h.client.End(Target{CallID: "fb-call", Dialog: ID{Entry: 1079, ID: 6296}})
	reqs := fake.WaitFor(2, 20*time.Second) // two numeric attempts, unanswered
	if reqs[0].DialogID == "fb-call" || reqs[1].DialogID == "fb-call" {
		t.Fatalf("want two numeric attempts first, got %q %q", reqs[0].DialogID, reqs[1].DialogID)
	}
	if err := fake.ReplyTo(reqs[0], dialogtest.AnswerNotFound); err != nil { // passthrough on 3.1+: 404
		t.Fatal(err)
	}
	var byCallID dialogtest.Request
	for byCallID.DialogID != "fb-call" {
		all := fake.WaitFor(fake.Len()+1, 20*time.Second)
		byCallID = all[len(all)-1]
	}
	// The second numeric attempt's 404 comes late; then the Call-ID
	// request's OK.
	if err := fake.ReplyTo(reqs[1], dialogtest.AnswerNotFound); err != nil {
		t.Fatal(err)
	}
	if err := fake.ReplyTo(byCallID, dialogtest.AnswerOK); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-finals:
		if o != Confirmed {
			t.Fatalf("final outcome %v before the Call-ID request was answered (the dialog is alive on the proxy)", o)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no outcome")
	}
}

// "Method not found" (OpenSIPS mi.c JSONRPC_NOT_FOUND_CODE -32601: no
// dialog module, or the wrong flavor configured) says nothing about the
// dialog: it must not count as "dialog gone".
func TestMethodNotFoundIsNotGone(t *testing.T) {
	for _, raw := range []string{
		`{"jsonrpc":"2.0","id":"7","error":{"code":-32601,"message":"Method not found"}}`,
		`{"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":7}`,
	} {
		r, err := parseReply([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if r.kind == replyGone {
			t.Errorf("%s read as dialog gone: the end request is dropped and the call never cut", raw)
		}
	}
}
