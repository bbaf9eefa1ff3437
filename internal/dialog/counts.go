package dialog

import "sync/atomic"

// Counts are the client's totals since it started, for metrics.
type Counts struct {
	Sent      uint64 // datagrams handed to the proxy's socket, re-sends included
	Retried   uint64 // sends the socket refused (full or gone), and requests sent again for want of an answer
	Confirmed uint64 // the proxy ended the dialog
	Gone      uint64 // the proxy had no such dialog (already ended)
	Refused   uint64 // the proxy answered an error other than "not found"
	Timeouts  uint64 // attempts with no answer in time (each is sent again)
	Unendable uint64 // calls with no dialog id the proxy can use: never sent
}

type counters struct {
	outcome [outcomeRetryByCallID + 1]atomic.Uint64
}

// Counts returns the totals so far.
func (c *Client) Counts() Counts {
	o := &c.counts.outcome
	return Counts{
		Sent: uint64(c.sends.Load()), Retried: uint64(c.refused.Load()) + o[outcomeTimeout].Load(),
		Confirmed: o[outcomeOK].Load(), Gone: o[outcomeGone].Load(), Refused: o[outcomeError].Load(),
		Timeouts: o[outcomeTimeout].Load(), Unendable: o[outcomeUnendable].Load(),
	}
}
