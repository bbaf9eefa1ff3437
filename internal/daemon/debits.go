package daemon

import (
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/debit"
	"github.com/callcontrol/callcontrol/internal/rating"
)

// route is where a debit owed to engine goes now: engine while it is
// configured, else the party's current engine (a reload removed it). The
// spool keeps the debit's Attempted state across the move, so the
// engine's Force rule still debits it exactly once.
func (e *engines) route(engine, party string) string {
	if e.pool == nil || e.pool.Configured(engine) {
		return engine
	}
	return e.pool.Route(party, engine)
}

// debitOptions are the spool's: a debit owed to an engine no longer
// configured goes to the party's engine (route), and a party is held on
// the engine its debits are owed to until they are delivered.
func (e *engines) debitOptions() debit.Options {
	o := debit.Options{Route: e.route}
	if e.pool != nil {
		o.Hold, o.Unhold = e.pool.Hold, e.pool.Unhold
	}
	return o
}

// leaveRemovedEngines moves the debits owed to engines no longer
// configured to their party's engine (Pool.Route) now, each one, at start
// and at a reload. The spool's own Route moves only the head of an
// engine's queue at each try: behind a head that must stay (its party has
// calls in progress on the removed engine), the parties of the debits
// queued after it would stay held on the removed engine, their calls
// refused while it is down, for as long as that call lasts.
func (e *engines) leaveRemovedEngines(sp *debit.Spool) {
	if sp == nil || e.pool == nil {
		return
	}
	for _, engine := range sp.Engines() {
		if e.pool.Configured(engine) {
			continue
		}
		r := sp.Reroute(engine, func(party string) string {
			if to := e.pool.Route(party, engine); to != engine {
				return to
			}
			return ""
		})
		if r.Moved > 0 {
			e.log.Warn("debits owed to an engine no longer configured moved to their party's engine",
				"engine", engine, "moved", r.Moved, "in_flight", r.InFlight)
		}
		if r.Err != nil {
			e.log.Error("debits owed to an engine no longer configured moved in memory only: their records could not be written (the state log is failing)",
				"engine", engine, "not_written", r.NotWritten, "err", r.Err)
		}
	}
}

func (b backend) Debits() []control.DebitInfo {
	sp := b.d.state.Spool()
	if sp == nil {
		return nil
	}
	var out []control.DebitInfo
	for _, s := range sp.Status() {
		out = append(out, control.DebitInfo{CallID: s.Debit.CallID, Party: s.Debit.From, Engine: s.Engine,
			Seconds: s.Debit.Duration, Configured: b.d.engines.pool != nil && b.d.engines.pool.Configured(s.Engine),
			Created: s.Created, Tries: s.Tries, LastTry: s.LastTry, LastError: s.LastErr, Sending: s.Sending})
	}
	return out
}

func (b backend) DebitsRetry() control.DebitsResult {
	sp := b.d.state.Spool()
	if sp == nil {
		return control.DebitsResult{}
	}
	return control.DebitsResult{Affected: sp.RetryNow()}
}

func (b backend) DebitsReroute(engine string) (control.DebitsResult, error) {
	sp := b.d.state.Spool()
	if sp == nil || b.d.engines.pool == nil {
		return control.DebitsResult{}, errNoRating
	}
	pool := b.d.engines.pool
	engine = rating.NormalizeAddr(engine)
	stayed := 0
	r := sp.Reroute(engine, func(party string) string {
		to := pool.Route(party, engine)
		if to == engine || to == "" {
			// The party has calls on the engine being left (their own
			// debits will be owed there), or no other engine is
			// configured: leave it, and say so.
			stayed++
			return ""
		}
		return to
	})
	res := control.DebitsResult{Affected: r.Moved, InFlight: r.InFlight, Stayed: stayed, NotWritten: r.NotWritten}
	if r.Err != nil {
		res.WriteError = r.Err.Error()
	}
	return res, nil
}

func (b backend) DebitsDrop(callID string) (control.DebitsResult, error) {
	sp := b.d.state.Spool()
	if sp == nil {
		return control.DebitsResult{}, nil
	}
	n, err := sp.Drop(callID)
	return control.DebitsResult{Affected: n}, err
}
