// Package session holds the tracked calls and applies the rules of
// ../shared/spec/behaviour.md: who pays, what the proxy is answered at
// init, timers, re-timing the parallel prepaid calls of a party, the
// debit owed when a call ends, and housekeeping.
package session

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/budget"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// Reply is the manager's answer to init, start or stop. The words the
// proxy module reads are the proxy package's (daemon/proxydoor.go maps
// one to the other). The zero value is ReplyError: an answer nobody set
// refuses the call.
type Reply uint8

// The answers to init (each but Ok and NotFound) and to start and stop
// (Ok, NotFound, Error); ../shared/spec/proxy-protocol.md says what the
// module does with each.
const (
	ReplyError Reply = iota
	ReplyNoLimit
	ReplyLimited
	ReplyNoCredit
	ReplyLocked
	ReplyDuplicatedCallID
	ReplyCallLimitReached
	ReplyOk
	ReplyNotFound
)

var replyNames = [...]string{"Error", "NoLimit", "Limited", "NoCredit", "Locked", "DuplicatedCallID", "CallLimitReached", "Ok", "NotFound"}

// String names the reply for tests and logs (not the wire word).
func (r Reply) String() string {
	if int(r) < len(replyNames) {
		return "Reply" + replyNames[r]
	}
	return "Reply(" + strconv.Itoa(int(r)) + ")"
}

// DefaultMaxDuration is the Duration sent to the engine when neither
// prepaid_limit nor limit is set (the engine answers 0 without one).
const DefaultMaxDuration = 36000

// Limits are the configurable rules; they may change on reload.
type Limits struct {
	Limit        int // seconds or NoLimit
	PrepaidLimit int // seconds or NoLimit
	SetupTime    time.Duration
	StaleTimeout time.Duration
	ProxyTimeout time.Duration // the proxy's socket_timeout: answer before it
	// RecheckInterval is the longest time between two re-asks of the
	// engine for a prepaid call in progress (recheck.go); 0: never.
	RecheckInterval time.Duration
	// RefuseNotDurable answers init Error when the call's record cannot
	// be written, instead of serving the call from memory.
	RefuseNotDurable bool
}

// Rater is the rating engine pool, nil when no engine is configured.
type Rater interface {
	Pick(party string) string
	Acquire(party, engine string)
	Release(party string)
	MaxSessionTime(ctx context.Context, engine string, r rating.Request) (rating.MaxTime, error)
}

// Owed is a debit the manager owes the engine.
type Owed = rating.Owed

// Wait blocks until a journal write is durable and returns its error. A
// non-zero by bounds the wait: once by passes, Wait returns an error whose
// Timeout method says true, and the write still lands later, in order.
// Not calling a Wait changes only what the caller learns: the write lands
// all the same.
type Wait func(by time.Time) error

// late reports whether err is a Wait that gave up at its deadline.
func late(err error) bool {
	if err == nil {
		return false // before t, which escapes: no allocation per request
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Journal makes the table durable and owes debits. End removes a session
// and records its debit (if any) in one atomic step, so a crash never
// leaves both the session and its debit, nor neither. Release is End for
// a caller that does not wait for it.
//
// Asked records, before the engine is asked at init, that a MaxSessionTime
// for s.CallID may be counted by s.Engine. Save, End and Settle each clear
// that mark in the same step, so a crash between the question and the
// answer to the proxy leaves the mark, and the next start releases the
// engine's session with a 0 s debit (ReleaseAsked).
//
// EndWithBye is End that also records the request to end the call's
// dialog, in the same atomic step; the record stays until the proxy
// confirms. It returns bye with the record's reference set, to be handed
// to the dialog client. EndAtAnswer is End that also records s, ringing,
// as to be ended when answered (Session.EndAtAnswer says why), until
// DropAtAnswer. EndWithByeAtAnswer is both in one step: a ringing call
// the proxy is asked to end (CANCEL), kept in case an answer crosses it.
type Journal interface {
	Asked(s *Session) Wait
	Save(s *Session) Wait
	End(callID string, debit *Owed) Wait
	Release(callID string, debit *Owed)
	EndWithBye(callID string, debit *Owed, bye sipdialog.Target) (Wait, sipdialog.Target)
	EndWithByeAtAnswer(callID string, debit *Owed, bye sipdialog.Target, s *Session) (Wait, sipdialog.Target)
	EndAtAnswer(callID string, debit *Owed, s *Session) Wait
	DropAtAnswer(callID string)
	Settle(callID string)
}

// Manager is the session table. Its methods are safe for concurrent use;
// none blocks on a peer while holding the lock.
type Manager struct {
	limits  atomic.Pointer[Limits]
	rater   Rater
	ender   sipdialog.Ender
	journal Journal
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	calls   map[string]*Session
	parties map[string][]*Session
	// atAnswer holds calls ended while ringing that the proxy could not
	// end yet (Kamailio): a late `start` ends them at once (ends.go).
	atAnswer map[string]*Session
	order    order // the calls again, in the order added: for listings
	aside    order // atAnswer again, in the order kept: walked in chunks
	closed   bool
	recheck  rechecks
	timers   timers
	answered int // calls in the table answered: Counts needs no walk
	noDialog noDialogWatch

	unrated refusals      // inits answered Error because no engine could rate the call
	listing chan struct{} // one slot: one listing at a time (see Walk)

	// missed: calls restored ringing, until the proxy's word settles
	// them (missed.go). Until it first answered a lookup about one, the
	// setup time waits for its word, up to unheardUntil (one more setup
	// time: a proxy that never answers does not keep them ringing,
	// counted, for ever). missedPoke wakes the lookups for a stop held.
	missed       map[string]missedMark
	unheardUntil time.Time
	missedPoke   chan struct{}
}

// NewManager returns an empty table. rater may be nil (postpaid only).
func NewManager(l Limits, rater Rater, ender sipdialog.Ender, j Journal, log *slog.Logger) *Manager {
	m := &Manager{rater: rater, ender: ender, journal: j, log: log, now: time.Now,
		calls: make(map[string]*Session), parties: make(map[string][]*Session), atAnswer: make(map[string]*Session),
		listing: make(chan struct{}, 1), missedPoke: make(chan struct{}, 1)}
	m.recheck.init()
	m.SetLimits(l)
	return m
}

// SetLimits applies new limits to calls set up from now on. Re-asks
// turned on, or made more frequent, also reach the calls in progress
// (rearmChecks): with several proxies a call that does not ask talks on
// its own end, past the account's shared one.
func (m *Manager) SetLimits(l Limits) {
	old := m.limits.Swap(&l)
	if old == nil || m.rater == nil || l.RecheckInterval <= 0 ||
		(old.RecheckInterval > 0 && l.RecheckInterval >= old.RecheckInterval) {
		return
	}
	m.rearmChecks()
}

// Limits returns the limits in force.
func (m *Manager) Limits() Limits { return *m.limits.Load() }

// InitRequest is what the proxy says at init.
type InitRequest struct {
	CallID, RURI, Diverter, SourceIP, From, FromTag, Prepaid, CallLimit, CallToken, Application string
}

// Init decides whether a call may proceed and for how long. It answers
// before received plus the proxy's timeout, whatever the engine does.
//
// It runs in phases: read (the request), admit (against the table), rate
// (the engine), track (into the table) and persist (the state log). The first
// phase that decides the answer ends the init, and one cleanup, keyed on
// that decision, undoes what the earlier phases set up.
func (m *Manager) Init(r *InitRequest, received time.Time) Reply {
	c := initCall{received: received, lim: m.Limits()}
	// Neither r nor the log is in initCall, and the log is extended here,
	// not in a phase: either would escape, an allocation per call.
	log := newCallLog(m.log, r.CallID)
	d := m.read(&c, r, log)
	if !d.decided() {
		log = log.with(slog.String("party", c.party), slog.String("to", r.RURI))
		d = m.admit(&c, r, log)
	}
	if !d.decided() {
		d = m.rate(&c, r, log)
	}
	if !d.decided() {
		d = m.track(&c, log)
	}
	if !d.decided() {
		d = m.persist(&c, log)
	}
	m.cleanUp(&c, r, d)
	if c.reserved {
		m.rater.(reserver).Unreserve(c.party) // after track's Acquire, if any
	}
	return d.reply
}

// initCall is what an init has learnt and set up so far.
type initCall struct {
	received time.Time
	lim      Limits

	party, token, app string
	callLimit         int
	// carried is the engine that already counts this Call-ID, carried
	// over from an init being set up again for the same destination.
	carried string
	asked   bool     // the asked mark is written: the engine was asked
	s       *Session // the call, once admitted
	saved   Wait     // its record in the state log, once tracked

	// releaseFirst is the 0 s debit owed for an earlier init of this
	// call to another destination, to be delivered before the engine is
	// asked again (rate): the engine keys its sessions by CallId.
	releaseFirst *Owed
	// reserved: the party is held on its engine (reserver) until the
	// init ends.
	reserved bool
}

// reserver is a Rater that holds a party on the engine it picks until the
// init that asked ends (rating.Pool): without it, a second call of the
// party during the first one's round trip may be picked onto another
// engine, if the first one's health or the engine list changed, and the
// account would be counted on two balances.
type reserver interface {
	Reserve(party string) string
	Unreserve(party string)
}

// initDecision is how an init ends: the reply, and what is left to undo.
// The zero value is no decision yet: the next phase runs.
type initDecision struct {
	done    bool
	reply   Reply
	cleanup initCleanup
	engine  string // letGo: the engine that may count the call, "" none
}

func (d initDecision) decided() bool { return d.done }

// initCleanup is what the cleanup of an init does.
type initCleanup uint8

const (
	// keep undoes nothing: nothing was set up yet, or the call is
	// tracked (Limited).
	keep initCleanup = iota
	// letGo: the call is not tracked. The engine that may count it is
	// owed a 0 s debit, so it forgets the call; with none, an asked mark
	// is cleared.
	letGo
	// abandonCall: the call is in the table but answered Error after
	// all: it is ended, releasing what the engine counts for it.
	abandonCall
)

func answer(reply Reply) initDecision { return initDecision{done: true, reply: reply, cleanup: keep} }

func letGoOf(reply Reply, engine string) initDecision {
	return initDecision{done: true, reply: reply, cleanup: letGo, engine: engine}
}

// cleanUp undoes, for the decision d, what the phases of an init set up.
func (m *Manager) cleanUp(c *initCall, r *InitRequest, d initDecision) {
	switch d.cleanup {
	case letGo:
		if c.releaseFirst != nil {
			// Refused before rate delivered it (the call limit of the
			// party the call is now billed to): the call's old session
			// is gone, so the earlier question is owed here, durably
			// (TestSerialForkRefusedAtCallLimitReleasesTheFirstQuestion).
			m.journal.Release(r.CallID, c.releaseFirst)
			c.releaseFirst = nil
		}
		if d.engine == "" {
			if c.asked {
				m.journal.Settle(r.CallID)
			}
			return
		}
		m.journal.Release(r.CallID, &Owed{Engine: d.engine, Debit: rating.Debit{CallID: r.CallID, From: c.party,
			To: r.RURI, Gateway: r.SourceIP, Application: c.app, Duration: 0}})
	case abandonCall:
		m.abandon(c.s)
	}
}

// read checks the request: without a Call-ID or a billing party it is
// answered Error.
func (m *Manager) read(c *initCall, r *InitRequest, log callLog) initDecision {
	if r.CallID == "" {
		log.Warn("init refused: no callid")
		return answer(ReplyError)
	}
	party, err := BillingParty(r.From, r.Diverter)
	if err != nil {
		log.Warn("init refused: no billing party", "from", r.From, "diverter", r.Diverter, "to", r.RURI)
		return answer(ReplyError)
	}
	c.party = party
	if r.CallLimit != "" && r.CallLimit != "None" { // spares Atoi's error, an allocation, on every call
		c.callLimit, _ = strconv.Atoi(r.CallLimit)
		c.callLimit = max(c.callLimit, 0) // only a call_limit above 0 limits (behaviour.md)
	}
	c.token = r.CallToken
	if c.token == "" {
		c.token = "None"
	}
	c.app = r.Application
	if c.app == "" {
		c.app = "audio"
	}
	return initDecision{}
}

// admit checks the table: a duplicated Call-ID and a party at its call
// limit are answered here. A call set up again (serial fork) replaces its
// old session; what the engine counts for it is carried over when the
// call goes to the same destination, released otherwise.
func (m *Manager) admit(c *initCall, r *InitRequest, log callLog) initDecision {
	party := c.party
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return answer(ReplyError)
	}
	if g := m.atAnswer[r.CallID]; g != nil && g.Token != c.token {
		// Kept aside to be ended at answer: the Call-ID is still in use
		// by that call, ringing at the proxy.
		m.mu.Unlock()
		log.Info("init refused: duplicated callid", "token", c.token, "known_token", g.Token, "known_state", "ended at answer")
		return answer(ReplyDuplicatedCallID)
	} else if g != nil && g.EndAtAnswer == EndAtAnswerOperator {
		// The same call set up again (serial fork) after an operator
		// ended it while ringing: the order covers the fork. (One kept
		// aside at its setup time was only slow: its fork may go on.)
		m.mu.Unlock()
		log.Info("init refused: the call was terminated by an operator while ringing; its serial fork is not set up")
		return answer(ReplyError)
	}
	if old := m.calls[r.CallID]; old != nil {
		if old.Token != c.token || old.InProgress() {
			m.mu.Unlock()
			log.Info("init refused: duplicated callid", "token", c.token, "known_token", old.Token, "known_state", old.State())
			return answer(ReplyDuplicatedCallID)
		}
		// The same call set up again (serial fork): start over. If the
		// engine counted it for another destination, release that first.
		m.removeLocked(old)
		var debit *Owed
		// rate asks the engine again unless the proxy now says postpaid (or
		// no engine is configured): then what it counts for the old request
		// is released here, as nothing else would ever debit it.
		asksAgain := m.rater != nil && !strings.EqualFold(r.Prepaid, "false")
		if old.Owed {
			if !asksAgain || old.RURI != r.RURI || old.Diverter != r.Diverter || old.Party != party {
				debit = m.owed(old, 0)
				if _, ok := m.rater.(releaser); ok && asksAgain {
					// rate asks the engine again: it delivers this first.
					c.releaseFirst, debit = debit, nil
				}
			} else {
				c.carried = old.Engine
			}
		}
		m.journal.Release(old.CallID, debit)
		log.Info("init again for a call being set up", "debit_old", debit != nil)
	}
	if c.callLimit > 0 && len(m.parties[party]) >= c.callLimit {
		m.mu.Unlock()
		log.Info("init refused: call limit reached", "call_limit", c.callLimit)
		return letGoOf(ReplyCallLimitReached, c.carried)
	}
	m.mu.Unlock()

	c.s = &Session{CallID: r.CallID, Party: party, RURI: r.RURI, Diverter: r.Diverter, SourceIP: r.SourceIP,
		FromTag: r.FromTag, Token: c.token, Application: c.app, CallLimit: c.callLimit,
		Limit: c.lim.Limit, Cap: NoLimit, Created: c.received}
	return initDecision{}
}

// rate asks the engine how long the call may last, unless the proxy says
// the caller is postpaid or there is no engine, and sets the session's
// limit from the answer. A call the engine cannot rate, a locked account
// and one without credit are answered here.
func (m *Manager) rate(c *initCall, r *InitRequest, log callLog) initDecision {
	s := c.s
	if m.rater == nil {
		if strings.EqualFold(r.Prepaid, "true") {
			// Fail closed: the proxy says the caller pays as they go, and
			// nothing here can tell how long they may talk.
			m.refuseUnrated(log, c.party, "", errNoEngine)
			return letGoOf(ReplyError, c.carried)
		}
		return initDecision{}
	}
	if strings.EqualFold(r.Prepaid, "false") {
		return initDecision{}
	}
	cap := c.lim.PrepaidLimit
	if cap == NoLimit {
		cap = c.lim.Limit
	}
	duration := cap
	if duration == NoLimit {
		duration = DefaultMaxDuration
	}
	engine := c.carried
	if c.releaseFirst != nil {
		engine = c.releaseFirst.Engine // where the CallId is counted now
	} else if rs, ok := m.rater.(reserver); ok && engine == "" {
		engine, c.reserved = rs.Reserve(c.party), true
	} else if engine == "" {
		engine = m.rater.Pick(c.party)
	}
	by := answerBy(c.received, c.lim.ProxyTimeout)
	// Marked before asking; with fsync the write overlaps the engine's
	// round trip, and the answer waits for both.
	asked := m.journal.Asked(&Session{CallID: r.CallID, Party: c.party, RURI: r.RURI, SourceIP: r.SourceIP,
		Application: c.app, Engine: engine, Limit: NoLimit, Cap: NoLimit, Created: c.received})
	c.asked = true
	if c.releaseFirst != nil {
		// The asked mark covers the old question too (same CallId, same
		// engine): a crash from here on releases it at the next start.
		if err := m.releaseEarlier(c.releaseFirst, by); err != nil {
			m.waitLogged(asked, r.CallID, by)
			m.refuseUnrated(log, c.party, engine, err)
			m.journal.Release(r.CallID, c.releaseFirst) // owed durably; clears the mark
			c.releaseFirst = nil
			return answer(ReplyError)
		}
		c.releaseFirst = nil // delivered
	}
	ctx, cancel := context.WithDeadline(context.Background(), by)
	mt, err := m.rater.MaxSessionTime(ctx, engine, rating.Request{CallID: r.CallID, From: c.party, To: r.RURI,
		Gateway: r.SourceIP, Application: c.app, Duration: duration})
	cancel()
	// Bounded: if the mark is late, so is the session's save (persist),
	// which decides the answer.
	m.waitLogged(asked, r.CallID, by)
	if err != nil {
		m.refuseUnrated(log, c.party, engine, err)
		if errors.Is(err, rating.ErrNotSent) {
			// The engine never saw it: nothing to release but what an
			// earlier init of this call left (carried over).
			return letGoOf(ReplyError, c.carried)
		}
		// Its fate is unknown: the engine may count it. Release it.
		return letGoOf(ReplyError, engine)
	}
	s.Engine = engine
	s.Owed = c.carried != ""
	s.counted = mt.Generation
	switch {
	case mt.Kind == rating.Locked:
		log.Info("init refused: account locked", "engine", engine)
		return letGoOf(ReplyLocked, c.carried)
	case mt.Kind == rating.Limited:
		s.Prepaid, s.Owed, s.Cap = true, true, cap
		s.Limit = mt.Seconds
		if cap != NoLimit && cap < s.Limit {
			s.Limit = cap
		}
	case mt.Prepaid: // prepaid, but a destination the engine does not charge
		s.Prepaid, s.Cap, s.Limit = true, cap, cap
	default: // postpaid account
		if strings.EqualFold(r.Prepaid, "true") {
			log.Error("init refused: proxy says prepaid but the rating engine says postpaid: check the prepaid flag of the proxy and the account in CDRTool", "engine", engine)
			return letGoOf(ReplyError, c.carried)
		}
		if !s.Owed {
			s.Engine = ""
		}
	}
	if mt.Kind == rating.Limited && mt.Seconds == 0 {
		log.Info("init refused: no credit", "engine", engine)
		return letGoOf(ReplyNoCredit, engine)
	}
	return initDecision{}
}

// releaser is a Rater that can also debit: an init set up again for
// another destination releases the earlier question itself, before asking
// again. Without it that release goes to the journal (and the spool),
// which may deliver it after the new question.
type releaser interface {
	DebitBalance(ctx context.Context, engine string, d rating.Debit) (rating.DebitReply, error)
}

// releaseEarlier delivers o, a 0 s debit for an earlier question about the
// same CallId, before by. Ok and Failed (the engine no longer counts it)
// both clear the way for the new question; an error leaves its fate to the
// caller, who answers Error and owes the release through the journal.
func (m *Manager) releaseEarlier(o *Owed, by time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), by)
	defer cancel()
	dr, err := m.rater.(releaser).DebitBalance(ctx, o.Engine, o.Debit)
	if err != nil {
		return err
	}
	m.debitedBy(*o, dr, by) // the party's calls in progress may get more time
	return nil
}

// track adds the call to the table and stages its record, unless nothing
// limits it, or the table refuses it after all: closed, a concurrent init
// of the same Call-ID, or the party at its call limit meanwhile.
func (m *Manager) track(c *initCall, log callLog) initDecision {
	s := c.s
	if s.Limit == NoLimit && c.callLimit == 0 {
		log.Info("call not limited", "prepaid", s.Prepaid)
		return letGoOf(ReplyNoLimit, engineIfOwed(s))
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return letGoOf(ReplyError, engineIfOwed(s))
	}
	if m.calls[s.CallID] != nil { // another connection set up the same Call-ID meanwhile
		m.mu.Unlock()
		log.Warn("init refused: duplicated callid (concurrent init)")
		// Nothing is released: the engine keys its sessions by Call-ID,
		// and a 0 s debit, like the record's delete, would end the
		// call the other init set up, leaving it unlimited after a
		// restart. (Asked of another engine, this init's session there
		// is one the engine purges by itself.) Only the mark goes.
		return letGoOf(ReplyDuplicatedCallID, "")
	}
	if c.callLimit > 0 && len(m.parties[s.Party]) >= c.callLimit {
		m.mu.Unlock()
		log.Info("init refused: call limit reached", "call_limit", c.callLimit)
		return letGoOf(ReplyCallLimitReached, engineIfOwed(s))
	}
	m.addLocked(s)
	c.saved = m.journal.Save(s)
	m.mu.Unlock()
	return initDecision{}
}

// persist waits for the call's record, until the proxy's deadline at the
// most, and answers Limited, or Error when the record is late, or cannot
// be written and state_failure = refuse.
func (m *Manager) persist(c *initCall, log callLog) initDecision {
	if err := c.saved(answerBy(c.received, c.lim.ProxyTimeout)); late(err) {
		// Limited would promise a call that a crash could forget, and a
		// late answer is read by the proxy as the next call's: answer
		// Error in time, and let go of the call.
		log.Error("init answered Error: the state log was not durable before the proxy's deadline; check the disk under state_dir")
		return initDecision{done: true, reply: ReplyError, cleanup: abandonCall}
	} else if err != nil && c.lim.RefuseNotDurable {
		log.Debug("init answered Error: the state cannot be written (state_failure = refuse)", "err", err)
		return initDecision{done: true, reply: ReplyError, cleanup: abandonCall}
	} else if err != nil {
		// The store reports the episode once, as an ERROR with its cause
		// (stats shows it too); one line per call would bury it.
		log.Debug("state log write failed; the call is tracked in memory only", "err", err)
	}
	s := c.s
	log.info("call limited", slog.Int("limit", s.Limit), slog.Bool("prepaid", s.Prepaid), slog.String("engine", s.Engine),
		slog.Int("call_limit", c.callLimit))
	return answer(ReplyLimited)
}

func engineIfOwed(s *Session) string {
	if s.Owed {
		return s.Engine
	}
	return ""
}

// answerBy is the moment the proxy's answer must be on its way, as the
// proxy's time budget says.
func answerBy(received time.Time, proxyTimeout time.Duration) time.Time {
	return budget.Of(proxyTimeout).AnswerBy(received)
}

// Start records that the call was answered and starts its clock. A
// repeated start changes nothing.
func (m *Manager) Start(callID, dialogID string, received time.Time) Reply {
	log := newCallLog(m.log, callID)
	by := answerBy(received, m.Limits().ProxyTimeout)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ReplyError
	}
	s := m.calls[callID]
	if s == nil {
		if g := m.atAnswer[callID]; g != nil {
			return m.endAtAnswerLocked(g, dialogID, by, log)
		}
		m.mu.Unlock()
		log.Info("start for an unknown call")
		return ReplyNotFound
	}
	if s.InProgress() {
		m.mu.Unlock()
		return ReplyOk
	}
	if at := m.missed[callID].stoppedAt; !at.IsZero() {
		// Its stop came first and is held for the proxy's word (missed.go):
		// the call is over, and timed from now it would run to its limit,
		// debited for it. The proxy's record settles what it talked.
		m.mu.Unlock()
		m.pokeMissed()
		log.Info("start of a call whose stop is held: settled by the proxy's word, as its stop")
		return ReplyOk
	}
	now := m.now()
	m.answerLocked(s, now)
	m.noDialog.answered = true
	if id, err := sipdialog.ParseID(dialogID); err == nil {
		s.Dialog, s.HasDialog = id, true
	} else if m.canEndEarly() {
		log.Warn("start with an unusable dialogid: the call can be ended by Call-ID only", "dialogid", dialogID)
	} else {
		log.Error("start with an unusable dialogid: the proxy ends dialogs only by id, so this call cannot be cut; end it on the proxy when due",
			"dialogid", dialogID, "limit", s.Limit)
	}
	// Without a rating engine (a prepaid call restored by a daemon now
	// configured without one) the call keeps the limit it was given.
	if !s.Prepaid || !s.Owed || m.rater == nil {
		if s.Limit != NoLimit {
			m.setEndLocked(s, now.Add(time.Duration(s.Limit)*time.Second))
		}
		party, limit := s.Party, s.Limit
		wait := m.journal.Save(s)
		m.mu.Unlock()
		if m.waitLogged(wait, callID, by) {
			return m.startLate(log)
		}
		log.debug("call answered", slog.String("party", party), slog.Int("limit", limit))
		return ReplyOk
	}
	// Prepaid: run the clock on the limit from init until the engine has
	// re-timed the party's calls; within the party's share when its
	// engine may have forgotten the party's other calls (restart.go).
	m.setEndLocked(s, now.Add(time.Duration(s.Limit)*time.Second))
	shared := m.shareWithForgottenLocked(s, now)
	wait := m.journal.Save(s)
	req := rating.Request{CallID: s.CallID, From: s.Party, To: s.RURI, Gateway: s.SourceIP,
		Application: s.Application, Duration: capOrDefault(s.Cap), Connected: true}
	engine, party, limit, created, capSecs := s.Engine, s.Party, s.Limit, s.Created, s.Cap
	m.mu.Unlock()
	m.logShared(log, shared, party, engine, by)
	if m.waitLogged(wait, callID, by) {
		// No time left to re-ask: the answer at init holds the party.
		m.holdToInitAnswer(party, engine, created, limit, capSecs, by)
		return m.startLate(log)
	}

	ctx, cancel := context.WithDeadline(context.Background(), by)
	mt, err := m.rater.MaxSessionTime(ctx, engine, req)
	cancel()
	if (err == nil && mt.Kind == rating.Limited) || (err != nil && !errors.Is(err, rating.ErrNotSent)) {
		if m.releaseReaskOfEnded(s, log) {
			return ReplyOk
		}
	}
	// Without a new number, the answer at init is the best there is: the
	// engine gave it counting the party's calls already running, so they
	// end no later than it said then (only sooner: an engine at the
	// party's parallel-call maximum answers the re-ask Locked).
	if err == nil && mt.Kind == rating.Limited {
		if m.retimeFrom(party, engine, mt.Seconds, time.Time{}, by, false, 0, engineAnswer{gen: mt.Generation, asked: s}) {
			// The engine may have forgotten the party's other calls
			// since the init: its answer then counted them, this one
			// may not (restart.go).
			m.holdToInitAnswer(party, engine, created, limit, capSecs, by)
		}
	} else {
		if err != nil {
			log.Warn("re-ask at start failed; the call keeps its limit", "engine", engine, "err", err)
		} else {
			log.Info("re-ask at start did not give a number; the call keeps its limit", "answer", mt.Kind)
		}
		m.holdToInitAnswer(party, engine, created, limit, capSecs, by)
	}
	log.debug("call answered", slog.String("party", party), slog.Bool("prepaid", true))
	return ReplyOk
}

// releaseReaskOfEnded owes a 0 s release for a re-ask at start that may
// have reached the engine after the call ended (its stop, served on
// another connection meanwhile, owed its debit first): the engine counts
// an asked CallId again, and nothing else would ever debit it. Released
// only while no other call holds the Call-ID (a 0 s debit is keyed by it);
// if the re-ask came first, the engine answers the release Failed, and
// that is all. It reports whether the call had ended.
func (m *Manager) releaseReaskOfEnded(s *Session, log callLog) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls[s.CallID] == s {
		return false
	}
	if !m.closed && m.calls[s.CallID] == nil {
		m.journal.Release(s.CallID, m.owed(s, 0))
		log.Info("call ended while its start re-asked the engine: the re-ask is released with 0 s", "engine", s.Engine)
	}
	return true
}

func capOrDefault(c int) int {
	if c == NoLimit {
		return DefaultMaxDuration
	}
	return c
}

// startLate answers a start whose record was not durable before the
// proxy's deadline. The call stays tracked, its clock running: only Ok,
// which promises a record that survives a crash, is withheld.
func (m *Manager) startLate(log callLog) Reply {
	log.Error("start answered Error: the state log was not durable before the proxy's deadline; the call is still tracked; check the disk under state_dir")
	return ReplyError
}

// Retime sets every answered prepaid call of party on engine to end
// seconds from now (capped by each call's own cap): the engine's common
// end moment for the account's parallel calls.
func (m *Manager) Retime(party, engine string, seconds int) {
	m.retime(party, engine, seconds, time.Time{}, false)
}

// engineAnswer says where a number that re-times a party came from: the
// generation of the engine connection that carried it (0: not known),
// and the call it was asked for, if any, which that engine counts from
// then on.
type engineAnswer struct {
	gen   uint64
	asked *Session
}

// retime is Retime waiting for the records until by at the most (zero:
// no bound). onlySooner moves no call's end later.
func (m *Manager) retime(party, engine string, seconds int, by time.Time, onlySooner bool) {
	m.retimeFrom(party, engine, seconds, time.Time{}, by, onlySooner, 0, engineAnswer{})
}

// holdToInitAnswer brings the party's calls no later than the answer the
// engine gave at the init of a call (asked at created, limit seconds)
// whose start got no new number: that answer counted the calls already
// answered then, and the new one from its init, so those calls end by
// created+limit. Brought only to "limit seconds from now" (the new call's
// own end, from its answer), they would talk the new call's ring time
// more than the balance holds. Calls answered since keep to limit seconds
// from now at the most, as before. A limit that is the call's cap is not
// the engine's answer (that was more, by how much is not kept): the call
// ends before the account's calls do, and its debit's reply re-times
// them; held to its cap, they would be cut early.
func (m *Manager) holdToInitAnswer(party, engine string, created time.Time, limit, cap int, by time.Time) {
	if !engineLimited(limit, cap) {
		return
	}
	m.retimeFrom(party, engine, limit, created, by, true, 0, engineAnswer{})
}

// engineLimited reports whether a prepaid call's limit is the engine's
// answer, not its cap (nor none).
func engineLimited(limit, cap int) bool {
	return limit != NoLimit && (cap == NoLimit || limit < cap)
}

// retimeFrom is retime where the calls answered before from (if set) take
// seconds from that moment instead of from now, and the calls due within
// spare from now are left as they are. An answer from an engine that may
// have forgotten some of the party's calls moves no call later
// (restart.go); it reports whether that was so.
func (m *Manager) retimeFrom(party, engine string, seconds int, from, by time.Time, onlySooner bool, spare time.Duration, ans engineAnswer) (mayHaveForgotten bool) {
	now := m.now()
	m.mu.Lock()
	if m.closed { // a debit reply during shutdown arms nothing
		m.mu.Unlock()
		return false
	}
	if ans.asked != nil && ans.gen != 0 && m.calls[ans.asked.CallID] == ans.asked {
		ans.asked.counted = ans.gen
	}
	if m.mayHaveForgottenLocked(party, engine, ans.gen, nil) {
		onlySooner, mayHaveForgotten = true, true
	}
	var waits []Wait
	for _, s := range m.parties[party] {
		if !s.Prepaid || !s.Owed || !s.InProgress() || s.Engine != engine {
			continue
		}
		if !s.EndAt.IsZero() && !s.EndAt.After(now.Add(spare)) {
			// Due: its timer is about to end it with the party's other
			// calls. A late answer (a debit reply rounded to whole
			// seconds leaves a second of credit) must not move it.
			continue
		}
		base := now
		if !from.IsZero() && s.Answered.Before(from) {
			base = from
		}
		end := base.Add(time.Duration(seconds) * time.Second)
		if end.Before(now) {
			// Talked past it already (from is long ago): cut now, and
			// debit what it talked, which an end in the past would cap.
			end = now
		}
		if onlySooner && !s.EndAt.IsZero() && !end.Before(s.EndAt) {
			continue
		}
		if s.Cap != NoLimit {
			if capEnd := s.Answered.Add(time.Duration(s.Cap) * time.Second); end.After(capEnd) {
				end = capEnd
			}
		}
		if d := end.Sub(s.EndAt); d > -time.Second && d < time.Second {
			// The engine answers whole seconds: the same end. Re-asks
			// (recheck.go) bring this every step; only the next one is
			// re-armed, so one probe keeps answering for the party.
			m.armLocked(s, now)
			continue
		}
		m.setEndLocked(s, end)
		s.Limit = int(math.Round(end.Sub(s.Answered).Seconds()))
		waits = append(waits, m.journal.Save(s))
	}
	m.mu.Unlock()
	for _, w := range waits {
		m.waitLogged(w, party, by)
	}
	if len(waits) > 0 {
		m.log.Info("party's calls re-timed", "party", party, "engine", engine, "seconds", seconds, "calls", len(waits))
	}
	return mayHaveForgotten
}

// Debited is called when a debit was delivered: the engine's reply carries
// the new common limit of the party's remaining calls.
func (m *Manager) Debited(o Owed, reply rating.DebitReply) { m.debitedBy(o, reply, time.Time{}) }

// debitedBy is Debited waiting for the records until by at the most (zero:
// no bound).
func (m *Manager) debitedBy(o Owed, reply rating.DebitReply, by time.Time) {
	if !reply.OK {
		return
	}
	// A debit journaled before parties were folded names the party as
	// its From header spelled it.
	party := FoldParty(o.Debit.From)
	// The reply's limit covers only the sessions the engine counts. A
	// forced debit means the engine did not know this call (it restarted
	// and lost its sessions, or purged them): it does not count our other
	// calls either. And 0 is also what it says when it counts none of
	// them; when it does count them, 0 means they are due now, which
	// their timers already say. Re-timing from either would cut every
	// remaining call of the party at once.
	if o.Debit.Force || reply.MaxSessionTime <= 0 {
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	remaining := false
	for _, s := range m.parties[party] {
		if s.Prepaid && s.Owed && s.InProgress() && s.Engine == o.Engine {
			remaining = true
			break
		}
	}
	m.mu.Unlock()
	if remaining {
		m.retimeFrom(party, o.Engine, reply.MaxSessionTime, time.Time{}, by, false, 0, engineAnswer{gen: reply.Generation})
	}
}

// Stop ends a call the proxy says is over, and debits its real duration.
func (m *Manager) Stop(callID string) Reply {
	m.mu.Lock()
	if m.closed { // the session stays journaled: the next start settles it
		m.mu.Unlock()
		return ReplyError
	}
	s := m.calls[callID]
	if s == nil {
		found := m.dropAtAnswerLocked(callID) // it failed before an answer
		m.mu.Unlock()
		if found {
			return ReplyOk
		}
		return ReplyNotFound
	}
	now := m.now()
	if mark, pending := m.missed[callID]; pending && !s.InProgress() {
		// Restored ringing, its start possibly lost: ended now it would
		// be released free though it may have talked. The proxy is asked
		// (missed.go), and settles what it is owed.
		if mark.stoppedAt.IsZero() {
			mark.stoppedAt = now
			m.missed[callID] = mark
		}
		m.mu.Unlock()
		m.pokeMissed()
		newCallLog(m.log, callID).Info("stop of a call restored ringing: held until the proxy says whether it was answered")
		return ReplyOk
	}
	tell := m.noDialog.stoppedLocked(s, now)
	e := m.endLocked(s, now, false, "stop")
	m.mu.Unlock()
	if tell {
		m.log.Error("no call has been answered, and calls end within 20 ms of their init: unless they all failed that fast, the proxy makes no dialogs for them and none is limited (Kamailio: the dialog module's dlg_flag is not set)",
			"calls", quickStopsToTell, "fix", `set modparam("dialog", "dlg_flag", N) in kamailio.cfg`)
	}
	// Ok to a stop promises the proxy nothing, so the reply does not
	// outwait its deadline for the record (and its debit) to be durable.
	m.finishBy(e, answerBy(now, m.Limits().ProxyTimeout))
	return ReplyOk
}

// expire runs on the session's timer.
func (m *Manager) expire(s *Session) {
	m.mu.Lock()
	if m.closed || m.calls[s.CallID] != s || s.EndAt.IsZero() {
		// After shutdown the session stays as journaled: the next start
		// ends it at once, its time having passed.
		m.mu.Unlock()
		return
	}
	now := m.now()
	if early := s.EndAt.Sub(now); early > time.Millisecond { // a re-ask is due, or re-timed after the timer was armed
		m.recheckLocked(s, now)
		m.mu.Unlock()
		return
	}
	reason := "time limit"
	if s.endByOperator {
		reason = "operator"
	} else if s.EndAtAnswer != "" {
		reason = "ended at answer: " + s.EndAtAnswer
	}
	e := m.endLocked(s, s.EndAt, true, reason)
	m.mu.Unlock()
	m.finish(e)
}

// ending is a call ended under the lock; finish logs it and waits for its
// journal write after the lock is released, so neither the log line's
// formatting nor the disk holds up other calls.
type ending struct {
	s        *Session // removed from the table: no longer changed
	wait     Wait
	reason   string
	duration int
	bye      bool
	target   sipdialog.Target // the dialog to end, when bye
	debit    bool
}

func (m *Manager) finish(e ending) { m.finishBy(e, time.Time{}) }

// byeWriteBound is the longest the request to end a dialog waits for its
// batch to be written: on a disk that does not write, the call is cut
// all the same.
const byeWriteBound = 50 * time.Millisecond

// finishBy is finish waiting for the journal until by at the most. The
// request to end the dialog leaves once its batch (the call's end, its
// debit and the request's own record) is written, or a kill -9 right
// after it could leave a call the proxy ended restored as in progress
// (TestByeLeavesAfterItsRecordIsWritten).
func (m *Manager) finishBy(e ending, by time.Time) {
	if e.bye {
		// The Wait's deadline does not bound it on every journal (without
		// fsync the waiter copies its batch itself, and drains a full ring
		// to a disk that may be stalled): a timer sends the request at
		// the bound if the write has not returned by then.
		var once sync.Once
		bye := func() { once.Do(func() { m.ender.End(e.target) }) }
		t := time.AfterFunc(byeWriteBound, bye)
		_ = e.wait(time.Now().Add(byeWriteBound)) // a failure is logged below
		t.Stop()
		bye()
	}
	m.logEnded(e)
	m.waitLogged(e.wait, e.s.CallID, by)
}

func (m *Manager) logEnded(e ending) {
	logLine(m.log, slog.LevelInfo, "call ended",
		[]slog.Attr{slog.String("callid", e.s.CallID), slog.String("party", e.s.Party), slog.String("to", e.s.RURI)},
		[]slog.Attr{slog.String("reason", e.reason), slog.Int("duration", e.duration), slog.Bool("bye", e.bye), slog.Bool("debit", e.debit)},
		nil)
}

// abandon ends a call set up by an init that is answered Error after all,
// releasing what the engine counts for it; its records land in order
// when the disk catches up.
func (m *Manager) abandon(s *Session) {
	m.mu.Lock()
	if m.closed || m.calls[s.CallID] != s {
		m.mu.Unlock()
		return
	}
	e := m.endLocked(s, m.now(), false, "state log too slow")
	m.mu.Unlock()
	m.logEnded(e)
}

// endLocked removes s, asks the proxy to end its dialog when bye is set,
// and owes its debit: the time from answer to end, capped at the limit.
func (m *Manager) endLocked(s *Session, end time.Time, bye bool, reason string) ending {
	return m.endKeepingLocked(s, end, bye, reason, nil)
}

// endKeepingLocked is endLocked that also journals keep, s kept aside to
// be ended when answered (keepForAnswerLocked), unless nil.
func (m *Manager) endKeepingLocked(s *Session, end time.Time, bye bool, reason string, keep *Session) ending {
	m.untrackLocked(s)
	defer m.releaseEngineLocked(s) // once the debit is owed
	m.returnShareLocked(s, end)
	duration := 0
	if s.InProgress() {
		if !s.EndAt.IsZero() && end.After(s.EndAt) {
			end = s.EndAt
		}
		duration = int(math.Round(end.Sub(s.Answered).Seconds()))
		if duration < 0 {
			duration = 0
		}
	}
	return m.finishKeepingLocked(s, duration, bye, reason, keep)
}

func (m *Manager) finishLocked(s *Session, duration int, bye bool, reason string) ending {
	return m.finishKeepingLocked(s, duration, bye, reason, nil)
}

func (m *Manager) finishKeepingLocked(s *Session, duration int, bye bool, reason string, keep *Session) ending {
	var debit *Owed
	if s.Owed {
		debit = m.owed(s, duration)
	}
	// The end, its debit and the request to end the dialog are staged in
	// the journal in one batch; the request is handed to the proxy once
	// that batch is written (finishBy), outside the lock, so whoever sees
	// the BYE can also see the debit owed, and a crash loses neither.
	bye = bye && (s.InProgress() || m.canEndEarly())
	var wait Wait
	var t sipdialog.Target
	switch {
	case bye:
		target := sipdialog.Target{CallID: s.CallID, Dialog: s.Dialog, NoID: !s.HasDialog}
		if keep != nil {
			wait, t = m.journal.EndWithByeAtAnswer(s.CallID, debit, target, keep)
		} else {
			wait, t = m.journal.EndWithBye(s.CallID, debit, target)
		}
	case keep != nil:
		wait = m.journal.EndAtAnswer(s.CallID, debit, keep)
	default:
		wait = m.journal.End(s.CallID, debit)
	}
	return ending{s: s, wait: wait, reason: reason, duration: duration, bye: bye, target: t, debit: debit != nil}
}

func (m *Manager) owed(s *Session, duration int) *Owed {
	return &Owed{Engine: s.Engine, Debit: rating.Debit{CallID: s.CallID, From: s.Party, To: s.RURI,
		Gateway: s.SourceIP, Application: s.Application, Duration: duration}}
}

// waitLogged waits for w until by (zero: no bound), logs a failed write,
// and says whether the deadline passed first.
func (m *Manager) waitLogged(w Wait, what string, by time.Time) (isLate bool) {
	err := w(by)
	switch {
	case err == nil:
		return false
	case late(err):
		m.log.Warn("state log write not durable before the proxy's deadline: the disk is slow", "callid", what)
		return true
	}
	// The store logs the episode once (an ERROR with its cause); one line
	// per call on a full disk would bury it.
	m.log.Debug("state log write failed", "callid", what, "err", err)
	return false
}

func (m *Manager) setEndLocked(s *Session, end time.Time) {
	s.EndAt = end
	m.armLocked(s, m.now())
}

func (m *Manager) addLocked(s *Session) {
	m.calls[s.CallID] = s
	if s.InProgress() {
		m.answered++
	}
	m.parties[s.Party] = append(m.parties[s.Party], s)
	m.order.add(s)
	if s.Engine != "" && m.rater != nil {
		m.rater.Acquire(s.Party, s.Engine)
	}
}

// answerLocked marks s, in the table, answered at at.
func (m *Manager) answerLocked(s *Session, at time.Time) {
	if !s.InProgress() {
		m.answered++
	}
	s.Answered = at
}

func (m *Manager) removeLocked(s *Session) {
	m.untrackLocked(s)
	m.releaseEngineLocked(s)
}

// untrackLocked is removeLocked but for the party's hold on its engine:
// a call that ends owing a debit lets go of it (releaseEngineLocked) only
// once the debit is owed, which holds the party there in turn
// (rating.Pool.Hold): in between, a call of the party could be rated on
// another engine, against a balance the debit never reaches.
func (m *Manager) untrackLocked(s *Session) {
	delete(m.calls, s.CallID)
	if s.InProgress() {
		m.answered--
	}
	m.order.remove(s)
	m.stopTimerLocked(s)
	calls := m.parties[s.Party]
	for i, c := range calls {
		if c == s {
			calls[i] = calls[len(calls)-1]
			calls[len(calls)-1] = nil
			calls = calls[:len(calls)-1]
			break
		}
	}
	if len(calls) == 0 {
		delete(m.parties, s.Party)
	} else {
		m.parties[s.Party] = calls
	}
}

func (m *Manager) releaseEngineLocked(s *Session) {
	if s.Engine != "" && m.rater != nil {
		m.rater.Release(s.Party)
	}
}

// Housekeep drops calls never answered within the setup time (0 s debit)
// and ends answered calls without a timer older than the stale timeout.
// It finds them a chunk of the table at a time, and ends them a chunk at a
// time, letting the proxy's requests in between: a million calls are never
// scanned in one hold of the lock those requests take.
func (m *Manager) Housekeep() {
	lim := m.Limits()
	now := m.now()
	var due []*Session
	m.eachChunked(nil, func(s *Session) {
		if m.housekeepDueLocked(s, now, lim) {
			due = append(due, s) // checked again below: it may end meanwhile
		}
	}, nil)
	for len(due) > 0 {
		chunk := due[:min(len(due), listChunk)]
		due = due[len(chunk):]
		var ended []ending
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		for _, s := range chunk {
			if m.calls[s.CallID] != s || !m.housekeepDueLocked(s, now, lim) {
				continue
			}
			if s.InProgress() {
				ended = append(ended, m.endLocked(s, now, true, "stale"))
			} else if e, ok := m.setupTimeLocked(s, now, lim); ok {
				ended = append(ended, e)
			}
		}
		m.mu.Unlock()
		for _, e := range ended {
			m.finish(e)
		}
	}
	m.expireAtAnswer(now, lim)
}

// housekeepDueLocked says whether housekeeping ends s: ringing past the
// setup time (unless the proxy has yet to say whether it was answered
// while the daemon was down), or answered with no end past the stale
// timeout.
func (m *Manager) housekeepDueLocked(s *Session, now time.Time, lim Limits) bool {
	switch {
	case !s.InProgress() && now.Sub(s.Created) >= lim.SetupTime:
		mark, pending := m.missed[s.CallID]
		return !pending || mark.heard || !now.Before(m.unheardUntil)
	case s.InProgress() && s.EndAt.IsZero() && now.Sub(s.Created) >= lim.StaleTimeout:
		return true
	}
	return false
}

// Restore loads sessions saved before a restart: timers re-armed from
// their absolute end times, calls whose time passed ended at once.
func (m *Manager) Restore(sessions []*Session) {
	// Saved sessions come in no order; added oldest first, listings
	// (which walk the table in the order sessions were added, never
	// holding it whole, so they cannot sort it) list them oldest first.
	slices.SortStableFunc(sessions, func(a, b *Session) int { return a.Created.Compare(b.Created) })
	now := m.now()
	var ended []ending
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		for _, e := range ended {
			m.finish(e)
		}
	}()
	if m.closed {
		return
	}
	if len(m.calls) == 0 { // size the table once instead of growing it step by step
		m.calls = make(map[string]*Session, len(sessions))
		// Not the parties: they are fewer than the calls, by how many is
		// not known, and sized for a million calls the map of 200,000
		// parties took 89 MB more than grown.
		m.parties = make(map[string][]*Session)
	}
	expired := 0
	for _, s := range sessions {
		if old := m.calls[s.CallID]; old != nil {
			m.removeLocked(old)
		}
		m.addLocked(s)
		if !s.EndAt.IsZero() {
			if !s.EndAt.After(now) {
				ended = append(ended, m.endLocked(s, s.EndAt, true, "time limit (passed while the daemon was down)"))
				expired++
				continue
			}
			m.setEndLocked(s, s.EndAt)
			m.spreadCheckLocked(s, now)
		}
	}
	m.log.Info("sessions restored", "sessions", len(m.calls), "expired_meanwhile", expired, "parties", len(m.parties))
}

// ReleaseAsked settles the asked marks found at start: a mark without its
// session is a MaxSessionTime whose answer never reached the proxy (the
// daemon died in between); the engine may count it, so it is released
// with a 0 s debit. A mark beside its session (a call set up again for
// the same destination) is covered by the session's own debit.
func (m *Manager) ReleaseAsked(asked []*Session) {
	released := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for _, a := range asked {
		if m.calls[a.CallID] != nil {
			m.journal.Settle(a.CallID)
			continue
		}
		m.journal.Release(a.CallID, m.owed(a, 0))
		released++
	}
	if released > 0 {
		m.log.Info("engine sessions asked for before the restart released", "count", released)
	}
}

// Shutdown stops every timer; the table stays as it is (it is durable).
// From then on no method changes the table or arms a timer: what falls
// due meanwhile is done at the next start, from the journal.
func (m *Manager) Shutdown() {
	m.stopRechecks()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.stopAllTimersLocked()
}

// Get returns a copy of one session.
func (m *Manager) Get(callID string) (Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.calls[callID]
	if s == nil {
		return Session{}, false
	}
	c := *s
	c.timerAt = 0
	return c, true
}

// Counts returns how many sessions and parties are tracked.
func (m *Manager) Counts() (pending, inProgress, parties int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls) - m.answered, m.answered, len(m.parties)
}
