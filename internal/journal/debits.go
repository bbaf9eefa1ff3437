package journal

import (
	"context"
	"sync"

	"github.com/callcontrol/callcontrol/internal/debit"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// debits is the durable debit spool and the goroutine that delivers it.
type debits struct {
	spool  *debit.Spool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartDebits is OpenDebits and DeliverDebits.
func (j *Journal) StartDebits(eng debit.Engine, opts debit.Options, onDone func(rating.Owed, rating.DebitReply)) {
	j.OpenDebits(eng, opts, onDone)
	j.DeliverDebits()
}

// OpenDebits opens the debit spool with the debits owed from before the
// restart, to be delivered through eng; none is sent before
// DeliverDebits. opts.Route picks where a debit goes now; onDone hears
// each reply (the session manager re-times the party's calls: so the
// sessions are restored before delivery starts, or a restored debit's
// reply finds none of the party's calls to re-time).
func (j *Journal) OpenDebits(eng debit.Engine, opts debit.Options, onDone func(rating.Owed, rating.DebitReply)) {
	restored := debit.Restore(j.restored, store.BootID(), j.logger)
	if len(restored) > 0 {
		j.logger.Info("debits owed from before the restart", "count", len(restored))
	}
	j.debits = &debits{spool: debit.New(j.log, eng, restored, opts, func(o debit.Owed, r rating.DebitReply) { onDone(o.Owed, r) }, j.logger)}
}

// DeliverDebits starts delivering the debits owed, those restored first.
func (j *Journal) DeliverDebits() {
	d := j.debits
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.spool.Run(ctx) }()
}

// owe records the debit in the same atomic batch as with (the session's
// removal), staged for the caller to wait on, and queues it for delivery.
func (d *debits) owe(o debit.Owed, with ...store.Op) session.Wait {
	return d.spool.OweStaged(o, with...).WaitUntil
}

// Spool is the debit spool, for operators; nil before StartDebits.
func (j *Journal) Spool() *debit.Spool {
	if j.debits == nil {
		return nil
	}
	return j.debits.spool
}

// DebitsWaiting counts the debits owed and not delivered yet.
func (j *Journal) DebitsWaiting() int {
	if j.debits == nil {
		return 0
	}
	return j.debits.spool.Waiting()
}

// StopDebits stops delivering debits; those owed stay in the log.
func (j *Journal) StopDebits() {
	if j.debits == nil {
		return
	}
	if j.debits.cancel != nil {
		j.debits.cancel()
	}
	j.debits.spool.Close()
	j.debits.wg.Wait()
}
