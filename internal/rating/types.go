package rating

import "errors"

// Kind says what a MaxSessionTime answer allows.
type Kind int

const (
	Limited   Kind = iota // may talk Seconds (0: no credit)
	Unlimited             // "none": no limit from the engine
	Locked                // too many parallel calls for the account
)

// MaxTime is a parsed MaxSessionTime answer.
type MaxTime struct {
	Kind    Kind
	Seconds int
	Prepaid bool // type=prepaid (without a type line: a number means prepaid)
	// Generation numbers the engine connection that carried the answer,
	// from 1 (the Conn's first); 0 when not known. Answers on a later
	// generation may come from an engine that restarted and forgot the
	// sessions it counted before.
	Generation uint64
}

// Request is a MaxSessionTime question.
type Request struct {
	CallID, From, To, Gateway, Application string
	Duration                               int  // the cap sent to the engine
	Connected                              bool // re-ask at start: adds State=Connected
}

// Owed is a debit owed to an engine: what a call's end leaves to send.
// The debit spool keeps it with its own bookkeeping (debit.Owed).
type Owed struct {
	Engine string
	Debit  Debit
}

// Debit is a DebitBalance request.
type Debit struct {
	CallID, From, To, Gateway, Application string
	Duration                               int  // billed seconds, 0 for a call never answered
	Force                                  bool // debit even a CallId the engine does not know
}

// DebitReply is a parsed DebitBalance answer.
type DebitReply struct {
	OK             bool   // false: "Failed", nothing was debited
	MaxSessionTime int    // the new common limit of the account's remaining calls
	Price          string // this call's price as the engine wrote it
	Generation     uint64 // as MaxTime's
}

// ErrNotSent marks a request that certainly never reached the engine (no
// connection, backoff). Any other error leaves its fate unknown.
var ErrNotSent = errors.New("rating: request not sent")
