package control

import "time"

// Owed-debit commands. "debits" lists and is read-only; the others change
// what is owed and are logged with the operator's uid.
const (
	CmdDebits        = "debits"
	CmdDebitsRetry   = "debits_retry"
	CmdDebitsReroute = "debits_reroute" // Engine: the engine whose debits move
	CmdDebitsDrop    = "debits_drop"    // CallID; Confirm must be true
)

// DebitInfo is one debit owed to a rating engine.
type DebitInfo struct {
	CallID  string `json:"call_id"`
	Party   string `json:"party"`
	Engine  string `json:"engine"`
	Seconds int    `json:"seconds"` // the call's billed duration
	// Configured is false for an engine removed from the configuration:
	// the debit goes to the party's current engine.
	Configured bool      `json:"engine_configured"`
	Created    time.Time `json:"created"`
	Tries      int       `json:"tries"`
	LastTry    time.Time `json:"last_try,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	Sending    bool      `json:"sending"`
}

// DebitsResult answers the commands that change owed debits.
type DebitsResult struct {
	Affected int `json:"affected"`           // retried (owed now), moved or dropped
	InFlight int `json:"in_flight,omitzero"` // reroute: left, a send was under way
	// Stayed (reroute): left where they are, because the party's current
	// engine is the one they are owed to.
	Stayed int `json:"stayed,omitzero"`
	// NotWritten (reroute): moved too, but in memory only: their records
	// could not be written (WriteError says why). They are sent to the
	// new engine only once the state log writes them again; a restart
	// before that leaves them owed to the old engine. Not in Affected.
	NotWritten int    `json:"not_written,omitzero"`
	WriteError string `json:"write_error,omitempty"`
}

// Debits lists the debits owed, oldest first.
func (c *Client) Debits() ([]DebitInfo, error) {
	resp, err := c.Do(Request{Cmd: CmdDebits})
	if err != nil {
		return nil, err
	}
	return resp.Debits, nil
}

// DebitsRetry makes every engine retry its oldest debit now.
func (c *Client) DebitsRetry() (DebitsResult, error) {
	resp, err := c.Do(Request{Cmd: CmdDebitsRetry})
	return derefResult(resp), err
}

// DebitsReroute sends the debits owed to engine to each party's current
// engine.
func (c *Client) DebitsReroute(engine string) (DebitsResult, error) {
	resp, err := c.Do(Request{Cmd: CmdDebitsReroute, Engine: engine})
	return derefResult(resp), err
}

// DebitsDrop forgets the debits owed for callID: the engine never hears of
// them. It is refused without confirm.
func (c *Client) DebitsDrop(callID string, confirm bool) (DebitsResult, error) {
	resp, err := c.Do(Request{Cmd: CmdDebitsDrop, CallID: callID, Confirm: confirm})
	return derefResult(resp), err
}

func derefResult(r Response) DebitsResult {
	if r.DebitsResult == nil {
		return DebitsResult{}
	}
	return *r.DebitsResult
}
