package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// health tracks an episode of state that is not durable: writes failing
// (a full or broken disk) or a directory that vanished. It starts with
// the first failure, logged once as an ERROR with its cause, and ends
// only when a snapshot of everything the owner holds is written with no
// failure since (Compact), since records that failed meanwhile exist only
// in the owner's memory.
type health struct {
	mu       sync.Mutex
	since    time.Time // zero: durable
	cause    error
	failed   uint64 // failures in this episode
	failures uint64 // failures since Open
}

// Fault says since when the state is not durable, and why (a zero time
// when it is), and how many writes failed since.
func (l *Log) Fault() (since time.Time, failed uint64, cause error) {
	l.health.mu.Lock()
	defer l.health.mu.Unlock()
	return l.health.since, l.health.failed, l.health.cause
}

// NotDurable is the open episode as an error (wrapping its cause), nil
// when the state is durable.
func (l *Log) NotDurable() error {
	since, _, cause := l.Fault()
	if since.IsZero() {
		return nil
	}
	return fmt.Errorf("state not durable since %s: %w", since.UTC().Format(time.RFC3339), cause)
}

// failed records a failure; the first of an episode is logged.
func (l *Log) failed(err error, what string) {
	h := &l.health
	h.mu.Lock()
	first := h.since.IsZero()
	if first {
		h.since, h.cause, h.failed = time.Now(), err, 0
	}
	h.failed++
	h.failures++
	h.mu.Unlock()
	if first {
		l.log.Error("store: state not durable: "+what+"; calls are served from memory, and everything is written again (a snapshot) as soon as the disk takes it",
			"dir", l.dir, "err", err)
	} else {
		l.log.Debug("store: "+what, "err", err)
	}
}

func (l *Log) failureCount() uint64 {
	l.health.mu.Lock()
	defer l.health.mu.Unlock()
	return l.health.failures
}

// healed ends the episode after a snapshot, unless something failed after
// failuresAt (when the snapshot began): that record may be in no file.
func (l *Log) healed(failuresAt uint64, records uint64) {
	h := &l.health
	h.mu.Lock()
	if h.since.IsZero() || h.failures != failuresAt {
		h.mu.Unlock()
		return
	}
	since, failed := h.since, h.failed
	h.since, h.cause, h.failed = time.Time{}, nil, 0
	h.mu.Unlock()
	l.log.Info("store: state durable again: everything held in memory written in a snapshot",
		"dir", l.dir, "records", records, "not_durable_for", time.Since(since).Round(time.Millisecond), "failed_writes", failed)
}

// Vanished reports whether the directory, or the segment being written,
// is no longer where it was (an operator's rm -rf, a cleanup job): what
// is written into the open file is then in no file a start would read.
func (l *Log) Vanished() bool {
	l.wmu.Lock()
	seg, seq := l.seg, l.segSeq
	var open os.FileInfo
	var err error
	if seg != nil {
		open, err = seg.Stat()
	}
	l.wmu.Unlock()
	if seg == nil || err != nil {
		return false
	}
	named, err := os.Stat(filepath.Join(l.dir, segName(seq)))
	return err != nil || !os.SameFile(open, named)
}

// Recreate makes a vanished directory again and locks it; the state is
// not durable until the next Compact writes a snapshot into it.
func (l *Log) Recreate() error {
	l.failed(fmt.Errorf("state directory %s or its segment was removed", l.dir), "state directory vanished")
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmt.Errorf("store: recreate %s: %w", l.dir, err)
	}
	lockf, err := lockDir(filepath.Join(l.dir, lockName))
	if err != nil {
		return fmt.Errorf("store: recreate %s: %w", l.dir, err)
	}
	l.compactMu.Lock() // Close releases the lock under compactMu too
	old := l.lockf
	l.lockf = lockf
	l.compactMu.Unlock()
	old.Close()
	return nil
}
