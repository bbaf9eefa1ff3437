// Package budget derives every deadline of a proxy request from the
// proxy's timeout ([CallControl] proxy_timeout, the proxy module's
// socket_timeout): when the answer must be on its way, and how long one
// question to the rating engine may take. config warns from it, daemon
// caps the engine's timeout with it, session answers by it; no other
// package does this arithmetic.
package budget

import "time"

const (
	// maxMargin bounds the time kept back for scheduling and the write
	// of the answer: a long proxy timeout needs no more than this.
	maxMargin = 100 * time.Millisecond
	// defaultEngine is [CDRTool] timeout when unset. The original waited
	// 500 ms, as long as the proxy waits for the answer; leave room to
	// answer Error in time instead.
	defaultEngine = 300 * time.Millisecond
)

// Budget is the time a proxy request may take, from the moment it was
// received until the proxy stops waiting for the answer.
type Budget struct {
	Proxy time.Duration // [CallControl] proxy_timeout
}

// Of returns the budget of a proxy that waits proxyTimeout for an answer.
func Of(proxyTimeout time.Duration) Budget { return Budget{Proxy: proxyTimeout} }

// Margin is kept back from the proxy's timeout for scheduling and the
// answer's write: a fifth of it, 100 ms at the most.
func (b Budget) Margin() time.Duration { return min(b.Proxy/5, maxMargin) }

// AnswerBy is the moment the answer to a request received then must be on
// its way; everything the request waits for (the engine, the state log)
// is bounded by it.
func (b Budget) AnswerBy(received time.Time) time.Time {
	return received.Add(b.Proxy - b.Margin())
}

// EngineMax is the longest one MaxSessionTime may take: four fifths of
// the proxy's timeout. Each question is also bounded by its request's
// AnswerBy; with a proxy timeout over 500 ms this keeps back more than
// the margin, for the state log's write after the engine answers.
func (b Budget) EngineMax() time.Duration { return b.Proxy * 4 / 5 }

// Engine is the per-request timeout for MaxSessionTime given [CDRTool]
// timeout: the configured one, cut to EngineMax (capped says so).
func (b Budget) Engine(configured time.Duration) (timeout time.Duration, capped bool) {
	if m := b.EngineMax(); configured > m {
		return m, true
	}
	return configured, false
}

// DefaultEngine is [CDRTool] timeout when the file does not set it:
// 300 ms, or EngineMax when the proxy's timeout is too short for that,
// so that a default never draws a warning.
func (b Budget) DefaultEngine() time.Duration { return min(defaultEngine, b.EngineMax()) }
