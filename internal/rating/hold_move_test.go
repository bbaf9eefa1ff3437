package rating

import "testing"

// TestPartyFollowsItsDebitsOnceItsInitEnds: a party held on eng by
// debits alone; an init reserves eng (asking), and meanwhile an operator's
// reroute moves every debit to alt: the party stays on eng while the init
// asks. Once the init ends, nothing is owed on eng any more: the party
// must follow its debits to alt, not stay held on eng (down, refusing its
// calls) by debits that are owed to alt.
func TestPartyFollowsItsDebitsOnceItsInitEnds(t *testing.T) {
	for _, how := range []string{"init", "call"} {
		t.Run(how, func(t *testing.T) {
			_, _, p := twoEngines(t)
			party := "sip:alice@example.com"
			eng := p.Pick(party)
			alt := other(p, eng)
			p.Hold(party, eng)
			p.Hold(party, eng)
			if how == "init" {
				if got := p.Reserve(party); got != eng {
					t.Fatalf("reserve: %s, want %s", got, eng)
				}
			} else {
				p.Acquire(party, eng) // a call restored there, say
			}
			// The reroute: each debit moves, Unhold then Hold on alt.
			for range 2 {
				p.Unhold(party)
				p.Hold(party, alt)
			}
			if how == "init" {
				p.Unreserve(party)
			} else {
				p.Release(party) // its end owed nothing (0 s)
			}
			if got, n := p.Pick(party), p.Owed(party); got != alt || n != 2 {
				t.Errorf("party with its 2 debits owed on %s picked %s (held %d times), want %s", alt, got, n, alt)
			}
		})
	}
}
