package rating

import "testing"

// TestPoolHoldsAPartyOnTheEngineItOwes: debits owed (Hold) keep a party on
// its engine as its calls do, down or not, until each is let go (Unhold);
// Route sends a debit of an engine being left to the party's engine, or
// while the party has no calls on the left one, to the engine a new party
// would get without it.
func TestPoolHoldsAPartyOnTheEngineItOwes(t *testing.T) {
	a, b, p := twoEngines(t)
	party := "sip:alice@example.com"
	eng := p.Pick(party)
	alt := other(p, eng)

	p.Acquire(party, eng)
	p.Hold(party, eng) // its call's debit is owed before the call lets go
	p.Release(party)
	breakEngine(t, p, engineAt(eng, a, b))
	if got := p.Pick(party); got != eng {
		t.Fatalf("party owing a debit to its down engine picked %s, want %s", got, eng)
	}
	if got := p.Route(party, eng); got != alt {
		t.Errorf("Route away from %s of a party with debits only: %s, want %s", eng, got, alt)
	}
	p.Hold(party, eng) // a second debit
	p.Unhold(party)
	if got := p.Pick(party); got != eng {
		t.Fatalf("party with one debit left picked %s, want %s", got, eng)
	}
	p.Unhold(party)
	if got := p.Pick(party); got != alt {
		t.Fatalf("party with nothing owed on a down engine picked %s, want %s", got, alt)
	}
	p.Unhold(party) // one too many: harmless
	if got := p.Pick(party); got != alt {
		t.Fatalf("after an extra Unhold: %s", got)
	}

	// Calls on the engine being left: their debits stay with it.
	p.Acquire(party, eng)
	if got := p.Route(party, eng); got != eng {
		t.Errorf("Route away from %s of a party with calls there: %s, want %s", eng, got, eng)
	}
	// A debit moved elsewhere while the party has calls here: the party
	// stays with its calls.
	p.Hold(party, alt)
	if got := p.Pick(party); got != eng {
		t.Errorf("party with calls on %s and a debit moved to %s picked %s", eng, alt, got)
	}
	p.Release(party)
	p.Unhold(party)

	// Held by debits alone, the party follows the newest: an operator's
	// reroute moves them one at a time.
	p.Hold(party, eng)
	p.Hold(party, eng)
	p.Unhold(party)
	p.Hold(party, alt)
	if got := p.Pick(party); got != alt {
		t.Errorf("debits moved to %s one by one: party picked %s", alt, got)
	}
	if got := p.Route(party, eng); got != alt {
		t.Errorf("Route of the debit left on %s: %s, want the party's engine %s", eng, got, alt)
	}
	p.Unhold(party)
	p.Unhold(party)
	p.mu.Lock()
	n, refs := len(p.parties), len(p.refs)
	p.mu.Unlock()
	if n != 0 || refs != 0 {
		t.Errorf("after every hold ended: %d parties, %d engine refs kept", n, refs)
	}

	// A call restored on another engine than the one its party's debits
	// are owed to: the party joins its call.
	p.Hold(party, eng)
	p.Acquire(party, alt)
	if got := p.Pick(party); got != alt {
		t.Errorf("party with a debit on %s and a call acquired on %s picked %s", eng, alt, got)
	}
	p.Release(party)
	p.Unhold(party)

	// With one engine, nothing to route to.
	one := NewPool([]string{a.Addr()}, Options{}, testLog(t))
	t.Cleanup(one.Close)
	one.Hold(party, a.Addr())
	if got := one.Route(party, a.Addr()); got != "" {
		t.Errorf("Route with no other engine: %q", got)
	}
}
