package daemon

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestRemovedEngineDebitsMoveBehindOneThatStays: a reload removes a down
// engine. The oldest debit owed to it is alice's, whose other call is
// still in progress there, so it stays (Pool.Route). bob's debit, queued
// behind it, must still move to the remaining engine at once, and bob
// with it: held on the removed, down engine, bob's every call would be
// refused for as long as alice's call lasts. The same when the engine is
// left out of the configuration across a restart. carol's call, in
// progress on the removed engine then, ends later: her debit is owed to
// it behind alice's, and moves within a housekeeping round
// (check_interval).
func TestRemovedEngineDebitsMoveBehindOneThatStays(t *testing.T) {
	for _, how := range []string{"reload", "restart"} {
		t.Run(how, func(t *testing.T) { testRemovedEngineDebitsMove(t, how) })
	}
}

func testRemovedEngineDebitsMove(t *testing.T, how string) {
	oldEng, newEng := ratingtest.New(t), ratingtest.New(t)
	for _, eng := range []*ratingtest.Engine{oldEng, newEng} {
		for _, who := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
			eng.SetAccount(who, ratingtest.Account{Balance: 1})
		}
		eng.SetRate("0031", ratingtest.PerMinute(0.10))
	}
	e := newEnv(t, "check_interval = 1", "[CDRTool]\naddress = "+oldEng.Addr()+"\ntimeout = 300\n")
	for _, c := range [][2]string{{"a1", "alice"}, {"a2", "alice"}, {"b1", "bob"}, {"c1", "carol"}} {
		if got := e.call(initReq(c[0], c[1])); got != "Limited" {
			t.Fatalf("init %s: %q", c[0], got)
		}
		e.call("start\ncallid: " + c[0] + "\ndialogid: 1:" + c[0])
	}
	time.Sleep(600 * time.Millisecond) // rounded, a billed second
	oldEng.Stop()
	for _, id := range []string{"a1", "b1"} { // alice's debit first: the head
		if got := e.call("stop\ncallid: " + id); got != "Ok" {
			t.Fatalf("stop %s: %q", id, got)
		}
	}
	e.writeConfig("check_interval = 1", "[CDRTool]\naddress = "+newEng.Addr()+"\ntimeout = 300\n")
	if how == "restart" {
		e.restart()
	} else if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	// delivered waits for callID's debit to reach the remaining engine.
	delivered := func(callID, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(newEng.Debited(callID)) == 0 {
			if time.Now().After(deadline) {
				list, _ := e.ctl().Debits()
				t.Fatalf("%s not moved; owed: %+v", what, list)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	delivered("b1", "bob's debit to the remaining engine")
	if got := e.call(initReq("b2", "bob")); got != "Limited" {
		t.Errorf("bob's next call, his debit with the remaining engine: %q, want Limited", got)
	}

	if got := e.call("stop\ncallid: c1"); got != "Ok" {
		t.Fatalf("stop c1: %q", got)
	}
	delivered("c1", "carol's debit, owed to the removed engine after it left,")
	if got := e.call(initReq("c2", "carol")); got != "Limited" {
		t.Errorf("carol's next call: %q, want Limited", got)
	}
}
