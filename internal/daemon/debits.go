package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/debit"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// debits is the durable debit spool, delivering to the rating engines and
// telling the session manager each reply (it re-times the party's calls).
type debits struct {
	spool  *debit.Spool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *state) startDebits(e *engines, m *session.Manager, log *slog.Logger) error {
	restored := debit.Restore(s.restored, log)
	if len(restored) > 0 {
		log.Info("debits owed from before the restart", "count", len(restored))
	}
	onDone := func(o debit.Owed, reply rating.DebitReply) {
		m.Debited(session.Owed{Engine: o.Engine, Debit: o.Debit}, reply)
	}
	d := &debits{spool: debit.New(s.log, e, restored, debit.Options{Route: e.route}, onDone, log)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.spool.Run(ctx) }()
	s.debits = d
	return nil
}

// owe records the debit in the same atomic batch as with (the session's
// removal) and queues it for delivery.
func (d *debits) owe(o session.Owed, with ...store.Op) session.Wait {
	return d.spool.Owe(debit.Owed{Engine: o.Engine, Debit: o.Debit}, with...).WaitUntil
}

func (d *debits) dump(put func(string, []byte)) { d.spool.Dump(put) }

func (d *debits) waiting() int { return d.spool.Waiting() }

func (d *debits) close() {
	d.cancel()
	d.spool.Close()
	d.wg.Wait()
}

// route is where a debit owed to engine goes now: engine while it is
// configured, else the party's current engine (a reload removed it). The
// spool keeps the debit's Attempted state across the move, so the
// engine's Force rule still debits it exactly once.
func (e *engines) route(engine, party string) string {
	if e.pool == nil || e.pool.Configured(engine) {
		return engine
	}
	return e.pool.Pick(party)
}

func (b backend) Debits() []control.DebitInfo {
	if b.d.state.debits == nil {
		return nil
	}
	var out []control.DebitInfo
	for _, s := range b.d.state.debits.spool.Status() {
		out = append(out, control.DebitInfo{CallID: s.Debit.CallID, Party: s.Debit.From, Engine: s.Engine,
			Seconds: s.Debit.Duration, Configured: b.d.engines.pool != nil && b.d.engines.pool.Configured(s.Engine),
			Created: s.Created, Tries: s.Tries, LastTry: s.LastTry, LastError: s.LastErr, Sending: s.Sending})
	}
	return out
}

func (b backend) DebitsRetry() control.DebitsResult {
	if b.d.state.debits == nil {
		return control.DebitsResult{}
	}
	return control.DebitsResult{Affected: b.d.state.debits.spool.RetryNow()}
}

func (b backend) DebitsReroute(engine string) (control.DebitsResult, error) {
	if b.d.state.debits == nil || b.d.engines.pool == nil {
		return control.DebitsResult{}, errNoRating
	}
	pool := b.d.engines.pool
	engine = rating.NormalizeAddr(engine)
	moved, inFlight := b.d.state.debits.spool.Reroute(engine, func(party string) string {
		to := pool.Pick(party)
		if to == engine {
			// The party's engine is the one being left: hash among the
			// others is not ours to decide; leave it.
			return ""
		}
		return to
	})
	return control.DebitsResult{Affected: moved, InFlight: inFlight}, nil
}

func (b backend) DebitsDrop(callID string) (control.DebitsResult, error) {
	if b.d.state.debits == nil {
		return control.DebitsResult{}, nil
	}
	n, err := b.d.state.debits.spool.Drop(callID)
	return control.DebitsResult{Affected: n}, err
}
