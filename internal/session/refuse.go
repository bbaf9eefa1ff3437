package session

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
)

// errNoEngine: a call flagged prepaid arrived and no rating engine is
// configured (or none resolved at start).
var errNoEngine = rating.ErrNoEngine

// refusalLogEvery bounds the ERROR lines about calls refused for one
// cause: an engine that is down refuses every prepaid call, and a line per
// call would bury everything else. Each call still gets its INFO line.
const refusalLogEvery = 10 * time.Second

// refusals counts inits answered Error because the call could not be
// rated, and paces the ERROR lines about them.
type refusals struct {
	count atomic.Uint64

	mu         sync.Mutex
	lastLogged map[string]time.Time // by cause
	suppressed map[string]int       // refusals since that line, by cause
}

// PrepaidRefused is how many calls were answered Error because no rating
// engine could rate them (none configured, unreachable, failing, or not
// answering in time): a prepaid call fails closed, never runs unlimited.
func (m *Manager) PrepaidRefused() uint64 { return m.unrated.count.Load() }

// refuseUnrated records and logs an init refused because the engine could
// not rate it: an INFO line for the call, and at most one ERROR line per
// cause every refusalLogEvery, naming the cause and what to check.
func (m *Manager) refuseUnrated(log callLog, party, engine string, err error) {
	m.unrated.count.Add(1)
	cause := rating.Cause(err)
	if h, ok := m.rater.(owedHolder); ok && engine != "" {
		if n := h.Owed(party); n > 0 {
			// Why no other engine was asked: operators see it here first.
			log.Info("init refused: the call cannot be rated, and its party stays on this engine while debits are owed to it (callcontrol debits reroute ENGINE moves them)",
				"engine", engine, "debits_owed", n, "cause", cause, "err", err)
			m.paceRefusalLine(log, cause, err, engine)
			return
		}
	}
	log.Info("init refused: the call cannot be rated", "engine", engine, "cause", cause, "err", err)
	m.paceRefusalLine(log, cause, err, engine)
}

// owedHolder is a Rater that holds a party on the engine it owes debits
// to (rating.Pool.Hold), and counts them.
type owedHolder interface {
	Owed(party string) int
}

// paceRefusalLine logs at most one ERROR line per cause every
// refusalLogEvery.
func (m *Manager) paceRefusalLine(log callLog, cause string, err error, engine string) {
	now := m.now()
	r := &m.unrated
	r.mu.Lock()
	if r.lastLogged == nil || len(r.lastLogged) > 64 { // causes quoting the engine's words vary
		r.lastLogged, r.suppressed = map[string]time.Time{}, map[string]int{}
	}
	last, seen := r.lastLogged[cause]
	if seen && now.Sub(last) < refusalLogEvery {
		r.suppressed[cause]++
		r.mu.Unlock()
		return
	}
	before := r.suppressed[cause]
	r.lastLogged[cause], r.suppressed[cause] = now, 0
	r.mu.Unlock()

	attrs := []any{"cause", cause, "fix", fixFor(err, engine)}
	if engine != "" {
		attrs = append(attrs, "engine", engine)
	}
	if seen {
		attrs = append(attrs, "also_refused_since_last_line", before)
	}
	logLine(m.log, slog.LevelError, "prepaid calls refused (answered Error): the rating engine cannot rate them",
		[]slog.Attr{slog.String("callid", log.callID())}, nil, attrs)
}

// fixFor says what an operator should look at for a refusal.
func fixFor(err error, engine string) string {
	switch {
	case errors.Is(err, rating.ErrNoEngine):
		return "set [CDRTool] address to the rating engine, or have the proxy send prepaid: false for postpaid callers"
	case errors.Is(err, rating.ErrEngine):
		return "see the rating engine's log for this Call-ID"
	case errors.Is(err, rating.ErrInvalid):
		return "the proxy sent a value the engine protocol cannot carry"
	case errors.Is(err, rating.ErrNotSent):
		return "check that the rating engine at " + engine + " runs and that [CDRTool] address names it"
	}
	return "the engine is slow or stuck: check it, and [CDRTool] timeout (it must stay under proxy_timeout)"
}

// callID is the Call-ID the call's log lines carry.
func (c callLog) callID() string { return c.attrs[0].Value.String() }
