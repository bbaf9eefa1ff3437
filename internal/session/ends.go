package session

import (
	"log/slog"
	"time"
)

// Why a ringing call is to be ended when answered (Session.EndAtAnswer).
const (
	EndAtAnswerOperator  = "terminated by an operator before it was answered"
	EndAtAnswerSetupTime = "not answered within the setup time"
)

// TerminateResult says what an operator's terminate did.
type TerminateResult int

const (
	// TerminateUnknown: no such call.
	TerminateUnknown TerminateResult = iota
	// TerminateRequested: the call is ended; the request to end its dialog
	// is journaled and sent to the proxy, which confirms it or not.
	TerminateRequested
	// TerminateAtAnswer: the call is still ringing and the proxy cannot end
	// it before it is answered (Kamailio): it is ended the moment it is.
	TerminateAtAnswer
	// TerminateShuttingDown: the daemon is stopping; nothing was done.
	TerminateShuttingDown
)

// earlyEnder is a dialog.Ender that may end a dialog not yet answered.
type earlyEnder interface{ CanEndEarly() bool }

// canEndEarly says whether the proxy can end a call still ringing (OpenSIPS,
// by Call-ID): otherwise it is ended when answered.
func (m *Manager) canEndEarly() bool {
	e, ok := m.ender.(earlyEnder)
	return ok && e.CanEndEarly()
}

// Terminate ends a call on an operator's word: BYE both ends (or CANCEL a
// ringing call where the proxy can), debit the real duration. A ringing
// call the proxy cannot end yet is ended when it is answered.
func (m *Manager) Terminate(callID string) TerminateResult {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return TerminateShuttingDown
	}
	s := m.calls[callID]
	if s == nil {
		m.mu.Unlock()
		return TerminateUnknown
	}
	if !s.InProgress() && !m.canEndEarly() {
		s.EndAtAnswer = EndAtAnswerOperator
		wait := m.journal.Save(s)
		m.mu.Unlock()
		m.waitLogged(wait, callID, time.Time{})
		m.log.Info("call is ringing and the proxy can end it only once answered: it will be ended then", "callid", callID)
		return TerminateAtAnswer
	}
	e := m.endLocked(s, m.now(), true, "operator")
	m.mu.Unlock()
	m.finish(e)
	return TerminateRequested
}

// endAtAnswerLocked ends a call answered after it was ordered ended; it
// is called with the lock held and releases it.
func (m *Manager) endAtAnswerLocked(s *Session, now, by time.Time, log callLog) string {
	reason := "ended at answer: " + s.EndAtAnswer
	e := m.endLocked(s, now, true, reason)
	m.mu.Unlock()
	m.finishBy(e, by)
	log.Info("call answered after it was ordered ended: ending it now", "reason", s.EndAtAnswer)
	return ReplyOk
}

// setupTimeLocked handles a call still ringing at the end of the setup
// time. Where the proxy can end a ringing call it is ended (the callee is
// CANCELed) with a 0 s debit. Otherwise it is kept, marked to be ended
// the moment it is answered, so that a late answer never runs unlimited;
// a mark nobody answered is dropped after the stale timeout.
func (m *Manager) setupTimeLocked(s *Session, now time.Time, lim Limits) (ending, bool) {
	switch {
	case m.canEndEarly():
		m.removeLocked(s)
		return m.finishLocked(s, 0, true, EndAtAnswerSetupTime), true
	case s.EndAtAnswer == "":
		s.EndAtAnswer = EndAtAnswerSetupTime
		m.journal.Save(s) // lands in order; nobody waits on housekeeping
		logLine(m.log, slog.LevelInfo, "call not answered within the setup time: it will be ended if it is answered",
			[]slog.Attr{slog.String("callid", s.CallID), slog.String("party", s.Party)}, nil, nil)
		return ending{}, false
	case now.Sub(s.Created) >= lim.StaleTimeout:
		m.removeLocked(s)
		return m.finishLocked(s, 0, false, "never answered, forgotten after the stale timeout"), true
	}
	return ending{}, false
}
