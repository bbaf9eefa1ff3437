package daemon

import (
	"context"
	"log/slog"
	"sync"

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
	d := &debits{spool: debit.New(s.log, e, restored, debit.Options{}, onDone, log)}
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
