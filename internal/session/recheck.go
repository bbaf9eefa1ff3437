package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
)

// Re-asking the engine while prepaid calls run (issue 15).
//
// A daemon re-times only the calls it holds, from the answers it gets. With
// several proxies on one engine, an account's calls on another proxy move
// the shared end without this daemon hearing of it, so every prepaid call
// in progress asks again on a schedule (nextCheck) that tightens as its end
// nears: a call learns of the new shared end within one step.
//
// The question is a probe, not a re-ask of the call's own CallId: the
// engine restarts the clock of a session asked about again, forgetting
// what it consumed so far (rating-protocol.md), so re-asking the call
// itself would make the engine hand out that call's consumed credit again,
// to this daemon and to every other one. The probe is a new CallId (same
// party, destination, gateway, cap); the engine counts it as one more
// session of the account, and its release, a 0 s DebitBalance, answers the
// shared end of the sessions that remain: the account's calls, on every
// proxy, with their clocks untouched. That reply re-times the party's calls
// through Debited, like any debit's. The probe is staged as "asked" before
// it is sent and its release goes through the journal and the debit spool,
// so a crash never leaves it counted at the engine.

// minRecheckStep is the shortest time between two re-asks of a call.
const minRecheckStep = 2 * time.Second

// maxRechecksInFlight bounds the probes sent to the engines at once: they
// share each engine's one connection with init and start, which must not
// queue behind many of them. Due probes beyond it wait their turn, up to
// maxRechecksWaiting; past that a step is skipped and taken at the next.
const (
	maxRechecksInFlight = 4
	maxRechecksWaiting  = 1 << 14
)

// rechecks is the manager's re-ask state.
type rechecks struct {
	slots   chan struct{} // one per probe in flight
	waiting int           // probes started and not done, under Manager.mu
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	// parties with a probe in flight, under Manager.mu: one probe answers
	// for all of a party's calls on that engine.
	busy map[string]struct{}
	seq  uint64 // under Manager.mu: makes probe CallIds unique
}

func (r *rechecks) init() {
	r.slots = make(chan struct{}, maxRechecksInFlight)
	r.ctx, r.stop = context.WithCancel(context.Background())
	r.busy = make(map[string]struct{})
}

// nextCheck is when s should next ask the engine: half its remaining time,
// at most the interval and at least minRecheckStep from now; zero when s is
// not a prepaid call in progress, rechecks are off, or the end comes first.
func (m *Manager) nextCheck(s *Session, now time.Time) time.Time {
	interval := m.Limits().RecheckInterval
	if interval <= 0 || m.rater == nil || !s.Prepaid || !s.Owed || !s.InProgress() || s.EndAt.IsZero() {
		return time.Time{}
	}
	left := s.EndAt.Sub(now)
	if left <= minRecheckStep {
		return time.Time{} // the end comes first
	}
	step := min(left/2, interval)
	// Up to a tenth earlier, at random: calls started or restored together
	// would otherwise ask together, every step, in one burst.
	step -= rand.N(step/10 + 1)
	step = max(step, minRecheckStep)
	at := now.Add(step)
	if !at.Before(s.EndAt) {
		return time.Time{}
	}
	return at
}

// armLocked sets s's timer for its end or its next re-ask, whichever comes
// first: the re-asks ride on the per-call timers, so scheduling them costs
// no scan of the table.
func (m *Manager) armLocked(s *Session, now time.Time) {
	if m.closed {
		return // no timer is armed after shutdown; the end time is journaled
	}
	s.checkAt = m.nextCheck(s, now)
	at := s.EndAt
	if !s.checkAt.IsZero() && s.checkAt.Before(at) {
		at = s.checkAt
	}
	if s.InProgress() && !m.canEndEarly() {
		// Kamailio may answer OK to an end request that arrives right
		// at the answer and send no BYE (atAnswerDelay): a call due that
		// soon (a limit of 0, a re-ask at start answering 0) could talk
		// on unlimited. It is ended atAnswerDelay after the answer, as a
		// call ordered ended while ringing is, and still debited its
		// limit (expire ends it at EndAt).
		at = later(at, s.Answered.Add(atAnswerDelay))
	}
	m.setTimerLocked(s, at, now)
}

// spreadCheckLocked moves s's first re-ask to a random moment before the
// one scheduled: calls restored together at a restart would otherwise all
// ask within the same tenth of a step.
func (m *Manager) spreadCheckLocked(s *Session, now time.Time) {
	if s.checkAt.IsZero() || s.timerAt == 0 {
		return
	}
	span := s.checkAt.Sub(now) - minRecheckStep
	if span <= 0 {
		return
	}
	s.checkAt = now.Add(minRecheckStep + rand.N(span))
	if s.checkAt.Before(s.EndAt) {
		m.setTimerLocked(s, s.checkAt, now)
	}
}

// rearmChecks brings each call in progress's next re-ask to within a step
// of the interval now in force, when that is sooner than the one armed;
// spread as at a restore, so they do not all ask at once. The table is
// walked in chunks, the lock released between them.
func (m *Manager) rearmChecks() {
	m.eachChunked(nil, func(s *Session) {
		if s.timerAt == 0 || !s.InProgress() || s.EndAt.IsZero() {
			return
		}
		now := m.now()
		next := m.nextCheck(s, now)
		if next.IsZero() || (!s.checkAt.IsZero() && !next.Before(s.checkAt)) {
			return
		}
		m.armLocked(s, now)
		m.spreadCheckLocked(s, now)
	}, nil)
}

// probe is what a re-ask needs of a call, copied under the lock.
type probe struct {
	callID, party, ruri, sourceIP, app, engine string
	cap                                        int
	seq                                        uint64
}

// recheckLocked runs on s's timer before its end: when a re-ask is due it
// starts one (unless its party has one in flight, or too many are), then
// re-arms the timer for the end or the next step. A skipped step is taken
// at the next one.
func (m *Manager) recheckLocked(s *Session, now time.Time) {
	if !s.checkAt.IsZero() && !now.Before(s.checkAt) && !m.closed && m.Limits().RecheckInterval > 0 {
		_, busy := m.recheck.busy[s.Party]
		switch {
		case busy: // its answer re-times this call too
		case m.recheck.waiting >= maxRechecksWaiting:
			m.log.Debug("re-ask skipped: too many waiting", "callid", s.CallID)
		default:
			m.recheck.busy[s.Party] = struct{}{}
			m.recheck.waiting++
			m.recheck.seq++
			p := probe{callID: s.CallID, party: s.Party, ruri: s.RURI, sourceIP: s.SourceIP,
				app: s.Application, engine: s.Engine, cap: capOrDefault(s.Cap), seq: m.recheck.seq}
			m.recheck.wg.Add(1)
			go m.runProbe(p)
		}
	}
	m.armLocked(s, now)
}

// runProbe asks the engine for the party's shared end with a probe
// session, and releases the probe. A failed probe changes no call: they
// keep their limits and ask again at their next step.
func (m *Manager) runProbe(p probe) {
	defer m.recheck.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.recheck.busy, p.party)
		m.recheck.waiting--
		m.mu.Unlock()
	}()
	select {
	case m.recheck.slots <- struct{}{}:
		defer func() { <-m.recheck.slots }()
	case <-m.recheck.ctx.Done():
		return
	}
	now := m.now()
	log := newCallLog(m.log, p.callID)
	// Unique per daemon run (seq) and across runs (the time): a release
	// still owed from before a restart is never confused with a new probe.
	id := p.callID + "~recheck-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.FormatUint(p.seq, 36)
	asked := m.journal.Asked(&Session{CallID: id, Party: p.party, RURI: p.ruri, SourceIP: p.sourceIP,
		Application: p.app, Engine: p.engine, Limit: NoLimit, Cap: NoLimit, Created: now})
	// The deadline of an init or start, queueing for the engine's
	// connection included; the manager's context ends it at shutdown.
	ctx, cancel := context.WithDeadline(m.recheck.ctx, answerBy(now, m.Limits().ProxyTimeout))
	mt, err := m.rater.MaxSessionTime(ctx, p.engine, rating.Request{CallID: id, From: p.party, To: p.ruri,
		Gateway: p.sourceIP, Application: p.app, Duration: p.cap})
	cancel()
	m.waitLogged(asked, id, time.Time{})
	release := &Owed{Engine: p.engine, Debit: rating.Debit{CallID: id, From: p.party, To: p.ruri,
		Gateway: p.sourceIP, Application: p.app, Duration: 0}}
	switch {
	case errors.Is(err, rating.ErrNotSent):
		// Never reached the engine (down, backing off): nothing to
		// release. Every call of a down engine comes here each step, and
		// the rating client already says the engine is down.
		log.Debug("re-ask not sent; the party's calls keep their limits", "party", p.party, "engine", p.engine, "err", err)
		m.journal.Settle(id)
	case err != nil:
		// Its fate is unknown: the engine may count it. Release it.
		log.Warn("re-ask failed; the party's calls keep their limits", "party", p.party, "engine", p.engine, "err", err)
		m.journal.Release(id, release)
	case mt.Kind == rating.Limited:
		// The release's reply carries the shared end (Debited).
		m.journal.Release(id, release)
		if mt.Seconds == 0 {
			// The engine counts the probe as one more session at this
			// call's price, so 0 means the account's calls have under 2 s
			// left (left < prices + probe's, and the probe's is one of
			// them), maybe none. A call whose timer says more than that
			// is behind the engine (calls on another proxy spent the
			// credit): it ends now, as the credit may be gone. One whose
			// timer says 2 s or less keeps it: the probe alone may have
			// made the 0, for a call with that much left.
			log.Info("re-ask: the account's credit is spent or nearly; its calls past 2 s end now", "party", p.party, "engine", p.engine)
			m.retimeFrom(p.party, p.engine, 0, time.Time{}, time.Time{}, true, minRecheckStep, engineAnswer{})
		}
	default:
		// Locked (the account is at its parallel maximum), or no number:
		// the engine counts no probe and says nothing of the shared end.
		log.Debug("re-ask did not give a number; the party's calls keep their limits", "answer", mt.Kind)
		m.journal.Settle(id)
	}
}

// stopRechecks ends the probes in flight and waits for them; no new one
// starts after. Called without the lock.
func (m *Manager) stopRechecks() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.recheck.stop()
	m.recheck.wg.Wait()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
