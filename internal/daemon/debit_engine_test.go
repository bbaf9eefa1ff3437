package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestNoEngineDebitIsNotSent: with no rating engine configured a
// debit certainly never leaves, and must say so (rating.ErrNotSent), or
// the spool takes it for fate unknown (debit/doc.go) and marks it
// attempted for good.
func TestNoEngineDebitIsNotSent(t *testing.T) {
	e := &engines{}
	_, err := e.DebitBalance(context.Background(), "10.0.0.1:9024", rating.Debit{CallID: "a", From: "sip:alice@example.com",
		To: "sip:1@example.com", Gateway: "10.0.0.1", Application: "audio", Duration: 60})
	if err == nil || !errors.Is(err, rating.ErrNotSent) {
		t.Fatalf("DebitBalance without an engine: %v, want an error matching rating.ErrNotSent", err)
	}
}

// TestDebitOwedAcrossARunWithoutEngine: a prepaid call ends while
// its engine is down, so its debit is owed across a restart; the daemon
// is restarted once with [CDRTool] removed (the debit is tried there,
// and cannot leave), then again with the engine back, which has
// forgotten the call meanwhile (restarted: spec, "purged"). The debit
// never reached the engine, so its Failed must be answered with Force=1
// (rating-protocol.md) and the call debited once. It was dropped as
// "already applied" instead: the run without an engine had marked it as
// possibly sent.
func TestDebitOwedAcrossARunWithoutEngine(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	cdrtool := "[CDRTool]\naddress = " + eng.Addr() + "\ntimeout = 300\nrecheck_interval = 0\n"
	e := newEnv(t, "", cdrtool)
	if got := e.call(initReq("a", "alice")); got != "Limited" {
		t.Fatalf("init: %q", got)
	}
	if got := e.call("start\ncallid: a\ndialogid: 1:1"); got != "Ok" {
		t.Fatalf("start: %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // a debit of 1 s: a 0 s one answered Failed is a release with nothing to release
	eng.Stop()
	if got := e.call("stop\ncallid: a"); got != "Ok" {
		t.Fatal(got)
	}
	e.d.Stop()
	e.d = nil

	// A run without any engine configured: the debit is tried, in vain.
	e.writeConfig("", "")
	e.start()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p := e.d.state.Spool().Status()
		if len(p) != 1 {
			t.Fatalf("debits owed in the run without an engine: %d, want 1", len(p))
		}
		if p[0].Tries > 0 && !p[0].Sending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the debit was never tried in the run without an engine")
		}
	}
	e.d.Stop()
	e.d = nil

	if err := eng.Restart(false); err != nil {
		t.Fatal(err)
	}
	e.writeConfig("", cdrtool)
	e.start()
	e.waitNoDebitOwed()
	if got := eng.Debited("a"); len(got) != 1 || got[0] == 0 {
		t.Fatalf("call a debited %v, want once; engine saw %q", got, eng.Requests())
	}
}

// TestDebitOwedToEngineRemovedAtRestart: a prepaid call ends while
// its engine is down; the daemon is restarted with that engine replaced
// by another in the configuration. The debit never reached the old
// engine, so the new one, which does not know the call, is sent it with
// Force=1 after its Failed: debited once, there.
func TestDebitOwedToEngineRemovedAtRestart(t *testing.T) {
	oldEng := ratingtest.New(t)
	newEng := ratingtest.New(t)
	for _, eng := range []*ratingtest.Engine{oldEng, newEng} {
		eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
		eng.SetRate("0031", ratingtest.PerMinute(0.10))
	}
	e := newEnv(t, "", "[CDRTool]\naddress = "+oldEng.Addr()+"\ntimeout = 300\nrecheck_interval = 0\n")
	if got := e.call(initReq("p1", "alice")); got != "Limited" {
		t.Fatalf("init: %q", got)
	}
	if got := e.call("start\ncallid: p1\ndialogid: 1:1"); got != "Ok" {
		t.Fatalf("start: %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // a billed second
	oldEng.Stop()
	if got := e.call("stop\ncallid: p1"); got != "Ok" {
		t.Fatal(got)
	}
	e.d.Stop()
	e.d = nil

	e.writeConfig("", "[CDRTool]\naddress = "+newEng.Addr()+"\ntimeout = 300\nrecheck_interval = 0\n")
	e.start()
	e.waitNoDebitOwed()
	if d := newEng.Debited("p1"); len(d) != 1 || d[0] != 1 {
		t.Fatalf("new engine debited %v, want 1 s once; it saw %q", d, newEng.Requests())
	}
	if d := oldEng.Debited("p1"); len(d) != 0 {
		t.Fatalf("old engine debited %v", d)
	}
}
