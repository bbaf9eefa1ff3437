package debit

import (
	"errors"
	"time"

	"github.com/callcontrol/callcontrol/internal/store"
)

// Status is one owed debit as operators see it.
type Status struct {
	Owed
	LastTry time.Time // zero: never failed
	LastErr string
	Sending bool // its send is starting (waiting for the flush) or in flight
}

// Status lists the owed debits, oldest first, with their last failure.
// They are copied in chunks (walk), never all under one hold of the lock a
// call's end takes: a backlog of an engine's outage can be hundreds of
// thousands of debits, and `callcontrol debits` must not hold up the
// proxy's stop replies.
func (s *Spool) Status() []Status {
	var out []Status
	buf := make([]Status, 0, walkChunk)
	s.walk(func(e *entry, sending bool) {
		buf = append(buf, Status{Owed: e.o, LastTry: e.lastTry, LastErr: e.lastErr, Sending: sending})
	}, func() {
		out = append(out, buf...) // grown outside the lock
		clear(buf)
		buf = buf[:0]
	})
	return out
}

// RetryNow cuts every engine's retry wait short: each sends its oldest
// debit now. It returns how many debits are owed.
func (s *Spool) RetryNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		select {
		case w.retry <- struct{}{}:
		default:
		}
	}
	return len(s.recs)
}

// ErrInFlight is returned for a debit that is being sent right now (its
// send starting, or in flight): its outcome decides what happens to it;
// or that is being recorded (a call's end between Op and Queue).
var ErrInFlight = errors.New("this debit is being recorded or sent; try again in a moment")

// Rerouted is what Reroute did.
type Rerouted struct {
	Moved    int // moved, their records written
	InFlight int // left where they were: their send was under way
	// NotWritten moved too, in memory, but their records could not be
	// written (Err says why): see move.
	NotWritten int
	Err        error // the first failed write
}

// Reroute moves the debits owed to engine to route(party) (each party's
// current engine), keeping their Attempted state: a debit that may have
// reached the old engine is re-sent without Force, so it is never debited
// twice. The debits owed to engine are found in chunks (walk), and each is
// moved under a hold of the lock of its own.
func (s *Spool) Reroute(engine string, route func(party string) string) Rerouted {
	var ids []uint64
	var chunk []uint64
	s.walk(func(e *entry, _ bool) {
		if e.in != nil && e.o.Engine == engine {
			chunk = append(chunk, e.o.ID)
		}
	}, func() {
		ids = append(ids, chunk...)
		chunk = chunk[:0]
	})
	var r Rerouted
	s.mu.Lock()
	w := s.workers[engine]
	s.mu.Unlock()
	if w == nil {
		return r
	}
	for _, id := range ids {
		s.mu.Lock()
		e := s.recs[id]
		busy := w.sending == id
		var party string
		if e != nil {
			party = e.o.Debit.From
		}
		s.mu.Unlock()
		if e == nil {
			continue
		}
		if busy {
			r.InFlight++
			continue
		}
		to := route(party)
		if to == "" || to == engine {
			continue
		}
		switch moved, err := s.move(w, id, to); {
		case err != nil:
			r.NotWritten++
			if r.Err == nil {
				r.Err = err
			}
		case moved:
			r.Moved++
		}
	}
	return r
}

// Engines lists the engines debits are queued for, for a caller that
// reroutes those of engines no longer configured (at start and reload).
func (s *Spool) Engines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, w := range s.workers {
		if w.q.n > 0 {
			out = append(out, name)
		}
	}
	return out
}

// Drop forgets the debits owed for callID, durably: the engine is never
// asked for them. It returns how many were dropped.
func (s *Spool) Drop(callID string) (int, error) {
	// Found in chunks (walk), as Status lists them; then taken in one
	// hold of the lock, all or none.
	var found []uint64
	s.walk(func(e *entry, _ bool) {
		if e.o.Debit.CallID == callID {
			found = append(found, e.o.ID)
		}
	}, func() {})
	s.mu.Lock()
	var ids []uint64
	for _, id := range found {
		e := s.recs[id]
		if e == nil {
			continue // delivered meanwhile
		}
		// Not queued yet: a call's end is between Op and Queue, its
		// record maybe not written yet; dropped now, Queue would bring it
		// back, or its record would land after the delete.
		if w := s.workers[e.o.Engine]; e.in == nil || w != nil && w.sending == id {
			s.mu.Unlock()
			return 0, ErrInFlight
		}
		ids = append(ids, id)
	}
	ops := make([]store.Op, 0, len(ids))
	for _, id := range ids {
		s.recs[id].dequeueLocked()
		s.deleteLocked(id)
		ops = append(ops, store.Delete(Key(id)))
	}
	var c *store.Commit
	if len(ops) > 0 {
		c = s.log.Apply(ops...)
	}
	s.mu.Unlock()
	if c != nil {
		if err := c.Wait(); err != nil {
			return len(ids), err
		}
	}
	return len(ids), nil
}

// move re-queues debit id from worker w to engine to; false if it is
// gone, being sent, or no longer w's (another move took it first).
//
// An error means the debit moved in memory but its record could not be
// written (the state log is failing). The move is kept, not undone: the
// store serves from memory through such an episode and writes everything
// again (a snapshot) once the disk takes it, and an undo would be one
// more write that fails. It is safe both ways: no send leaves before
// prepare's AwaitFlush, which fails until a snapshot has written the
// state held in memory (this move too) again, so at any crash the log
// names either the old engine, which then still owes it and was never
// sent it from the new one, or the new engine. Never dropped, never sent
// twice; but not durable yet, which the caller must say.
func (s *Spool) move(w *worker, id uint64, to string) (bool, error) {
	s.mu.Lock()
	e := s.recs[id]
	if e == nil || w.sending == id || e.in != w {
		s.mu.Unlock()
		return false, nil
	}
	e.dequeueLocked()
	// Marked for a send to the old engine that never happened: the new
	// engine must not take it for fate unknown.
	e.unready()
	s.unholdLocked(e)
	e.o.Engine = to
	s.holdLocked(e)
	c := s.log.Apply(store.Put(Key(id), encode(e.o)))
	s.queueLocked(e.o)
	s.mu.Unlock()
	if err := c.Wait(); err != nil {
		return true, err
	}
	return true, nil
}

// failed notes a failed send for operators.
func (s *Spool) failed(id uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.recs[id]; e != nil {
		e.lastTry, e.lastErr = time.Now(), err.Error()
	}
}
