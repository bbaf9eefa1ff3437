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

// Journal keeps saved sessions, asked marks and owed debits in memory.
type Journal struct {
	mu       sync.Mutex
	sessions map[string][]byte
	asked    map[string]bool
	debits   []session.Owed
	byes     map[uint64]dialog.Target
	nextRef  uint64
	atAnswer map[string][]byte
}

// NewJournal returns an empty journal.
func NewJournal() *Journal {
	return &Journal{sessions: make(map[string][]byte), asked: make(map[string]bool)}
}

// Asked implements session.Journal.
func (j *Journal) Asked(s *session.Session) session.Wait {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.asked[s.CallID] = true
	return done
}

// Settle implements session.Journal.
func (j *Journal) Settle(callID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.asked, callID)
}

func done(time.Time) error { return nil }

// Save implements session.Journal.
func (j *Journal) Save(s *session.Session) session.Wait {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sessions[s.CallID] = s.Marshal()
	delete(j.asked, s.CallID)
	return done
}

// End implements session.Journal.
func (j *Journal) End(callID string, o *session.Owed) session.Wait {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.sessions, callID)
	delete(j.asked, callID)
	if o != nil {
		j.debits = append(j.debits, *o)
	}
	return done
}

// EndWithBye implements session.Journal: End, plus the dialog end request
// recorded until Confirm.
func (j *Journal) EndWithBye(callID string, o *session.Owed, t dialog.Target) (session.Wait, dialog.Target) {
	w := j.End(callID, o)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.nextRef++
	t.Ref = j.nextRef
	if j.byes == nil {
		j.byes = make(map[uint64]dialog.Target)
	}
	j.byes[t.Ref] = t
	return w, t
}

// EndAtAnswer implements session.Journal.
func (j *Journal) EndAtAnswer(callID string, o *session.Owed, s *session.Session) session.Wait {
	w := j.End(callID, o)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.atAnswer == nil {
		j.atAnswer = make(map[string][]byte)
	}
	j.atAnswer[callID] = s.Marshal()
	return w
}

// DropAtAnswer implements session.Journal.
func (j *Journal) DropAtAnswer(callID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.atAnswer, callID)
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
