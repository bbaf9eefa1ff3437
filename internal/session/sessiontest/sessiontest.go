// Package sessiontest has in-memory stand-ins for the session manager's
// peers: a journal that records sessions and debits, and a dialog ender
// that records what it was asked to end.
package sessiontest

import (
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/session"
)

// Journal is the one stand-in for session.Journal: it keeps saved
// sessions, asked marks, owed debits and dialog end requests in memory,
// and can stall like a slow disk (Stall). Set OnDebit before use to hear
// each debit owed, as the daemon's spool delivers it; Discard keeps
// nothing, for benchmarks of a journal that costs nothing.
type Journal struct {
	OnDebit func(session.Owed)
	Discard bool

	mu       sync.Mutex
	sessions map[string][]byte
	asked    map[string]bool
	debits   []session.Owed
	byes     map[uint64]dialog.Target
	nextRef  uint64
	atAnswer map[string][]byte
	stall    chan struct{} // while open, writes are not durable
}

// NewJournal returns an empty journal.
func NewJournal() *Journal {
	return &Journal{sessions: make(map[string][]byte), asked: make(map[string]bool),
		byes: make(map[uint64]dialog.Target), atAnswer: make(map[string][]byte)}
}

// DiscardJournal returns a journal that keeps nothing and never waits.
func DiscardJournal() *Journal { return &Journal{Discard: true} }

// timeoutError is what a bounded Wait returns when its deadline passes.
type timeoutError struct{}

func (timeoutError) Error() string { return "not durable yet" }
func (timeoutError) Timeout() bool { return true }

// waitLocked is the Wait of a write made now: immediate, or while the
// disk is stalled done when the stall ends, and given up at its deadline.
func (j *Journal) waitLocked() session.Wait {
	stall := j.stall
	if stall == nil {
		return done
	}
	return func(by time.Time) error {
		if by.IsZero() {
			<-stall
			return nil
		}
		t := time.NewTimer(time.Until(by))
		defer t.Stop()
		select {
		case <-stall:
			return nil
		case <-t.C:
			return timeoutError{}
		}
	}
}

func done(time.Time) error { return nil }

// Stall makes the writes from now on wait until resume is called, as on a
// stalled disk.
func (j *Journal) Stall() (resume func()) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stall = make(chan struct{})
	return sync.OnceFunc(func() { close(j.stall) })
}

// Asked implements session.Journal.
func (j *Journal) Asked(s *session.Session) session.Wait {
	if j.Discard {
		return done
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.asked[s.CallID] = true
	return j.waitLocked()
}

// Settle implements session.Journal.
func (j *Journal) Settle(callID string) {
	if j.Discard {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.asked, callID)
}

// Unsettled counts the asked marks not cleared yet.
func (j *Journal) Unsettled() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.asked)
}

// Save implements session.Journal.
func (j *Journal) Save(s *session.Session) session.Wait {
	if j.Discard {
		return done
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sessions[s.CallID] = s.Marshal()
	delete(j.asked, s.CallID)
	return j.waitLocked()
}

// Saved decodes the session saved under callID, if any.
func (j *Journal) Saved(callID string) (*session.Session, bool) {
	j.mu.Lock()
	b, ok := j.sessions[callID]
	j.mu.Unlock()
	if !ok {
		return nil, false
	}
	s, err := session.Unmarshal(b)
	return s, err == nil
}

// SavedCount counts the sessions saved.
func (j *Journal) SavedCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.sessions)
}

// End implements session.Journal.
func (j *Journal) End(callID string, o *session.Owed) session.Wait {
	if j.Discard {
		return done
	}
	j.mu.Lock()
	delete(j.sessions, callID)
	delete(j.asked, callID)
	if o != nil {
		j.debits = append(j.debits, *o)
	}
	w := j.waitLocked()
	j.mu.Unlock()
	if o != nil && j.OnDebit != nil {
		j.OnDebit(*o)
	}
	return w
}

// Release implements session.Journal.
func (j *Journal) Release(callID string, o *session.Owed) { j.End(callID, o) }

// EndWithBye implements session.Journal: End, plus the dialog end request
// recorded until Confirm.
func (j *Journal) EndWithBye(callID string, o *session.Owed, t dialog.Target) (session.Wait, dialog.Target) {
	w := j.End(callID, o)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.nextRef++
	t.Ref = j.nextRef
	if !j.Discard {
		j.byes[t.Ref] = t
	}
	return w, t
}

// EndWithByeAtAnswer implements session.Journal: EndWithBye and
// EndAtAnswer's record.
func (j *Journal) EndWithByeAtAnswer(callID string, o *session.Owed, t dialog.Target, s *session.Session) (session.Wait, dialog.Target) {
	w, t := j.EndWithBye(callID, o, t)
	if !j.Discard {
		j.mu.Lock()
		j.atAnswer[callID] = s.Marshal()
		j.mu.Unlock()
	}
	return w, t
}

// EndAtAnswer implements session.Journal.
func (j *Journal) EndAtAnswer(callID string, o *session.Owed, s *session.Session) session.Wait {
	w := j.End(callID, o)
	if j.Discard {
		return w
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.atAnswer[callID] = s.Marshal()
	return w
}

// DropAtAnswer implements session.Journal.
func (j *Journal) DropAtAnswer(callID string) {
	if j.Discard {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.atAnswer, callID)
}

// AtAnswer reports whether callID is recorded to be ended when answered,
// and how many calls are.
func (j *Journal) AtAnswer(callID string) (recorded bool, total int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, recorded = j.atAnswer[callID]
	return recorded, len(j.atAnswer)
}

// Confirm forgets a dialog end request, as the proxy's OK does.
func (j *Journal) Confirm(t dialog.Target) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.byes, t.Ref)
}

// PendingByes returns the dialog end requests recorded and not confirmed.
func (j *Journal) PendingByes() []dialog.Target {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]dialog.Target, 0, len(j.byes))
	for _, t := range j.byes {
		out = append(out, t)
	}
	return out
}

// Debits returns the debits owed so far.
func (j *Journal) Debits() []session.Owed {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]session.Owed(nil), j.debits...)
}
