package store

import (
	"fmt"
	"os"
	"time"
)

// The interval flush (Options.NoSync with Options.FlushEvery): writers copy
// their frames into the mapped segment and return, as with NoSync, and a
// background flusher makes what they wrote durable (fdatasync) at most
// FlushEvery after the first write it has not flushed yet. No writer ever
// waits for the disk; a power cut loses at most the last FlushEvery of
// changes (plus one fdatasync's time when the disk is slower than that).
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
	select {
	case l.flushKick <- struct{}{}:
	default:
	}
}

// flushLoop is the flusher goroutine: started by Open, stopped by Close
// (which then flushes what is left itself).
func (l *Log) flushLoop() {
	defer close(l.flushDone)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-l.flushKick:
		case <-l.flushStop:
			return
		}
		l.wmu.Lock()
		since, dirty := l.dirtySince, l.dirty
		l.wmu.Unlock()
		if !dirty {
			continue // flushed meanwhile (Flush)
		}
		if wait := time.Until(since.Add(l.opts.FlushEvery)); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-l.flushStop:
				t.Stop()
				return
			}
		}
		l.flush()
	}
}

// Flush makes every batch whose Wait has returned durable, and returns
// once it is. With the interval flush it flushes now instead of waiting
// for the interval (the debit spool does this before sending a debit:
// a debit must never leave while the record of it could still be lost).
// With fsync (the default Options) every Wait is durable already; with
// NoSync alone nothing is ever flushed and Flush does nothing.
func (l *Log) Flush() error {
	if !l.flushing() {
		return nil
	}
	return l.flush()
}

// flush fdatasyncs the retired segments and the current one, and the
// directory when a segment was created since the last flush; it then
// publishes the written position it started from as flushed. Concurrent
// flushes are serialised: one that finds everything flushed returns at
// once.
func (l *Log) flush() error {
	l.fmu.Lock()
	defer l.fmu.Unlock()
	l.wmu.Lock()
	l.statsMu.Lock()
	target := l.stats.Bytes
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
	mm, off, gen := l.mm, l.mmOff, l.mapGen
	l.wmu.Unlock()

	err := syncAndClose(retired)
	if seg != nil {
		if serr := syncData(seg); serr != nil && err == nil {
			err = serr
		}
	}
	if dirNew && err == nil {
		err = syncDir(l.dir)
	}
	if mm != nil {
		l.prefaultAhead(mm, off, gen, target)
	}
	l.statsMu.Lock()
	l.stats.Flushes++
	if err == nil {
		l.stats.Flushed = max(l.stats.Flushed, target)
	} else {
		l.stats.Errors++
	}
	l.statsMu.Unlock()
	if err != nil {
		err = fmt.Errorf("store: flush: %w", err)
		l.log.Error("store: background flush failed: the last changes may not survive a power cut", "err", err)
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

// prefaultAhead readies the pages writers will copy into next: the one at
// off, which the flush just cleaned (the next store into it would fault
// to mark it dirty again), and those after it, about as many bytes as
// were written since the last flush. Faults there can wait for the
// filesystem's journal, which the flush keeps busy; taken here, they keep
// the proxy's path off it. mm is skipped if a rotation unmapped it since.
func (l *Log) prefaultAhead(mm []byte, off int, gen, written uint64) {
	const page = 4096
	ahead := min(max(int(written-l.prefaultedAt), 64<<10), 1<<20)
	l.prefaultedAt = written
	from, to := off&^(page-1), min(off+ahead, len(mm))
	if from >= to {
		return
	}
	l.mapMu.Lock()
	if l.mapGen == gen {
		prefault(mm[from:to])
	}
	l.mapMu.Unlock()
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
