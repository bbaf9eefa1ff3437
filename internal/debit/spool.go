package debit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
)

// Engine delivers one debit. errors.Is(err, rating.ErrNotSent) means the
// request certainly never reached the engine; any other error leaves its
// fate unknown.
type Engine interface {
	DebitBalance(ctx context.Context, engine string, d rating.Debit) (rating.DebitReply, error)
}

// Options tune delivery; zero values take the defaults.
type Options struct {
	MinBackoff time.Duration // first retry delay, default 1 s
	MaxBackoff time.Duration // default 60 s
	Timeout    time.Duration // per send, a safety net over the engine's own; default 30 s
	// Route names the engine a debit owed to engine for party goes to now:
	// engine itself while it is configured, else the party's current
	// engine ("" keeps it where it is). nil: every debit stays with its
	// engine.
	Route func(engine, party string) string
	// Hold keeps a party on an engine while a debit of it that charges
	// time is owed there (rating.Pool.Hold); Unhold ends one Hold. Both
	// are called under the spool's lock. nil: no holds.
	Hold   func(party, engine string)
	Unhold func(party string)
	// Boot is the running boot's ID, written in prepared marks (Restore);
	// default store.BootID().
	Boot string
}

// Counters count outcomes since New.
type Counters struct {
	Delivered      uint64 // answered Ok
	Forced         uint64 // of those, sent with Force=1
	AlreadyApplied uint64 // Failed after a send of unknown fate: it had been applied
	Refused        uint64 // Failed even with Force=1: dropped
	Retries        uint64 // rounds that failed (a send, or recording it) and wait for a retry
}

// Spool owns the debits owed. Safe for concurrent use.
type Spool struct {
	log    *store.Log
	eng    Engine
	opts   Options
	onDone func(Owed, rating.DebitReply)
	lg     *slog.Logger

	mu     sync.Mutex
	nextID uint64
	recs   map[uint64]*entry
	// order lists the IDs of recs ascending (the order debits were owed),
	// with holes (IDs no longer in recs): what operators' listings and
	// snapshots walk in chunks (walk.go).
	order    []uint64
	walked   func() // tests: called after each chunk of a walk, outside the lock
	workers  map[string]*worker
	ctx      context.Context
	cancel   context.CancelFunc
	running  bool
	stopping bool
	counters Counters
	wg       sync.WaitGroup
}

type entry struct {
	o  Owed
	in *worker // the worker whose queue holds it; nil: in none
	// prev and next thread in's queue.
	prev, next *entry
	// ready: prepare took it in a flushed batch (marked Prepared unless
	// already Attempted) for a send that has not started yet.
	ready bool
	// For operators: when the last send failed, and why.
	lastTry time.Time
	lastErr string
	// held: Options.Hold was called for it (on o.Engine).
	held bool
}

type worker struct {
	engine  string
	q       queue // delivery order
	wake    chan struct{}
	retry   chan struct{} // an operator asked to retry now: cut the backoff
	sending uint64        // ID of the debit being sent now, 0 if none
	started bool
	// answering: the engine answered the last send, so prepare marks a
	// whole batch. Until it does (at start, after a failed round) prepare
	// marks the head alone: a power cut during an outage then leaves one
	// debit fate unknown, not a batch. Only the worker's goroutine uses it.
	answering bool
}

// New makes a spool that writes to log and delivers through eng; restored
// (from Restore) are queued at once. onDone is called for each debit
// answered Ok, from the spool's goroutine and under none of its locks.
// Nothing is sent before Run.
func New(log *store.Log, eng Engine, restored []Owed, opts Options, onDone func(Owed, rating.DebitReply), l *slog.Logger) *Spool {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(60*time.Second, opts.MinBackoff)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Boot == "" {
		opts.Boot = store.BootID()
	}
	if opts.Boot == "" {
		opts.Boot = "unknown" // matches no boot: prepared is fate unknown
	}
	if onDone == nil {
		onDone = func(Owed, rating.DebitReply) {}
	}
	s := &Spool{
		log: log, eng: eng, opts: opts, onDone: onDone, lg: l,
		recs: make(map[uint64]*entry), workers: make(map[string]*worker),
		// IDs grow across restarts too, so a key is never reused.
		nextID: uint64(time.Now().UnixMicro()),
	}
	for _, o := range restored {
		s.nextID = max(s.nextID, o.ID)
		s.queueLocked(o)
	}
	if len(restored) > 0 {
		l.Info("debit: restored debits owed", "waiting", len(restored))
	}
	return s
}

// Op registers d as owed and returns the store op that records it, to be
// applied in the same atomic batch as the caller's own ops (e.g. deleting
// the session), and d with its ID. Follow it with Queue once the batch is
// applied, whatever the commit's outcome.
func (s *Spool) Op(d Owed) (store.Op, Owed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	d.ID = s.nextID
	d.Attempted, d.Prepared, d.Tries = false, "", 0
	if d.Created.IsZero() {
		d.Created = time.Now()
	}
	// Registered now, not at Queue: a Compact that runs between the
	// caller's Apply and Queue must find it in Dump.
	s.addLocked(&entry{o: d})
	return store.Put(Key(d.ID), encode(d)), d
}

// Queue hands a debit from Op to delivery.
func (s *Spool) Queue(d Owed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ID == 0 {
		// Not from Op: record it now so it is durable before its send.
		s.nextID++
		d.ID = s.nextID
		if d.Created.IsZero() {
			d.Created = time.Now()
		}
		s.log.Apply(store.Put(Key(d.ID), encode(d)))
	}
	s.queueLocked(d)
}

// Owe is Op, Apply with the caller's ops, and Queue in one call; the
// returned commit covers the caller's ops and the debit.
func (s *Spool) Owe(d Owed, with ...store.Op) *store.Commit {
	return s.owe(s.log.Apply, d, with)
}

// OweStaged is Owe for a caller that will Wait on the commit (the proxy's
// stop): the batch is staged (store.Log.Stage), which wakes no writer.
func (s *Spool) OweStaged(d Owed, with ...store.Op) *store.Commit {
	return s.owe(s.log.Stage, d, with)
}

func (s *Spool) owe(write func(...store.Op) *store.Commit, d Owed, with []store.Op) *store.Commit {
	op, d := s.Op(d)
	ops := make([]store.Op, 0, len(with)+1)
	c := write(append(append(ops, with...), op)...)
	s.Queue(d)
	return c
}

func (s *Spool) queueLocked(d Owed) {
	e := s.recs[d.ID]
	if e == nil {
		e = &entry{o: d}
		s.addLocked(e)
	}
	if e.in != nil {
		return
	}
	d = e.o
	w := s.workers[d.Engine]
	if w == nil {
		w = &worker{engine: d.Engine, wake: make(chan struct{}, 1), retry: make(chan struct{}, 1)}
		s.workers[d.Engine] = w
	}
	w.q.push(e)
	e.in = w
	s.startLocked(w)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (s *Spool) startLocked(w *worker) {
	if !s.running || s.stopping || w.started {
		return
	}
	w.started = true
	s.wg.Add(1)
	go s.work(s.ctx, w)
}

// Run delivers until ctx is done or Close; it returns once every delivery
// goroutine has stopped. A send in flight is abandoned as fate unknown.
func (s *Spool) Run(ctx context.Context) {
	s.mu.Lock()
	if s.running || s.stopping {
		s.mu.Unlock()
		return
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.running = true
	for _, w := range s.workers {
		s.startLocked(w)
	}
	ctx = s.ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.wg.Wait()
}

// Close stops delivery and waits for it. Owed debits stay in the store.
func (s *Spool) Close() {
	s.mu.Lock()
	s.stopping = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

// Waiting is how many debits are owed and not yet delivered.
func (s *Spool) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// Delivered returns the outcome counters.
func (s *Spool) Delivered() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters
}

// Dump puts every owed debit, for store.Log.Compact. The debits are
// copied in chunks (walk), not under one hold of the lock a call's end
// takes, and encoded outside it: a debit changed meanwhile may be put in
// either state, and its change is in the log after the snapshot's start,
// which a load replays on top (each record is a whole put or a delete), as
// for the session table (journal.snapshot).
func (s *Spool) Dump(put func(key string, v []byte)) { s.DumpUpTo(^uint64(0), put) }

// LastID is the ID the last debit owed was given.
func (s *Spool) LastID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID
}

// DumpUpTo is Dump of the debits with IDs up to last (LastID taken after
// the log's rotation): a later one's record is in the log replayed on
// top. A snapshot that copies the session table first takes last before
// it: a call ending during that copy, its session already put, must not
// have its debit put too, or a snapshot kept without the log after it
// (a power cut within the flush interval) owes both: twice.
func (s *Spool) DumpUpTo(last uint64, put func(key string, v []byte)) {
	buf := make([]Owed, 0, walkChunk)
	s.walk(func(e *entry, _ bool) {
		if e.o.ID <= last {
			buf = append(buf, e.o)
		}
	}, func() {
		for _, o := range buf {
			put(Key(o.ID), encode(o))
		}
		buf = buf[:0]
	})
}

// Pending lists the owed debits, oldest first (for operators), copied in
// chunks as Status does.
func (s *Spool) Pending() []Owed {
	var out []Owed
	buf := make([]Owed, 0, walkChunk)
	s.walk(func(e *entry, _ bool) { buf = append(buf, e.o) }, func() {
		out = append(out, buf...)
		buf = buf[:0]
	})
	return out
}

// update stores o as the record's new state; the caller waits on the
// commit only where the order against a send matters. The table changes
// under the same lock as Apply, so Dump always matches the log.
func (s *Spool) update(o Owed) *store.Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[o.ID].o = o
	return s.log.Apply(store.Put(Key(o.ID), encode(o)))
}

// prepareBatch bounds the debits one prepare marks: a batch's record is
// a few hundred bytes per debit, and a long outage's backlog is sent in
// several batches rather than marked all at once.
const prepareBatch = 256

// prepare marks the debits at the head of w's queue prepared, in one
// batch and one flush, before the first of them is sent. Each send then
// marks its debit attempted, in the page cache only, before it leaves
// (sending). After a kill -9 the page cache is all there: a debit
// prepared and not attempted certainly never left, and only the one in
// flight is fate unknown. After a power cut the attempted marks of the
// last interval may be lost, and the flushed prepared mark is what keeps
// a debit that left from being taken for one that never did (Restore).
// A flush of its own per debit would cost an fdatasync per call
// (BENCHMARKS.md, prepaid): the flusher's next round, shared by every
// debit that ended within its interval, is waited for instead; it also
// makes the session's end, recorded before the debit, durable before the
// debit leaves. The marks a failed round or an operator's move leaves
// unsent are taken back (unprepare, unready). So a power cut can make
// fate unknown the debits of one batch that had not left yet, and a
// batch is one debit until the engine answers (worker.answering).
func (s *Spool) prepare(w *worker) error {
	batch := 1
	if w.answering {
		batch = prepareBatch
	}
	s.mu.Lock()
	n := min(w.q.n, batch)
	ops := make([]store.Op, 0, n)
	took := 0
	for e, i := w.q.head, 0; e != nil && i < n; e, i = e.next, i+1 {
		if e.ready {
			continue
		}
		e.ready = true
		took++
		if !e.o.Attempted { // an attempted debit is fate unknown already
			e.o.Prepared = s.opts.Boot
			ops = append(ops, store.Put(Key(e.o.ID), encode(e.o)))
		}
	}
	var c *store.Commit
	if len(ops) > 0 {
		c = s.log.Stage(ops...) // waited for just below
	}
	s.mu.Unlock()
	if took == 0 {
		return nil
	}
	if c != nil {
		if err := c.Wait(); err != nil {
			return err
		}
	}
	// With the interval flush Wait means written, not flushed. Waited
	// for even when only attempted debits were taken (nothing to mark):
	// the records written before, e.g. a reroute's naming the engine it
	// is about to go to, are durable before it leaves, and nothing leaves
	// while the state is not durable (a failed write, AwaitFlush).
	return s.log.AwaitFlush()
}

// unprepare takes back the prepared marks of w's queue whose send never
// started, before a backoff or a stop, so that a power cut meanwhile does
// not make them fate unknown. Not waited for, as a failed send's own
// unmarking is not. Only the head is looked at, not the whole backlog
// (this runs after every failed round of an outage, under the lock a
// call's end takes): prepare marks the first prepareBatch at most, and
// since the queue only loses entries or grows at its tail (a debit moved
// in is unready), a marked one stays within that head.
func (s *Spool) unprepare(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []store.Op
	for e, i := w.q.head, 0; e != nil && i < prepareBatch; e, i = e.next, i+1 {
		if e.unready() {
			ops = append(ops, store.Put(Key(e.o.ID), encode(e.o)))
		}
	}
	if len(ops) > 0 {
		s.log.Apply(ops...)
	}
}

// unready takes back prepare's mark in memory, and reports whether the
// record changed; the caller holds the spool's lock and writes it.
func (e *entry) unready() bool {
	if !e.ready {
		return false
	}
	e.ready = false
	changed := e.o.Prepared != ""
	e.o.Prepared = ""
	return changed
}

// sending marks the prepared debit id attempted and counts the try, in the
// page cache before the send (the caller sends only on a nil error). It
// returns the debit and whether a send of it may have reached the engine
// before this one.
func (s *Spool) sending(id uint64) (Owed, bool, error) {
	s.mu.Lock()
	e := s.recs[id]
	e.ready = false
	was := e.o.Attempted
	e.o.Attempted, e.o.Prepared = true, ""
	e.o.Tries++
	o := e.o
	c := s.log.Stage(store.Put(Key(id), encode(o)))
	s.mu.Unlock()
	// Should the write fail, memory keeps the mark: a later send takes
	// the debit for fate unknown, which can lose it but never applies it
	// twice.
	return o, was, c.Wait()
}

// isReady reports whether prepare marked debit id and its send has not
// started.
func (s *Spool) isReady(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.recs[id]
	return e != nil && e.ready
}

// finish removes the head of w's queue, delivered or given up.
func (s *Spool) finish(w *worker, o Owed, count func(*Counters)) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.recs[o.ID]; e != nil {
		e.dequeueLocked()
	}
	s.deleteLocked(o.ID)
	count(&s.counters)
	// Not waited for, and staged: the next write anyone waits for, or the
	// flusher within its interval, takes it, with no writer woken per
	// debit. If it is lost, the record comes back as fate unknown and its
	// resend is answered Failed, which drops it. Never twice.
	s.log.Stage(store.Delete(Key(o.ID)))
	return w.q.n
}

type outcome int

const (
	done outcome = iota
	again
	later
)

func (s *Spool) work(ctx context.Context, w *worker) {
	defer s.wg.Done()
	backoff := time.Duration(0)
	for {
		s.mu.Lock()
		var o Owed
		have := w.q.head != nil
		if have {
			o = w.q.head.o
			// Claimed under the lock that reads it: an operator's drop or
			// reroute leaves a debit being sent alone.
			w.sending = o.ID
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			s.unprepare(w)
			return
		}
		switch s.attempt(ctx, w, o) {
		case done:
			backoff = 0
			w.answering = true
		case again:
		case later:
			w.answering = false
			s.unprepare(w)
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, s.opts.MinBackoff), s.opts.MaxBackoff)
			s.mu.Lock()
			s.counters.Retries++
			n, total := w.q.n, len(s.recs)
			s.mu.Unlock()
			s.lg.Warn("debit: not delivered this round, debits waiting", "engine", w.engine,
				"waiting", n, "waiting_all_engines", total, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-w.retry:
				t.Stop()
				backoff = 0
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// attempt sends the debit at the head of w's queue once.
func (s *Spool) attempt(ctx context.Context, w *worker, o Owed) outcome {
	defer func() {
		s.mu.Lock()
		w.sending = 0
		s.mu.Unlock()
	}()
	if s.opts.Route != nil {
		if to := s.opts.Route(o.Engine, o.Debit.From); to != "" && to != o.Engine {
			s.mu.Lock()
			w.sending = 0
			s.mu.Unlock()
			moved, err := s.move(w, o.ID, to)
			switch {
			case err != nil:
				s.lg.Error("debit: its engine is no longer configured, moved to the party's current engine in memory only: its record could not be written, so it is not sent there before the state log writes it again, and a restart before that returns it to its old engine",
					"callid", o.Debit.CallID, "party", o.Debit.From, "engine", o.Engine, "to_engine", to, "id", o.ID, "err", err)
			case moved:
				s.lg.Warn("debit: its engine is no longer configured, sent to the party's current engine instead",
					"callid", o.Debit.CallID, "party", o.Debit.From, "engine", o.Engine, "to_engine", to, "id", o.ID)
			}
			return again
		}
	}
	log := s.lg.With("callid", o.Debit.CallID, "party", o.Debit.From, "to", o.Debit.To, "engine", o.Engine, "id", o.ID)
	// Durable before the send: after a crash this debit is fate unknown.
	if !s.isReady(o.ID) {
		if err := s.prepare(w); err != nil {
			s.failed(o.ID, err)
			log.Error("debit: cannot record the attempt, not sending", "err", err)
			return later
		}
	}
	o, was, err := s.sending(o.ID)
	if err != nil {
		s.failed(o.ID, err)
		log.Error("debit: cannot record the attempt, not sending", "err", err)
		return later
	}
	sctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	reply, err := s.eng.DebitBalance(sctx, o.Engine, o.Debit)
	cancel()
	switch {
	case errors.Is(err, rating.ErrInvalid):
		// Values the engine's framing cannot carry: no retry can help.
		// Init refuses such calls, so this is a bug or a damaged record.
		n := s.finish(w, o, func(c *Counters) { c.Refused++ })
		log.Error("debit: cannot be sent to the engine, dropped", "duration", o.Debit.Duration, "err", err, "waiting", n)
		return done
	case errors.Is(err, rating.ErrNotSent):
		if !was {
			// In the page cache before the next try, or a kill -9 now
			// leaves a debit that never left as fate unknown.
			o.Attempted = false
			s.update(o).Wait()
		}
		s.failed(o.ID, err)
		log.Warn("debit: not sent", "cause", rating.Cause(err), "err", err)
		return later
	case err != nil:
		if ctx.Err() != nil {
			return later // stopping: the record stays attempted, fate unknown
		}
		if o.Debit.Force {
			// A forced debit that may have been applied must not be forced
			// again: resent plain, Failed then means it was applied.
			o.Debit.Force = false
			s.update(o)
		}
		s.failed(o.ID, err)
		log.Warn("debit: fate unknown, will resend without Force", "cause", rating.Cause(err), "err", err)
		return later
	case reply.OK:
		n := s.finish(w, o, func(c *Counters) {
			c.Delivered++
			if o.Debit.Force {
				c.Forced++
			}
		})
		log.Info("debit: delivered", "duration", o.Debit.Duration, "price", reply.Price,
			"max_session_time", reply.MaxSessionTime, "forced", o.Debit.Force, "tries", o.Tries, "waiting", n)
		s.onDone(o, reply)
		return done
	case o.Debit.Force:
		n := s.finish(w, o, func(c *Counters) { c.Refused++ })
		log.Error("debit: engine refused even a forced debit, dropped", "duration", o.Debit.Duration, "waiting", n)
		return done
	case o.Debit.Duration == 0:
		// A release the engine does not know: nothing to release.
		n := s.finish(w, o, func(c *Counters) { c.AlreadyApplied++ })
		log.Info("debit: 0 s release of a call the engine does not count", "waiting", n)
		return done
	case !was:
		// Never reached the engine before, yet unknown to it (e.g.
		// purged): force it, once.
		o.Attempted, o.Debit.Force = false, true
		s.update(o).Wait() // as for ErrNotSent: the engine has it not
		log.Warn("debit: engine does not know the call, resending with Force=1")
		return again
	default:
		n := s.finish(w, o, func(c *Counters) { c.AlreadyApplied++ })
		log.Info("debit: already applied by an earlier send", "duration", o.Debit.Duration, "waiting", n)
		return done
	}
}
