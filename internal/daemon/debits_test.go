package daemon

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestDebitOwedToRemovedEngine: the engine goes down before a prepaid
// call ends; the debit is owed to it and listed with the last error. A
// reload that replaces the engine sends it to the party's current engine,
// which does not know the call: it is forced there, once; and the party
// follows it there.
func TestDebitOwedToRemovedEngine(t *testing.T) {
	oldEng := ratingtest.New(t)
	oldEng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	oldEng.SetRate("0031", ratingtest.PerMinute(0.10))
	newEng := ratingtest.New(t)
	newEng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	newEng.SetRate("0031", ratingtest.PerMinute(0.10))

	e := newEnv(t, "", "[CDRTool]\naddress = "+oldEng.Addr()+"\ntimeout = 300\n")
	if got := e.call(initReq("p1", "alice")); got != "Limited" {
		t.Fatalf("init: %q", got)
	}
	e.call("start\ncallid: p1\ndialogid: 1:1")
	time.Sleep(1100 * time.Millisecond) // a billed second
	oldEng.Stop()
	if got := e.call("stop\ncallid: p1"); got != "Ok" {
		t.Fatal(got)
	}
	deadline := time.Now().Add(10 * time.Second)
	c := e.ctl() // one connection: the server limits them
	for {
		list, err := c.Debits()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].LastError != "" {
			d := list[0]
			if d.CallID != "p1" || d.Party != "sip:alice@example.com" || !d.Configured || d.Engine != oldEng.Addr() || d.Tries == 0 {
				t.Fatalf("owed debit listed as %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("debit not listed as owed with its error: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}

	e.writeConfig("", "[CDRTool]\naddress = "+newEng.Addr()+"\ntimeout = 300\n")
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	// The reload itself cuts the debit's backoff short: no retry asked.
	// The engine applies the debit before the daemon reads its reply and
	// lets the debit go: wait for the daemon's list to empty.
	deadline = time.Now().Add(20 * time.Second)
	for {
		list, err := c.Debits()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still owed: %+v; new engine debited %v, saw %q", list, newEng.Debited("p1"), newEng.Requests())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := newEng.Debited("p1"); len(d) != 1 || d[0] != 1 {
		t.Fatalf("new engine debited %v, want once; it saw %q", d, newEng.Requests())
	}
	if d := oldEng.Debited("p1"); len(d) != 0 {
		t.Fatalf("old engine debited %v", d)
	}
	if got := e.call(initReq("p2", "alice")); got != "Limited" {
		t.Errorf("the party's next call, its debit with the new engine: %q", got)
	}
}

// TestPartyHeldOnTheEngineItOwes: a prepaid call's debit is owed to its
// engine, which went down. Until the engine has it, the party's next call
// is asked of that engine, and so refused (fail closed), not rated on the
// other engine against a balance the debit never reaches. Once an
// operator moves the debit (`debits reroute`), the party follows it.
func TestPartyHeldOnTheEngineItOwes(t *testing.T) {
	engs := []*ratingtest.Engine{ratingtest.New(t), ratingtest.New(t)}
	for _, eng := range engs {
		eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
		eng.SetRate("0031", ratingtest.PerMinute(0.10))
	}
	var logs logBuffer
	e := newEnvLogged(t, &logs, "[CDRTool]\naddress = "+engs[0].Addr()+" "+engs[1].Addr()+"\ntimeout = 300\n", false)
	if got := e.call(initReq("p1", "alice")); got != "Limited" {
		t.Fatalf("init: %q", got)
	}
	owed, other := engs[0], engs[1]
	if len(owed.Requests()) == 0 {
		owed, other = other, owed
	}
	e.call("start\ncallid: p1\ndialogid: 1:1")
	time.Sleep(600 * time.Millisecond) // rounded, a billed second
	owed.Stop()
	if got := e.call("stop\ncallid: p1"); got != "Ok" {
		t.Fatal(got)
	}
	c := e.ctl()
	if list, err := c.Debits(); err != nil || len(list) != 1 || list[0].Seconds != 1 || list[0].Engine != owed.Addr() {
		t.Fatalf("debits owed: %+v, %v; want p1's second owed to %s", list, err, owed.Addr())
	}

	if got := e.call(initReq("p2", "alice")); got != "Error" {
		t.Errorf("init of the party's next call while its debit is owed to a down engine: %q, want Error", got)
	}
	if reqs := other.Requests(); len(reqs) != 0 {
		t.Errorf("the other engine was asked %q while the party owes a debit elsewhere", reqs)
	}
	// The refusal says why no other engine was asked.
	deadline := time.Now().Add(5 * time.Second)
	for len(logs.lines("INFO", "init refused", "callid=p2", "debits_owed=1", "engine="+owed.Addr(), "debits reroute")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no INFO line for p2's refusal naming the debit owed to %s", owed.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A send to the down engine in flight at that moment is left where it
	// is (the reply says so): the operator runs the reroute again.
	deadline = time.Now().Add(20 * time.Second)
	for {
		r, err := c.DebitsReroute(owed.Addr())
		if err != nil || r.Affected > 1 || (r.Affected == 0 && r.InFlight == 0) {
			t.Fatalf("debits reroute %s: %+v, %v; want 1 moved, or 1 in flight", owed.Addr(), r, err)
		}
		if r.Affected == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("debits reroute %s: still in flight after 20 s", owed.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(other.Debited("p1")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the rerouted debit was not delivered; the other engine saw %q", other.Requests())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.call(initReq("p3", "alice")); got != "Limited" {
		t.Errorf("init once the debit is with the other engine: %q, want Limited", got)
	}
}
