package debit

import (
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
)

// TestHoldCountsMatchThePool: the spool's holds, taken by a rating.Pool,
// stay in step with the debits owed. A debit without an engine holds
// nothing in the pool (Pool.Hold ignores ""), so its drop must not let go
// of the hold of another debit of the party: that one is still owed to
// its engine, and the party must stay there.
func TestHoldCountsMatchThePool(t *testing.T) {
	l, live, err := store.Open(t.TempDir(), store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pool := rating.NewPool([]string{"127.0.0.1:1", "127.0.0.1:2"}, rating.Options{}, quiet())
	defer pool.Close()
	o := fast
	o.Hold, o.Unhold = pool.Hold, pool.Unhold
	s := New(l, newEngine(), Restore(live, store.BootID(), quiet()), o, nil, quiet()) // not running
	party := "sip:a@x"
	for _, d := range []Owed{
		{Owed: rating.Owed{Engine: "127.0.0.1:1", Debit: rating.Debit{CallID: "owed", From: party, Duration: 60}}},
		{Owed: rating.Owed{Engine: "", Debit: rating.Debit{CallID: "no-engine", From: party, Duration: 60}}},
	} {
		op, d := s.Op(d)
		if err := l.Apply(op).Wait(); err != nil {
			t.Fatal(err)
		}
		s.Queue(d)
	}
	if got := pool.Owed(party); got != 1 {
		t.Fatalf("pool holds the party %d times for one debit owed to an engine, want 1", got)
	}
	if n, err := s.Drop("no-engine"); n != 1 || err != nil {
		t.Fatalf("drop: %d, %v", n, err)
	}
	if got, eng := pool.Owed(party), pool.Pick(party); got != 1 || eng != "127.0.0.1:1" {
		t.Fatalf("after dropping the debit without an engine: held %d times on %s, want once on 127.0.0.1:1", got, eng)
	}
}
