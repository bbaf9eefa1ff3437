package store

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// The flusher goroutine runs with NoSync. Writers copy their frames into
// the ring (ring.go) and return; the flusher drains the ring into the
// segment at most FlushEvery (or drainEvery, without an interval flush)
// after the first write it has not drained yet, and with the interval
// flush (Options.FlushEvery) makes it durable (fdatasync) then. No writer
// ever waits for the disk; a power cut loses at most the last FlushEvery
// of changes (plus one fdatasync's time when the disk is slower than
// that).
//
// A segment finished by a rotation is not closed by the writer that
// rotated: it is retired, still open, and the flusher syncs and closes it.
// Likewise a new segment's directory entry is made durable by the next
// flush, not by the writer that created it.

// FlushEvery is the interval of the background flush, 0 when the log has
// none (fsync before each reply, or NoSync alone).
func (l *Log) FlushEvery() time.Duration {
	if l.flushing() {
		return l.opts.FlushEvery
	}
	return 0
}

// flushing reports whether the log runs the interval flusher.
func (l *Log) flushing() bool { return l.opts.NoSync && l.opts.FlushEvery > 0 }

// markDirty records that bytes were written since the last flush, and wakes
// the flusher the first time. The caller holds wmu.
func (l *Log) markDirty() {
	if l.dirty {
		return
	}
	l.dirty = true
	l.dirtySince = time.Now()
	l.kickFlusher()
}

// kickFlusher wakes the flusher, unless it is awake (it looks again within
// its interval) or a wake-up is already waiting.
func (l *Log) kickFlusher() {
	if l.flusherAwake.Load() {
		return
	}
	select {
	case l.flushKick <- struct{}{}:
	default:
	}
}

// drainEvery bounds how long, with NoSync alone, a batch stays in the
// ring before it is copied to the segment.
const drainEvery = 100 * time.Millisecond

// notePending notes that a batch is staged, or in the ring, that the
// flusher has not taken yet, and wakes the flusher the first time.
func (l *Log) notePending() {
	if l.pending.CompareAndSwap(false, true) {
		l.pendingSince.Store(time.Now().UnixNano())
		l.kickFlusher()
	}
}

// due reports whether anything waits for the flusher, and since when.
func (l *Log) due() (since time.Time, dirty bool) {
	l.wmu.Lock()
	since, dirty = l.dirtySince, l.dirty
	l.wmu.Unlock()
	if l.pending.Load() {
		if at := time.Unix(0, l.pendingSince.Load()); !dirty || at.Before(since) {
			since = at
		}
		dirty = true
	}
	return since, dirty
}

// flushLoop is the flusher goroutine: started by Open, stopped by Close
// (which then drains and flushes what is left itself). Asleep, it is
// woken by the first write and flushes it an interval later; then it
// stays awake, flushing once per interval what came meanwhile, until an
// interval brings nothing. Under load that is one timer per interval and
// no wake-up from the writers: on this project's VMs every wake-up of
// another thread costs the proxy's replies (BENCHMARKS.md).
func (l *Log) flushLoop() {
	defer close(l.flushDone)
	every := l.opts.FlushEvery
	if every <= 0 {
		every = drainEvery
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	sleep := func(d time.Duration) bool {
		if d <= 0 {
			select {
			case <-l.flushStop:
				return false
			default:
				return true
			}
		}
		t.Reset(d)
		select {
		case <-t.C:
			return true
		case <-l.flushStop:
			t.Stop()
			return false
		}
	}
	for {
		select {
		case <-l.flushKick:
		case <-l.flushStop:
			return
		}
		l.flusherAwake.Store(true)
		for looked := false; ; {
			since, dirty := l.due()
			if dirty {
				// Flushed an interval after the first write it takes,
				// at once when a slow flush already took longer.
				if !sleep(time.Until(since.Add(every))) {
					return
				}
				if l.flush() != nil && !sleep(every) {
					return // a failed flush is retried an interval later, not at once
				}
				looked = false
				continue
			}
			if looked {
				// An interval with nothing: asleep from here on,
				// unless a write came between the look and the
				// store (it may have seen us awake and not kicked).
				l.flusherAwake.Store(false)
				if _, dirty = l.due(); !dirty {
					break
				}
				l.flusherAwake.Store(true)
				continue
			}
			looked = true
			if !sleep(every) {
				return
			}
		}
	}
}

// AwaitFlush returns once every batch whose Wait returned before the call
// is durable. Unlike Flush it does not flush now: it waits for the
// flusher's next round, at most the interval away, so that callers
// arriving together share one fdatasync (the debit spool marks a batch
// of debits prepared, then waits here once before sending them). With
// fsync every Wait is durable already, and with NoSync alone nothing is
// ever flushed: it does not wait. In every setting it fails while the
// state is not durable (a write or a flush failed and no snapshot has
// written everything again since, health.go).
func (l *Log) AwaitFlush() error {
	if l.flushing() {
		r, err := l.rounds.join()
		if err != nil {
			return err
		}
		l.notePending()
		<-r.done
		if r.err != nil {
			return r.err
		}
	}
	return l.NotDurable()
}

// flushRounds hands AwaitFlush's waiters to the next flush to start.
type flushRounds struct {
	mu     sync.Mutex
	next   *flushRound
	closed bool
}

// flushRound is one flush as its waiters see it.
type flushRound struct {
	done chan struct{}
	err  error
}

func (f *flushRounds) join() (*flushRound, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if f.next == nil {
		f.next = &flushRound{done: make(chan struct{})}
	}
	return f.next, nil
}

// take hands the waiters so far to a flush that starts now.
func (f *flushRounds) take() *flushRound {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.next
	f.next = nil
	return r
}

// answer tells a taken round's waiters how their flush went.
func (r *flushRound) answer(err error) {
	if r != nil {
		r.err = err
		close(r.done)
	}
}

// close answers the waiters left with Close's outcome; later callers get
// ErrClosed.
func (f *flushRounds) close(err error) {
	f.mu.Lock()
	r := f.next
	f.next, f.closed = nil, true
	f.mu.Unlock()
	r.answer(err)
}

// drain copies the ring's entries into the segment, then frees them. On
// failure they stay in the ring, still safe from a kill -9, and the
// flusher tries again after its interval. The caller holds wmu.
func (l *Log) drain() error {
	if l.ring == nil {
		return nil
	}
	if l.drainBuf == nil {
		// The ring never holds more than its data: one buffer that size,
		// kept, so a drain under load never grows one again (growing a
		// few MiB each time was most of an in-process call's CPU, and
		// GC with it).
		l.drainBuf = make([]byte, 0, len(l.ring.data))
	}
	var head uint64
	l.drainBuf, head = l.ring.taken(l.drainBuf[:0])
	if len(l.drainBuf) > 0 {
		err := l.writeSegment(l.drainBuf)
		l.statsMu.Lock()
		l.stats.Failing = err != nil
		if err != nil {
			l.stats.Errors++
		}
		l.statsMu.Unlock()
		if err != nil {
			l.notePending() // try again after the interval
			return err
		}
	}
	l.ring.free(head)
	return nil
}

// flush drains the ring, then fdatasyncs the retired segments and the
// current one, and the directory when a segment was created since the
// last flush; it then publishes the written position it started from as
// flushed. Without the interval flush it only drains. Concurrent flushes
// are serialised: one that finds everything flushed returns at once.
func (l *Log) flush() (err error) {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	// Batches staged and never waited for go to the ring first. A batch
	// staged or put in the ring from here on is pending again.
	l.pending.Store(false)
	// Taken after pending is cleared: a waiter who joins later sets it
	// again, and so gets a flush of its own.
	round := l.rounds.take()
	defer func() { round.answer(err) }()
	mu := l.writerMu()
	mu.Lock()
	for l.writeNext() {
	}
	mu.Unlock()
	l.wmu.Lock()
	if err := l.drain(); err != nil || !l.flushing() {
		l.wmu.Unlock()
		return err
	}
	l.statsMu.Lock()
	target := l.onSegment
	done := l.stats.Flushed >= target
	l.statsMu.Unlock()
	if done && len(l.retired) == 0 && !l.dirNew {
		l.dirty = false
		l.wmu.Unlock()
		return nil
	}
	// Bytes written from here on make the log dirty again, and get a
	// flush of their own.
	l.dirty = false
	seg, retired, dirNew := l.seg, l.retired, l.dirNew
	l.retired, l.dirNew = nil, false
	l.wmu.Unlock()

	err = syncAndClose(retired)
	if seg != nil {
		if serr := syncData(seg); serr != nil && err == nil {
			err = serr
		}
	}
	if dirNew && err == nil {
		err = syncDir(l.dir)
	}
	// After a failed flush, what the kernel dropped is in no durable
	// file, and a later fdatasync of the same file says nothing of it
	// (Linux reports a writeback error once): nothing is published as
	// flushed until a snapshot has written everything again (health.go).
	since, _, _ := l.Fault()
	l.statsMu.Lock()
	l.stats.Flushes++
	if err == nil && since.IsZero() {
		l.stats.Flushed = max(l.stats.Flushed, target)
	} else if err != nil {
		l.stats.Errors++
	}
	l.statsMu.Unlock()
	if err != nil {
		err = fmt.Errorf("store: flush: %w", err)
		l.failed(err, "a background flush failed: the last changes may not survive a power cut")
		// Never go on writing where a flush failed: what the kernel
		// dropped there would read as damage at replay.
		l.wmu.Lock()
		if l.seg == seg {
			l.segBroken = true
		}
		if dirNew {
			l.dirNew = true
		}
		l.wmu.Unlock()
	}
	return err
}

// retire hands a finished segment to the flusher. The caller holds wmu.
func (l *Log) retire(f *os.File) {
	l.retired = append(l.retired, f)
	l.markDirty()
}

// flushRetired syncs and closes every retired segment, and the directory
// if a segment was created since the last flush: Close's last flush, once
// the current segment is finished too. The caller holds wmu.
func (l *Log) flushRetired() error {
	err := syncAndClose(l.retired)
	l.retired = nil
	if l.dirNew && err == nil {
		err = syncDir(l.dir)
	}
	l.dirNew = false
	l.statsMu.Lock()
	if err == nil {
		l.stats.Flushed = l.stats.Bytes
	} else {
		l.stats.Errors++
	}
	l.statsMu.Unlock()
	if err != nil {
		return fmt.Errorf("store: flush: %w", err)
	}
	return nil
}

func syncAndClose(files []*os.File) error {
	var err error
	for _, f := range files {
		if serr := syncData(f); serr != nil && err == nil {
			err = serr
		}
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}
