package debit

import (
	"errors"
	"fmt"
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
)

// TestDropBetweenOpAndQueue: an operator's drop that lands while a call's
// end is between Op (the debit registered) and Queue (handed to
// delivery), in either order against the end's write of its record,
// either drops the debit (it is never sent, in memory or after a
// restart) or says it could not: never "dropped" while it stays owed.
func TestDropBetweenOpAndQueue(t *testing.T) {
	for _, dropBeforeWrite := range []bool{false, true} {
		name := "drop after the end's write"
		if dropBeforeWrite {
			name = "drop before the end's write"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, live, err := store.Open(dir, store.Options{NoSync: true}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			s := New(l, newEngine(), Restore(live, store.BootID(), quiet()), fast, nil, quiet()) // not running
			d := Owed{Owed: rating.Owed{Engine: "a", Debit: rating.Debit{CallID: "c1", From: "sip:a@x", To: "sip:b@x", Duration: 60}}}
			// Spool.owe, step by step, with the operator's drop in between.
			op, d := s.Op(d)
			var c *store.Commit
			if !dropBeforeWrite {
				c = l.Apply(store.Delete("s/c1"), op)
			}
			n, dropErr := s.Drop("c1")
			if dropBeforeWrite {
				c = l.Apply(store.Delete("s/c1"), op)
			}
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
			s.Queue(d)
			inMemory := len(s.Pending())
			s.Close()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2, live, err := store.Open(dir, store.Options{NoSync: true}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			onDisk := len(Restore(live, store.BootID(), quiet()))
			switch {
			case dropErr == nil && n == 1:
				if inMemory != 0 || onDisk != 0 {
					t.Errorf("drop said 1 dropped, yet the debit is still owed: %d in memory (sent), %d after a restart", inMemory, onDisk)
				}
			case n == 0 && (dropErr == nil || errors.Is(dropErr, ErrInFlight)):
				if inMemory != 1 || onDisk != 1 {
					t.Errorf("drop dropped nothing (%v), yet the debit is owed %d in memory, %d after a restart, want 1 and 1", dropErr, inMemory, onDisk)
				}
			default:
				t.Errorf("drop: %d, %v", n, dropErr)
			}
		})
	}
}

// TestWalkAcrossSqueeze: holes squeezed out of the order (deleteLocked)
// while a walk is between chunks make it neither skip nor repeat a debit
// owed throughout: it resumes by ID, not by index.
func TestWalkAcrossSqueeze(t *testing.T) {
	const owed = 4000
	restored := make([]Owed, owed)
	for i := range restored {
		restored[i] = Owed{ID: uint64(i + 1), Owed: rating.Owed{Engine: "a", Debit: rating.Debit{CallID: fmt.Sprint(i + 1), From: "sip:a@x", Duration: 1}}}
	}
	l, _, err := store.Open(t.TempDir(), store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := New(l, newEngine(), restored, fast, nil, quiet())
	defer s.Close()
	gone := map[uint64]bool{}
	chunks := 0
	s.walked = func() {
		if chunks++; chunks != 1 {
			return
		}
		s.mu.Lock()
		before := len(s.order)
		// Three in four, on both sides of the walk's position: the order
		// is squeezed.
		for id := uint64(1); id <= owed; id++ {
			if id%4 != 0 {
				s.recs[id].dequeueLocked()
				s.deleteLocked(id)
				gone[id] = true
			}
		}
		after := len(s.order)
		s.mu.Unlock()
		if after >= before {
			t.Fatalf("order not squeezed: %d entries, then %d", before, after)
		}
	}
	seen := map[uint64]int{}
	var last uint64
	for _, o := range s.Pending() {
		if o.ID <= last {
			t.Fatalf("out of order: %d after %d", o.ID, last)
		}
		last = o.ID
		seen[o.ID]++
	}
	for id := uint64(1); id <= owed; id++ {
		if !gone[id] && seen[id] != 1 {
			t.Errorf("debit %d, owed throughout, seen %d times", id, seen[id])
		}
	}
}
