package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// Calls answered while the daemon was down. The call_control module
// drops a `start` it could not deliver, so a call ringing when the daemon
// stopped and answered before it came back is restored ringing, and its
// answer would never arm its timer: on OpenSIPS it would talk free until
// the setup time cut it (debited nothing), on Kamailio it would be kept
// aside for a `start` that never comes and then forgotten, unlimited.
// After a restore the daemon asks the proxy about each such call.

// Ringing lists the Call-IDs, among the sessions and the calls kept to be
// ended at answer that a restart restores, of those not answered yet:
// the ones whose answer may have been missed. Call it before handing the
// sessions to Restore (the manager's lock guards them after).
func Ringing(sessions, atAnswer []*Session) []string {
	var ids []string
	for _, s := range sessions {
		if !s.InProgress() {
			ids = append(ids, s.CallID)
		}
	}
	for _, g := range atAnswer {
		ids = append(ids, g.CallID)
	}
	return ids
}

// How FindMissedAnswers paces itself: lookups in flight at once (the
// proxy's management socket has a short queue), how long one may take,
// and the waits between rounds for the calls the proxy did not answer for.
const (
	missedLookups      = 8
	missedLookupWait   = 5 * time.Second
	missedRetryFirst   = time.Second
	missedRetryLongest = time.Minute
)

// missedOutcome is what the proxy's word did to one call.
type missedOutcome int

const (
	missedSettled  missedOutcome = iota // its start or stop came, or it was dropped: nothing to do
	missedRinging                       // still ringing: asked again, its start may be lost too
	missedAnswered                      // answered while the daemon was down: timed now
	missedGone                          // ended while the daemon was down: released
)

// FindMissedAnswers asks the proxy, for each of callIDs still waiting for
// its answer, whether its dialog was answered: an answered call is timed
// from the proxy's answer time (and ended at once if its time passed), a
// call the proxy no longer has is released. A call still ringing is asked
// about again, as is one the proxy gave no answer for, with growing waits,
// until ctx ends or the call is settled: its `start` may still be lost
// after the restart, as Kamailio's processes wait 10 s before they try to
// reach a daemon again.
func (m *Manager) FindMissedAnswers(ctx context.Context, looker sipdialog.Looker, callIDs []string) {
	m.ExpectMissedAnswers(callIDs)
	defer m.forgetMissedAnswers()
	var counts [missedGone + 1]atomic.Int64
	// round looks up ids, 8 at a time, and returns those left unsettled
	// and how many of them the proxy gave no answer for.
	round := func(ids []string) (again []string, failed int64) {
		var (
			mu    sync.Mutex
			nfail atomic.Int64
			wg    sync.WaitGroup
			slots = make(chan struct{}, missedLookups)
		)
		for _, id := range ids {
			if !m.awaitsAnswer(id) {
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				lctx, cancel := context.WithTimeout(ctx, missedLookupWait)
				found, err := looker.Lookup(lctx, id)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						m.log.Debug("proxy gave no answer about a call restored ringing", "callid", id, "err", err.Error())
						if m.stopHeldUnanswered(id) {
							counts[missedSettled].Add(1)
							return
						}
					}
					nfail.Add(1)
				} else if o := m.missedAnswer(id, found); o != missedRinging {
					counts[o].Add(1)
					return
				}
				mu.Lock()
				again = append(again, id)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return again, nfail.Load()
	}
	wait := missedRetryFirst
	for len(callIDs) > 0 {
		again, failed := round(callIDs)
		if ctx.Err() != nil {
			return
		}
		callIDs = again
		if len(callIDs) == 0 {
			break
		}
		if failed > 0 {
			m.log.Warn("the proxy gave no answer about calls restored ringing: they may have been answered while the daemon was down and run without a timer; asking again",
				"calls", failed, "in", wait.String())
		}
		// A stop held meanwhile (Stop) is asked about at once: Kamailio
		// lists an ended dialog only a few seconds.
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-timer.C:
				break waiting
			case <-m.missedPoke:
				stopped := m.heldStops(callIDs)
				if len(stopped) == 0 {
					continue
				}
				round(stopped)
				if ctx.Err() != nil {
					timer.Stop()
					return
				}
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
		wait = min(2*wait, missedRetryLongest)
	}
	m.log.Info("calls restored ringing all settled",
		"answered_unseen", counts[missedAnswered].Load(), "ended_unseen", counts[missedGone].Load(),
		"settled_by_the_proxy", counts[missedSettled].Load())
}

// ExpectMissedAnswers marks callIDs, restored ringing, as waiting for the
// proxy's word (FindMissedAnswers): housekeeping does not end them at
// their setup time before it came (it would cut a call answered in time,
// released free), and a stop meanwhile is held for it. Call it after
// Restore and before the proxy socket serves, so that no stop comes
// unmarked; FindMissedAnswers marks them too, keeping what is marked.
func (m *Manager) ExpectMissedAnswers(callIDs []string) {
	if len(callIDs) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.missed == nil {
		m.missed = make(map[string]missedMark, len(callIDs))
		m.unheardUntil = m.now().Add(m.Limits().SetupTime)
	}
	for _, id := range callIDs {
		if _, marked := m.missed[id]; !marked {
			m.missed[id] = missedMark{}
		}
	}
}

// missedMark is where a call restored ringing stands with the proxy.
type missedMark struct {
	heard     bool      // the proxy answered a lookup: still ringing
	stoppedAt time.Time // its stop, held for the proxy's word; zero if none
}

// forgetMissedAnswers clears the marks once the lookups are over.
func (m *Manager) forgetMissedAnswers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.missed = nil
}

// heldStops lists those of callIDs whose stop Stop holds.
func (m *Manager) heldStops(callIDs []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, id := range callIDs {
		if !m.missed[id].stoppedAt.IsZero() {
			ids = append(ids, id)
		}
	}
	return ids
}

// stopHeldUnanswered applies a held stop the proxy gave no word about as
// it came: released, nothing owed being known (holding it longer would
// keep the call counted for a proxy that may never answer). It says
// whether there was one.
func (m *Manager) stopHeldUnanswered(callID string) bool {
	m.mu.Lock()
	at := m.missed[callID].stoppedAt
	s := m.calls[callID]
	if m.closed || at.IsZero() || s == nil || s.InProgress() {
		m.mu.Unlock()
		return false
	}
	delete(m.missed, callID)
	e := m.endLocked(s, at, false, "stop (the proxy said nothing of an answer while the daemon was down)")
	m.mu.Unlock()
	newCallLog(m.log, callID).Warn("stop of a call restored ringing: the proxy gave no word on whether it was answered while the daemon was down; released, nothing debited")
	m.finish(e)
	return true
}

// awaitsAnswer says whether a call is still ringing or kept to be ended
// at answer.
func (m *Manager) awaitsAnswer(callID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.calls[callID]; s != nil {
		return !s.InProgress()
	}
	return m.atAnswer[callID] != nil
}

// missedAnswer applies what the proxy said of a call restored ringing.
func (m *Manager) missedAnswer(callID string, f sipdialog.Found) missedOutcome {
	log := newCallLog(m.log, callID)
	m.mu.Lock()
	stoppedAt := m.missed[callID].stoppedAt
	delete(m.missed, callID) // put back below, heard, if still ringing
	if m.closed {
		m.mu.Unlock()
		return missedSettled
	}
	if s := m.calls[callID]; s != nil {
		switch {
		case s.InProgress():
			m.mu.Unlock()
			return missedSettled
		case !f.Exists && f.Ended && !f.AnsweredAt.IsZero() && !f.EndedAt.Before(f.AnsweredAt):
			return m.answeredAndEndedMeanwhileLocked(s, f, log)
		case !f.Exists:
			// Its stop was lost as its start would have been: it failed
			// or was canceled while the daemon was down.
			e := m.endLocked(s, m.now(), false, "gone from the proxy (ended while the daemon was down)")
			m.mu.Unlock()
			m.finish(e)
			return missedGone
		case !f.Answered && !stoppedAt.IsZero():
			e := m.endLocked(s, stoppedAt, false, "stop (the proxy says it was never answered)")
			m.mu.Unlock()
			m.finish(e)
			return missedGone
		case !f.Answered:
			if m.missed != nil {
				m.missed[callID] = missedMark{heard: true} // the setup time applies again
			}
			m.mu.Unlock()
			return missedRinging
		case !stoppedAt.IsZero():
			// Its start and its stop were missed, and the proxy still
			// lists it answered: it talked from its answer to its stop.
			f.Ended, f.EndedAt = true, stoppedAt
			return m.answeredAndEndedMeanwhileLocked(s, f, log)
		}
		return m.answeredMeanwhileLocked(s, f, log)
	}
	g := m.atAnswer[callID]
	switch {
	case g == nil:
		m.mu.Unlock()
		return missedSettled
	case !f.Exists:
		m.dropAtAnswerLocked(callID)
		m.mu.Unlock()
		return missedGone
	case !f.Answered:
		m.mu.Unlock()
		return missedRinging
	}
	m.endAnsweredAtAnswerLocked(g, f.Dialog, f.HasDialog, time.Time{}, log)
	return missedAnswered
}

// answeredMeanwhileLocked times a call the proxy says was answered while
// the daemon was down, from the proxy's answer time (whole seconds, so up
// to a second early: the limit is never exceeded); without one, from its
// setup, the earliest it can have been. It releases the lock.
func (m *Manager) answeredMeanwhileLocked(s *Session, f sipdialog.Found, log callLog) missedOutcome {
	now := m.now()
	told := !f.AnsweredAt.IsZero()
	answered := clampTime(f.AnsweredAt, s.Created, now) // not told: from its setup
	m.answerLocked(s, answered)
	if f.HasDialog {
		s.Dialog, s.HasDialog = f.Dialog, true
	}
	// The limit is the one the engine gave at init: the re-ask at start
	// would count from now what the call has already talked. Its
	// re-checks (recheck.go) share the party's balance from here on.
	if s.Limit != NoLimit {
		m.setEndLocked(s, answered.Add(time.Duration(s.Limit)*time.Second))
	}
	wait := m.journal.Save(s)
	limit, endAt, dialogID := s.Limit, s.EndAt, s.Dialog.String()
	if !s.HasDialog {
		dialogID = ""
	}
	// The init's answer counted the party's calls already running: as a
	// start whose re-ask fails does, none of them ends after this one, nor
	// after the end that answer gave (holdToInitAnswer); unless this call's
	// limit is its cap, not that answer: it ends first, and its debit's
	// reply re-times them.
	shared := s.Prepaid && s.Owed && m.rater != nil && engineLimited(s.Limit, s.Cap)
	party, engine, created, capSecs := s.Party, s.Engine, s.Created, s.Cap
	m.mu.Unlock()
	log.Warn("call answered while the daemon was down (its start was lost): timed from the proxy's answer",
		"answered", answered.UTC().Format(time.RFC3339), "answer_time_from_proxy", told, "limit", limit,
		"ends", formatEnd(endAt), "dialogid", dialogID)
	m.waitLogged(wait, s.CallID, time.Time{})
	if shared {
		m.retime(party, engine, max(int(endAt.Sub(now)/time.Second), 0), time.Time{}, true)
		m.holdToInitAnswer(party, engine, created, limit, capSecs, time.Time{}) // the calls answered before its init
	}
	return missedAnswered
}

// answeredAndEndedMeanwhileLocked ends a call the proxy still lists as
// answered and ended while the daemon was down (Kamailio keeps an ended
// dialog a while), debited what the proxy says it lasted, up to its
// limit: released free, it would have talked for nothing. It releases
// the lock.
func (m *Manager) answeredAndEndedMeanwhileLocked(s *Session, f sipdialog.Found, log callLog) missedOutcome {
	now := m.now()
	answered := clampTime(f.AnsweredAt, s.Created, now)
	ended := clampTime(f.EndedAt, answered, now)
	m.answerLocked(s, answered)
	if s.Limit != NoLimit {
		s.EndAt = answered.Add(time.Duration(s.Limit) * time.Second) // endLocked caps the duration there
	}
	e := m.endLocked(s, ended, false, "answered and ended while the daemon was down (the proxy's record)")
	m.mu.Unlock()
	log.Warn("call answered and ended while the daemon was down (its start and stop were lost): debited what the proxy says it lasted",
		"answered", answered.UTC().Format(time.RFC3339), "ended", ended.UTC().Format(time.RFC3339), "duration", e.duration)
	m.finish(e)
	return missedGone
}

// clampTime is t, brought within [lo, hi].
func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		t = lo
	}
	if t.After(hi) {
		t = hi
	}
	return t
}

// formatEnd is an end time for a log line: "none" for a call without one.
func formatEnd(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// pokeMissed wakes FindMissedAnswers for a stop held meanwhile.
func (m *Manager) pokeMissed() {
	select {
	case m.missedPoke <- struct{}{}:
	default:
	}
}
