package debit

import (
	"errors"
	"slices"
	"sort"
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
func (s *Spool) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	sending := make(map[uint64]bool)
	for _, w := range s.workers {
		if w.sending != 0 {
			sending[w.sending] = true
		}
	}
	out := make([]Status, 0, len(s.recs))
	for id, e := range s.recs {
		out = append(out, Status{Owed: e.o, LastTry: e.lastTry, LastErr: e.lastErr, Sending: sending[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
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
// send starting, or in flight): its outcome decides what happens to it.
var ErrInFlight = errors.New("this debit is being sent; try again in a moment")

// Reroute moves the debits owed to engine to route(party) (each party's
// current engine), keeping their Attempted state: a debit that may have
// reached the old engine is re-sent without Force, so it is never debited
// twice. It returns how many moved and how many were in flight (left).
func (s *Spool) Reroute(engine string, route func(party string) string) (moved, inFlight int) {
	s.mu.Lock()
	w := s.workers[engine]
	var ids []uint64
	if w != nil {
		ids = append(ids, w.queue...)
	}
	s.mu.Unlock()
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
			inFlight++
			continue
		}
		to := route(party)
		if to == "" || to == engine {
			continue
		}
		if s.move(w, id, to) {
			moved++
		}
	}
	return moved, inFlight
}

// Drop forgets the debits owed for callID, durably: the engine is never
// asked for them. It returns how many were dropped.
func (s *Spool) Drop(callID string) (int, error) {
	s.mu.Lock()
	var ids []uint64
	for id, e := range s.recs {
		if e.o.Debit.CallID != callID {
			continue
		}
		if w := s.workers[e.o.Engine]; w != nil && w.sending == id {
			s.mu.Unlock()
			return 0, ErrInFlight
		}
		ids = append(ids, id)
	}
	ops := make([]store.Op, 0, len(ids))
	for _, id := range ids {
		e := s.recs[id]
		if w := s.workers[e.o.Engine]; w != nil {
			w.queue = without(w.queue, id)
		}
		delete(s.recs, id)
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

// move re-queues debit id from worker w to engine to, durably; false if it
// is gone, being sent, or no longer w's (another move took it first).
func (s *Spool) move(w *worker, id uint64, to string) bool {
	s.mu.Lock()
	e := s.recs[id]
	if e == nil || w.sending == id || !slices.Contains(w.queue, id) {
		s.mu.Unlock()
		return false
	}
	w.queue = without(w.queue, id)
	// Marked for a send to the old engine that never happened: the new
	// engine must not take it for fate unknown.
	e.unready()
	e.o.Engine = to
	e.queued = false
	c := s.log.Apply(store.Put(Key(id), encode(e.o)))
	s.queueLocked(e.o)
	s.mu.Unlock()
	c.Wait()
	return true
}

// failed notes a failed send for operators.
func (s *Spool) failed(id uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.recs[id]; e != nil {
		e.lastTry, e.lastErr = time.Now(), err.Error()
	}
}

func without(queue []uint64, id uint64) []uint64 {
	for i, x := range queue {
		if x == id {
			return append(queue[:i:i], queue[i+1:]...)
		}
	}
	return queue
}
