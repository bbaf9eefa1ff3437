package session

import (
	"github.com/callcontrol/callcontrol/internal/acct"
)

// TrackedCalls lists the calls accounting should look for.
func (m *Manager) TrackedCalls() []acct.Call {
	var out []acct.Call
	m.eachChunked(nil, func(s *Session) {
		out = append(out, acct.Call{CallID: s.CallID, FromTag: s.FromTag, Since: s.Created})
	}, nil)
	return out
}

// Close ends a call that accounting says is over. Terminated: the BYE
// passed while we did not see it; end without a BYE and debit what
// accounting measured. TimedOut: nobody sent a BYE; end the dialog and
// debit until now. A call with another From tag is another call.
func (m *Manager) Close(o acct.Outcome) bool {
	m.mu.Lock()
	s := m.calls[o.CallID]
	if m.closed || s == nil || (o.FromTag != "" && s.FromTag != "" && o.FromTag != s.FromTag) {
		m.mu.Unlock()
		return false
	}
	var e ending
	switch o.Kind {
	case acct.Terminated:
		m.removeLocked(s)
		duration := o.Duration
		if duration < 0 || !s.InProgress() {
			duration = 0
		}
		if s.Limit != NoLimit && s.InProgress() && duration > s.Limit {
			duration = s.Limit
		}
		e = m.finishLocked(s, duration, false, "accounting: terminated")
	case acct.TimedOut:
		e = m.endLocked(s, m.now(), true, "accounting: media timeout")
	default:
		m.mu.Unlock()
		return false
	}
	m.mu.Unlock()
	m.finish(e)
	return true
}
