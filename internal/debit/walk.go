package debit

import (
	"runtime"
	"slices"
)

// Operators' listings (callcontrol debits, the web page) and snapshots
// read every owed debit; a long outage of an engine leaves hundreds of
// thousands of them. The lock they are read under is the one a call's end
// takes to record its debit (Op, Queue), so they never hold it for work
// that grows with the backlog: they copy it in bounded chunks, in ID
// order (order), letting go of the lock between chunks, as the session
// table's listings do (internal/session/listing.go).
const (
	walkChunk = 256           // debits copied per hold of the lock
	walkScan  = 4 * walkChunk // IDs looked at per hold (holes included)
)

// walk calls visit under the lock for every owed debit, oldest first, at
// most walkChunk of them (walkScan IDs) per hold of it, and flush outside
// the lock after each chunk. visit must only copy what it needs. sending
// says the debit's send is starting or in flight. A debit owed for the
// whole walk is visited once; one added or removed meanwhile may or may
// not be (one added is, IDs only grow).
func (s *Spool) walk(visit func(e *entry, sending bool), flush func()) {
	next := uint64(0)
	for {
		s.mu.Lock()
		i, _ := slices.BinarySearch(s.order, next)
		for scanned, visited := 0, 0; i < len(s.order) && visited < walkChunk && scanned < walkScan; i, scanned = i+1, scanned+1 {
			id := s.order[i]
			next = id + 1
			if e := s.recs[id]; e != nil {
				w := s.workers[e.o.Engine]
				visit(e, w != nil && w.sending == id)
				visited++
			}
		}
		done := i >= len(s.order)
		walked := s.walked
		s.mu.Unlock()
		flush()
		if walked != nil {
			walked()
		}
		if done {
			return
		}
		// Let a call's end waiting for the lock in first: under load
		// the walk would otherwise take it back before the waiter runs.
		runtime.Gosched()
	}
}

// addLocked registers e in recs and order.
func (s *Spool) addLocked(e *entry) {
	id := e.o.ID
	s.recs[id] = e
	s.holdLocked(e)
	if n := len(s.order); n == 0 || s.order[n-1] < id {
		s.order = append(s.order, id) // the rule: IDs are handed out growing
		return
	}
	// An ID below the last one (a debit queued again after Drop took it
	// between Op and Queue): kept sorted, at a cost that is this rare
	// case's alone.
	if i, found := slices.BinarySearch(s.order, id); !found {
		s.order = slices.Insert(s.order, i, id)
	}
}

// deleteLocked forgets debit id. Its ID stays in order as a hole; holes
// are squeezed out once they are half of it, so the work is constant per
// debit, amortized.
func (s *Spool) deleteLocked(id uint64) {
	if e := s.recs[id]; e != nil {
		s.unholdLocked(e)
	}
	delete(s.recs, id)
	if holes := len(s.order) - len(s.recs); holes > 64 && holes > len(s.order)/2 {
		kept := s.order[:0]
		for _, x := range s.order {
			if s.recs[x] != nil {
				kept = append(kept, x)
			}
		}
		s.order = kept
	}
}

// holdLocked holds e's party on e's engine while e is owed, if e charges
// time (a 0 s debit only releases what the engine counts: the party's
// balance is the same on every engine). One without an engine holds
// nothing (rating.Pool.Hold ignores it), so it is not marked held: its
// Unhold would let go of another debit's hold of the party.
func (s *Spool) holdLocked(e *entry) {
	if s.opts.Hold != nil && !e.held && e.o.Debit.Duration > 0 && e.o.Engine != "" {
		s.opts.Hold(e.o.Debit.From, e.o.Engine)
		e.held = true
	}
}

func (s *Spool) unholdLocked(e *entry) {
	if e.held {
		s.opts.Unhold(e.o.Debit.From)
		e.held = false
	}
}
