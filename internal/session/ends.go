package session

import (
	"log/slog"
	"time"

	"github.com/callcontrol/callcontrol/internal/sipdialog"
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

// earlyEnder is a sipdialog.Ender that may end a dialog not yet answered.
type earlyEnder interface{ CanEndEarly() bool }

// canEndEarly says whether the proxy can end a call still ringing (OpenSIPS,
// by Call-ID): otherwise it is ended when answered.
func (m *Manager) canEndEarly() bool {
	e, ok := m.ender.(earlyEnder)
	return ok && e.CanEndEarly()
}

// Terminate ends a call on an operator's word: BYE both ends (or CANCEL a
// ringing call where the proxy can), debit the real duration. A ringing
// call the proxy cannot end yet is ended when it is answered, and so is
// one it CANCELed if an answer crossed the CANCEL.
func (m *Manager) Terminate(callID string) TerminateResult {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return TerminateShuttingDown
	}
	s := m.calls[callID]
	if s == nil {
		_, ringing := m.atAnswer[callID]
		m.mu.Unlock()
		if ringing {
			return TerminateAtAnswer
		}
		return TerminateUnknown
	}
	if !s.InProgress() && !m.canEndEarly() {
		party, to := s.Party, s.RURI
		wait := m.endAtAnswerLaterLocked(s, EndAtAnswerOperator)
		m.mu.Unlock()
		m.waitLogged(wait, callID, time.Time{})
		m.log.Info("call is ringing and the proxy can end it only once answered: it will be ended then",
			"callid", callID, "party", party, "to", to)
		return TerminateAtAnswer
	}
	now := m.now()
	if s.InProgress() && !m.canEndEarly() && now.Before(s.Answered.Add(atAnswerDelay)) {
		// Answered under a second ago: Kamailio may answer an end
		// request OK and send no BYE this close to the answer
		// (atAnswerDelay). The call is ended by its timer a second
		// after the answer (armLocked), debited until now.
		if s.EndAt.IsZero() || now.Before(s.EndAt) {
			s.endByOperator = true
			m.setEndLocked(s, now)
		}
		wait := m.journal.Save(s)
		party, to := s.Party, s.RURI
		m.mu.Unlock()
		m.waitLogged(wait, callID, time.Time{})
		m.log.Info("call answered under a second ago: it is ended once the proxy can end it", "callid", callID, "party", party, "to", to)
		return TerminateRequested
	}
	var keep *Session
	if !s.InProgress() {
		keep = m.keepForAnswerLocked(s, EndAtAnswerOperator)
	}
	e := m.endKeepingLocked(s, now, true, "operator", keep)
	m.mu.Unlock()
	m.finish(e)
	return TerminateRequested
}

// keepForAnswerLocked keeps a ringing call the proxy was just asked to
// end (CANCEL) aside, already released, as endAtAnswerLaterLocked does:
// the callee's 200 OK may cross the CANCEL, and the proxy then relays it
// and sends `start`, which must find the call to end it, not answer Not
// found and leave it unlimited. A `stop` (the CANCEL won) or the stale
// timeout forgets it. It returns the call kept, to be journaled in the
// same batch as the call's end (finishKeepingLocked): a crash between
// two batches would leave the end without it.
func (m *Manager) keepForAnswerLocked(s *Session, why string) *Session {
	g := *s
	g.timerAt, g.Owed, g.Engine, g.EndAtAnswer = 0, false, "", why
	m.keepAsideLocked(&g)
	return &g
}

// keepAsideLocked adds g to the calls kept to be ended at answer, in place
// of any kept under its Call-ID.
func (m *Manager) keepAsideLocked(g *Session) {
	m.unkeepLocked(g.CallID)
	m.atAnswer[g.CallID] = g
	m.aside.add(g)
}

// unkeepLocked forgets the call kept aside under callID, if any.
func (m *Manager) unkeepLocked(callID string) {
	if g := m.atAnswer[callID]; g != nil {
		delete(m.atAnswer, callID)
		m.aside.remove(g)
	}
}

// endAtAnswerLaterLocked takes a ringing call out of the table (releasing
// what the engine counts for it with a 0 s debit, and its place in the
// party's call limit) and keeps it aside, journaled in the same step, to
// be ended the moment it is answered.
func (m *Manager) endAtAnswerLaterLocked(s *Session, why string) Wait {
	m.removeLocked(s)
	var debit *Owed
	if s.Owed {
		debit = m.owed(s, 0)
	}
	g := *s
	g.timerAt, g.Owed, g.Engine, g.EndAtAnswer = 0, false, "", why
	m.keepAsideLocked(&g)
	return m.journal.EndAtAnswer(s.CallID, debit, &g)
}

// atAnswerDelay is how long after `start` a call ordered ended while
// ringing is ended. Kamailio 5.6 sends `start` on the 200 OK, before the
// ACK confirms the dialog; a dlg.end_dlg then is answered OK but sends no
// BYE ("terminating non-confirmed dialogs not supported"). The ACK
// follows the 200 OK within a round trip.
const atAnswerDelay = time.Second

// endAtAnswerLocked starts a call answered after it was ordered ended,
// with its timer set to end it once the ACK has had time to confirm the
// dialog; it is called with the lock held and releases it.
func (m *Manager) endAtAnswerLocked(g *Session, dialogID string, by time.Time, log callLog) Reply {
	id, err := sipdialog.ParseID(dialogID)
	if err != nil && !m.canEndEarly() {
		log.Error("start with an unusable dialogid: the proxy ends dialogs only by id, so this call cannot be cut; end it on the proxy",
			"dialogid", dialogID)
	}
	return m.endAnsweredAtAnswerLocked(g, id, err == nil, by, log)
}

// endAnsweredAtAnswerLocked is endAtAnswerLocked with the dialog's id
// parsed (hasID false: none usable), for a `start` or for the proxy's word
// that the call was answered while the daemon was down.
func (m *Manager) endAnsweredAtAnswerLocked(g *Session, id sipdialog.ID, hasID bool, by time.Time, log callLog) Reply {
	m.unkeepLocked(g.CallID) // before addLocked: g.seq is its place aside until then
	now := m.now()
	g.Answered = now
	g.Dialog, g.HasDialog = id, hasID
	m.addLocked(g) // released already: no engine, no debit
	m.setEndLocked(g, now.Add(atAnswerDelay))
	wait := m.journal.Save(g)
	m.journal.DropAtAnswer(g.CallID)
	m.mu.Unlock()
	log.Info("call answered after it was ordered ended: ending it now", "why", g.EndAtAnswer)
	if m.waitLogged(wait, g.CallID, by) {
		return m.startLate(log)
	}
	return ReplyOk
}

// dropAtAnswerLocked forgets a call kept to be ended at answer (its `stop`
// came: it failed while ringing); it says whether there was one.
func (m *Manager) dropAtAnswerLocked(callID string) bool {
	if _, ok := m.atAnswer[callID]; !ok {
		return false
	}
	m.unkeepLocked(callID)
	m.journal.DropAtAnswer(callID)
	return true
}

// expireAtAnswer forgets the calls kept to be ended at answer that
// neither `start` nor `stop` came for within the stale timeout. It finds
// and drops them a chunk at a time, as Housekeep does the table's.
func (m *Manager) expireAtAnswer(now time.Time, lim Limits) {
	stale := func(g *Session) bool { return now.Sub(g.Created) >= lim.StaleTimeout }
	var due []*Session
	m.eachChunkedIn(&m.aside, nil, func(g *Session) {
		if stale(g) {
			due = append(due, g)
		}
	}, nil)
	for len(due) > 0 {
		chunk := due[:min(len(due), listChunk)]
		due = due[len(chunk):]
		m.mu.Lock()
		for _, g := range chunk {
			if !m.closed && m.atAnswer[g.CallID] == g { // not answered, stopped or kept anew meanwhile
				m.dropAtAnswerLocked(g.CallID)
			}
		}
		m.mu.Unlock()
	}
}

// setupTimeLocked handles a call still ringing at the end of the setup
// time: it is released (0 s debit) and dropped from the table, and kept
// aside to be ended the moment it is answered, so a late answer never
// runs unlimited. Where the proxy can end a ringing call it is ended now
// too (the callee is CANCELed), and kept aside all the same: an answer
// may cross the CANCEL.
func (m *Manager) setupTimeLocked(s *Session, now time.Time, lim Limits) (ending, bool) {
	if m.canEndEarly() {
		m.removeLocked(s)
		keep := m.keepForAnswerLocked(s, EndAtAnswerSetupTime)
		return m.finishKeepingLocked(s, 0, true, EndAtAnswerSetupTime, keep), true
	}
	m.endAtAnswerLaterLocked(s, EndAtAnswerSetupTime) // lands in order; nobody waits on housekeeping
	logLine(m.log, slog.LevelInfo, "call not answered within the setup time: released; it is ended if it is answered later",
		[]slog.Attr{slog.String("callid", s.CallID), slog.String("party", s.Party), slog.String("to", s.RURI)}, nil, nil)
	return ending{}, false
}

// RestoreAtAnswer loads the calls kept, before a restart, to be ended when
// answered.
func (m *Manager) RestoreAtAnswer(list []*Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for _, g := range list {
		if m.calls[g.CallID] == nil {
			m.keepAsideLocked(g)
		}
	}
}

// AtAnswer returns a copy of a call kept to be ended when answered.
func (m *Manager) AtAnswer(callID string) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.atAnswer[callID]
	if g == nil {
		return Session{}, false
	}
	return *g, true
}

// EachAtAnswer calls f, outside the lock, for a copy of every call kept
// to be ended when answered, copied in chunks as Each does (and with its
// guarantees).
func (m *Manager) EachAtAnswer(f func(s *Session)) { m.eachCopyIn(&m.aside, nil, f) }
