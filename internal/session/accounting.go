package session

import "time"

// Watched is what accounting needs to find a call in its records.
type Watched struct {
	CallID, FromTag string
	Since           time.Time
}

// Watched lists the calls accounting should look for, copied a chunk at
// a time (eachChunked).
func (m *Manager) Watched() []Watched {
	var out []Watched
	m.eachChunked(nil, func(s *Session) {
		out = append(out, Watched{CallID: s.CallID, FromTag: s.FromTag, Since: s.Created})
	}, nil)
	return out
}

// EndUnseen ends a call that accounting saw end (its BYE passed) while no
// stop came from the proxy: it ends without a BYE and debits what
// accounting measured, seconds, within the call's limit; when the record
// carried no duration (seconds < 0) it debits what the daemon measured,
// until now, rather than nothing. It reports whether the call was
// tracked; a call with another From tag (fromTag "" matches any) is
// another call.
func (m *Manager) EndUnseen(callID, fromTag string, seconds int) bool {
	m.mu.Lock()
	s := m.accounted(callID, fromTag)
	if s == nil {
		m.mu.Unlock()
		return false
	}
	var e ending
	if seconds < 0 {
		e = m.endLocked(s, m.now(), false, "accounting: terminated")
	} else {
		m.untrackLocked(s)
		if !s.InProgress() {
			seconds = 0
		}
		if s.Limit != NoLimit && s.InProgress() && seconds > s.Limit {
			seconds = s.Limit
		}
		e = m.finishLocked(s, seconds, false, "accounting: terminated")
		m.releaseEngineLocked(s) // once the debit is owed
	}
	m.mu.Unlock()
	m.finish(e)
	return true
}

// EndSilent ends a call whose media timed out: nobody will send a BYE, so
// the dialog is ended and the call debited until now. It reports whether
// the call was tracked, as EndUnseen does.
func (m *Manager) EndSilent(callID, fromTag string) bool {
	m.mu.Lock()
	s := m.accounted(callID, fromTag)
	if s == nil {
		m.mu.Unlock()
		return false
	}
	e := m.endLocked(s, m.now(), true, "accounting: media timeout")
	m.mu.Unlock()
	m.finish(e)
	return true
}

// accounted returns the call accounting means, nil when it is not
// tracked (or the manager is shut down). Called with the lock held.
func (m *Manager) accounted(callID, fromTag string) *Session {
	s := m.calls[callID]
	if m.closed || s == nil || (fromTag != "" && s.FromTag != "" && fromTag != s.FromTag) {
		return nil
	}
	return s
}
