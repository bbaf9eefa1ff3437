package session

import (
	"log/slog"
	"math"
	"time"
)

// A rating engine that restarts forgets the sessions it counted
// (rating-protocol.md), and nothing it answers says so. Its next answers
// for a party whose calls were counted before are given as if those calls
// were not running: from the whole balance, less nothing they consumed.
// Re-timed to such an answer, the party's calls would talk about twice
// the balance.
//
// What the daemon can know: one engine process answers everything on one
// connection, so an answer carried by a later connection to the engine
// (rating.MaxTime.Generation) may come from an engine that restarted since
// the calls counted on an earlier one. (rating.Conn counts a new
// generation only when the engine closed or refused a connection, not
// when this side dropped one after a request went unanswered.) Every call keeps the generation of
// the connection on which the engine last counted it (Session.counted:
// its init's answer, or its start's re-ask). While a party's calls on an
// engine were counted on different generations, or an answer comes on a
// later one, the engine may have forgotten some of them, and:
//
//   - no answer moves a call of the party later (retimeFrom: only
//     sooner). The engine's answers then overstate the credit, never
//     understate it: what it forgot only lowers the balance. A call
//     whose init was answered before and its start after is held to the
//     init's answer, which counted the others (holdToInitAnswer), as when
//     the start's re-ask fails;
//   - the party's calls share the time they were last given by the
//     engine, as one budget of call-seconds: the remaining time of the
//     calls running when a call is answered is split evenly between them
//     and the new call (shareWithForgottenLocked), and what a call that
//     ends early leaves goes back to the calls that remain
//     (returnShareLocked). With one price per second for all of the
//     party's calls this is the engine's own common end; with different
//     prices it is not, in either direction, and the engine's answers
//     (only sooner) still bound each call.
//
// This lasts until the calls counted on the earlier connection end (a
// party's calls started later are counted on the same, new one). A
// connection the engine closed for another reason (or a reset on the
// network) looks the same: the party's calls are held to the same budget,
// which for one price is the same end. Calls restored at a restart count as counted on
// the engine's first connection of this run.

// generation is the connection generation s was counted on; a call
// counted before this run's first connection counts as counted on it.
func (s *Session) generation() uint64 { return max(s.counted, 1) }

// sharesCredit reports whether c is one of the calls of a party on engine
// that share its credit at the engine: prepaid, owed a debit, answered.
func sharesCredit(c *Session, engine string) bool {
	return c.Prepaid && c.Owed && c.InProgress() && c.Engine == engine
}

// sharesBalance reports whether c's time left is a share of the party's
// balance at engine: a call of the party sharing its credit whose end is
// the engine's answer. A call held to its cap (prepaid_limit: the engine
// answered at least that) was given no less than the balance allowed; its
// time left is its own, not credit the party's other calls may take.
func sharesBalance(c *Session, engine string) bool {
	return sharesCredit(c, engine) && !c.EndAt.IsZero() && engineLimited(c.Limit, c.Cap)
}

// mayHaveForgottenLocked reports whether engine may have forgotten some of
// party's calls there: they (with also, if set, a call just removed) were
// counted on different connections, or the answer at hand (gen, 0 if
// none) came on a later one than some of them.
func (m *Manager) mayHaveForgottenLocked(party, engine string, gen uint64, also *Session) bool {
	oldest, newest := uint64(math.MaxUint64), gen
	seen := func(c *Session) {
		g := c.generation()
		oldest, newest = min(oldest, g), max(newest, g)
	}
	for _, c := range m.parties[party] {
		if sharesCredit(c, engine) {
			seen(c)
		}
	}
	if also != nil {
		seen(also)
	}
	return oldest < newest
}

// shareWithForgottenLocked runs when s, prepaid, is answered: if its
// engine may have forgotten the party's other calls, s and they end
// together when the time those calls have left, split evenly between them
// and s, runs out; no call later than it was to end. It returns how many
// of the other calls were moved, and the records to wait for.
func (m *Manager) shareWithForgottenLocked(s *Session, now time.Time) sharing {
	if !m.mayHaveForgottenLocked(s.Party, s.Engine, 0, nil) {
		return sharing{}
	}
	var left time.Duration
	others := 0
	for _, c := range m.parties[s.Party] {
		if c == s || !sharesBalance(c, s.Engine) {
			continue
		}
		left += max(c.EndAt.Sub(now), 0)
		others++
	}
	if others == 0 {
		return sharing{}
	}
	end := now.Add(left / time.Duration(others+1))
	sh := sharing{end: end, seconds: int(math.Round(end.Sub(now).Seconds()))}
	for _, c := range m.parties[s.Party] {
		if (c != s && !sharesBalance(c, s.Engine)) || c.EndAt.IsZero() || !c.EndAt.After(end) {
			continue
		}
		m.setEndLocked(c, end)
		c.Limit = int(math.Round(end.Sub(c.Answered).Seconds()))
		if c != s { // s's record is saved by its caller
			sh.waits = append(sh.waits, m.journal.Save(c))
		}
	}
	sh.held = true
	return sh
}

// sharing is what shareWithForgottenLocked did.
type sharing struct {
	held    bool
	end     time.Time
	seconds int
	waits   []Wait
}

// logShared waits for the records of the calls a sharing moved and says
// so.
func (m *Manager) logShared(log callLog, sh sharing, party, engine string, by time.Time) {
	if !sh.held {
		return
	}
	for _, w := range sh.waits {
		m.waitLogged(w, party, by)
	}
	log.Info("the rating engine may have restarted since the party's calls were counted (it closed or refused a connection): the new call shares their time",
		slog.String("party", party), slog.String("engine", engine), slog.Int("seconds", sh.seconds),
		slog.Int("moved", len(sh.waits)))
}

// returnShareLocked runs when s has ended at end, removed from the table:
// if its engine may have forgotten some of the party's calls, the time s
// had left goes to the party's calls that remain, split evenly (each up to
// its cap), as the engine would give it them; no call ends sooner for it.
func (m *Manager) returnShareLocked(s *Session, end time.Time) {
	if !sharesBalance(s, s.Engine) || !end.Before(s.EndAt) ||
		!m.mayHaveForgottenLocked(s.Party, s.Engine, 0, s) {
		return
	}
	left := s.EndAt.Sub(end)
	remaining := 0
	for _, c := range m.parties[s.Party] {
		if sharesBalance(c, s.Engine) {
			left += max(c.EndAt.Sub(end), 0)
			remaining++
		}
	}
	if remaining == 0 {
		return
	}
	to := end.Add(left / time.Duration(remaining))
	for _, c := range m.parties[s.Party] {
		if !sharesBalance(c, s.Engine) {
			continue
		}
		e := to
		if c.Cap != NoLimit {
			e = minTime(e, c.Answered.Add(time.Duration(c.Cap)*time.Second))
		}
		if e.Sub(c.EndAt) < time.Second {
			continue // the engine's whole seconds: no record for less
		}
		m.setEndLocked(c, e)
		c.Limit = int(math.Round(e.Sub(c.Answered).Seconds()))
		m.journal.Save(c) // staged before s's end, in order: the end's wait covers it
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
