package dialog

import "sync/atomic"

// Counts are the client's totals since it started, for metrics.
type Counts struct {
	Sent      uint64 // requests handed to the proxy's socket
	Retried   uint64 // sends the socket refused (full or gone) and that were retried or given up
	Confirmed uint64 // the proxy ended the dialog
	Gone      uint64 // the proxy had no such dialog (already ended)
	Refused   uint64 // the proxy answered an error
	Timeouts  uint64 // no answer in time
	GaveUp    uint64 // never accepted by the socket, or not encodable
	Abandoned uint64 // still in flight at shutdown
}

type counters struct {
	sent    atomic.Uint64
	outcome [outcomeAbandoned + 1]atomic.Uint64
}

// Counts returns the totals so far.
func (c *Client) Counts() Counts {
	o := &c.counts.outcome
	return Counts{
		Sent: c.counts.sent.Load(), Retried: uint64(c.refused.Load()),
		Confirmed: o[outcomeOK].Load(), Gone: o[outcomeGone].Load(), Refused: o[outcomeError].Load(),
		Timeouts: o[outcomeTimeout].Load(), GaveUp: o[outcomeGaveUp].Load(), Abandoned: o[outcomeAbandoned].Load(),
	}
}
