package session

import (
	"log/slog"
	"time"

	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// The internals the tests of package session_test reach: they are
// external so that they can use sessiontest's fakes, which import session.

var AnswerBy = answerBy

const (
	ListChunk       = listChunk
	RefusalLogEvery = refusalLogEvery
	AtAnswerDelay   = atAnswerDelay
)

// SetRater, SetEnder, SetLog and SetNow replace a peer of a manager just
// made, before it is used.
func (m *Manager) SetRater(r Rater)            { m.rater = r }
func (m *Manager) SetEnder(e sipdialog.Ender)  { m.ender = e }
func (m *Manager) SetLog(l *slog.Logger)       { m.log = l }
func (m *Manager) SetNow(now func() time.Time) { m.now = now }
func (m *Manager) Now() time.Time              { return m.now() }

// WithCall runs f on the tracked session of callID, under the table's
// lock, as the manager's own code changes it.
func (m *Manager) WithCall(callID string, f func(s *Session)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.calls[callID])
}

// StopTimerLocked stops the session's timer, as if it were about to
// fire (in WithCall).
func (m *Manager) StopTimerLocked(s *Session) { m.stopTimerLocked(s) }

// OrderAndTable counts the sessions the listing order holds and those the
// table holds.
func (m *Manager) OrderAndTable() (order, table int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.live, len(m.calls)
}

func (m *Manager) EachChunked(gone func() bool, visit func(s *Session), flush func()) bool {
	return m.eachChunked(gone, visit, flush)
}

// InitDecision is how an init ends (initDecision), for TestInitCleanup.
type InitDecision = initDecision

func Answer(reply Reply) InitDecision                 { return answer(reply) }
func LetGoOf(reply Reply, engine string) InitDecision { return letGoOf(reply, engine) }
func Abandon() InitDecision                           { return initDecision{done: true, reply: ReplyError, cleanup: abandonCall} }

// CleanUp runs the cleanup of an init of r for d, the call of party with
// application app, the engine asked or not, and the call in the table
// if tracked.
func (m *Manager) CleanUp(r *InitRequest, d InitDecision, party, app string, asked, tracked bool) {
	c := initCall{party: party, app: app, asked: asked}
	if tracked {
		m.mu.Lock()
		c.s = m.calls[r.CallID]
		m.mu.Unlock()
	}
	m.cleanUp(&c, r, d)
}

// WalkCounts tallies the table by walking it, as Counts did before it
// kept counters: the tests check one against the other.
func (m *Manager) WalkCounts() (pending, inProgress int) {
	m.eachChunked(nil, func(s *Session) {
		if s.InProgress() {
			inProgress++
		} else {
			pending++
		}
	}, nil)
	return pending, inProgress
}

// AsideAndKept counts the calls kept aside to be ended at answer as listed
// for walks and as the map holds them.
func (m *Manager) AsideAndKept() (listed, kept int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.aside.live, len(m.atAnswer)
}
