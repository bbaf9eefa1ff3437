package daemon

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// Two daemons on one engine, in real time, through every real part (config,
// rating client over TCP, state log, debit spool): a call of the account
// on the second daemon shortens the first daemon's call, which hears of it
// at its next re-ask (issue 15). Durations are the engine's whole seconds,
// kept short: 8 s of talk, recheck_interval = 2 (the minimum).
func TestRecheckTwoDaemonsOneEngine(t *testing.T) {
	const perSecond = 0.10 / 60
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 8 * perSecond})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	cdrtool := "[CDRTool]\naddress = " + eng.Addr() + "\ntimeout = 300\nrecheck_interval = 2\n"
	a, b := newEnv(t, "", cdrtool), newEnv(t, "", cdrtool)

	t0 := time.Now()
	if got := a.call(initReq("c1", "alice")); got != "Limited" {
		t.Fatalf("init c1 on A: %q", got)
	}
	a.call("start\ncallid: c1\ndialogid: 1:1")
	time.Sleep(time.Second)
	if got := b.call(initReq("c2", "alice")); got != "Limited" {
		t.Fatalf("init c2 on B: %q", got)
	}
	b.call("start\ncallid: c2\ndialogid: 1:2")
	// The engine's model: 1 s of c1, then 7 s for two calls: both end
	// about +4.5 s. Without re-asks A would cut c1 at +8 s.
	ended := a.kam.WaitFor(1, 10*time.Second)
	cut := time.Since(t0)
	if len(ended) != 1 {
		t.Fatalf("c1 was not cut on A")
	}
	if cut > 6500*time.Millisecond {
		t.Errorf("c1 cut at +%v, shared end about +4.5 s, recheck step 2 s", cut)
	}
	if len(b.kam.WaitFor(1, 10*time.Second)) != 1 {
		t.Fatal("c2 was not cut on B")
	}
	deadline := time.Now().Add(10 * time.Second)
	for (len(eng.Debited("c1")) == 0 || len(eng.Debited("c2")) == 0 || len(eng.Sessions("alice@example.com")) > 0) &&
		time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s := eng.Sessions("alice@example.com"); len(s) > 0 {
		t.Errorf("the engine still counts %v (a probe not released?)", s)
	}
	// One step's price: both calls running 2 s more.
	if bal := eng.Balance("alice@example.com"); bal < -2*2*perSecond-1e-9 {
		t.Errorf("balance %.4f, below zero by more than one step's price", bal)
	}
	t.Logf("c1 cut at +%v; debited c1 %v, c2 %v; balance %.4f; engine saw %d MaxSessionTime, %d DebitBalance",
		cut, eng.Debited("c1"), eng.Debited("c2"), eng.Balance("alice@example.com"), eng.Count("MaxSessionTime"), eng.Count("DebitBalance"))
}
