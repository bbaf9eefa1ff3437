// Package acct finds tracked calls that ended without a stop reaching us:
// a Poller reads the proxy's accounting rows (radacct in MySQL/MariaDB) and a
// Listener takes RADIUS Accounting-Requests live. Both only report to a
// Tracker; ending sessions and debiting is the session layer's job.
package acct

import (
	"fmt"
	"time"
)

// Call is a call the session layer tracks, and when it was set up.
type Call struct {
	CallID  string
	FromTag string
	Since   time.Time
}

// Kind says how accounting saw a call end.
type Kind int

const (
	// Terminated: the call stopped (a BYE passed); end the session without
	// a BYE and debit Outcome.Duration.
	Terminated Kind = iota + 1
	// TimedOut: the media stopped and nobody sent a BYE; end the dialog
	// (BYE both ways) and debit until now.
	TimedOut
)

func (k Kind) String() string {
	switch k {
	case Terminated:
		return "terminated"
	case TimedOut:
		return "timed out"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Outcome is what accounting says about one tracked call.
type Outcome struct {
	CallID  string
	FromTag string
	Kind    Kind
	// Duration in seconds, for Terminated only; DurationUnknown when the
	// record carries none.
	Duration int
}

// DurationUnknown is an Outcome's Duration when the record carries none
// (a BYE's own accounting Stop): the call is debited what the daemon
// measured, until now, never 0.
const DurationUnknown = -1

// Tracker is the session layer as acct sees it. End may be called for a
// call that was ended meanwhile (a retransmitted Stop, a poll racing a
// stop): it must ignore what it does not track. Neither method may block
// for long: the listener calls them per packet.
type Tracker interface {
	TrackedCalls() []Call
	// End ends the call o is about and reports whether a tracked call
	// matched (same Call-ID, and the same From tag unless o.FromTag is
	// empty) and was ended.
	End(o Outcome) bool
}
