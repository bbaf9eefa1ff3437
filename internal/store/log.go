package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one change: a Put of a whole value, or a Delete.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Put returns an op that sets key to v.
func Put(key string, v []byte) Op { return Op{Key: key, Value: v} }

// Delete returns an op that removes key.
func Delete(key string) Op { return Op{Key: key, Delete: true} }

// Options tune a Log. The zero value is the safe default.
type Options struct {
	// NoSync skips fsync after each group (tests, or a machine where losing
	// the last moments before a power cut is acceptable). Kill -9 is
	// survived either way: every group is in the page cache (the ring's,
	// or the segment's) before Wait returns.
	NoSync bool
	// FlushEvery, with NoSync, bounds how long a written batch may stay
	// out of the disk: a background flusher fdatasyncs the log at most
	// this long after the first write it has not flushed (see flush.go).
	// Writers still never wait for the disk.
	FlushEvery time.Duration
	// MaxBatch caps the bytes one group write carries (default 1 MiB); a
	// larger backlog is written as several groups.
	MaxBatch int
	// OnSync, when set, is told each fsync's latency (a metrics histogram),
	// on the writer goroutine: it must be quick and never block.
	OnSync func(time.Duration)
	// RingSize is the data size of the ring a NoSync log acknowledges
	// batches in (ring.go); 0 is DefaultRingSize.
	RingSize int
}

// ErrClosed is returned for ops applied after Close.
var ErrClosed = errors.New("store: log closed")

// ErrPending is what WaitUntil returns when its deadline passes before the
// batch is durable. The batch is still written, in order. Its Timeout
// method says true, as net.Error's does.
var ErrPending error = pendingError{}

type pendingError struct{}

func (pendingError) Error() string { return "store: not durable yet (the disk is slow)" }
func (pendingError) Timeout() bool { return true }

// Stats describe the log since Open.
type Stats struct {
	Records     uint64        // ops written
	Batches     uint64        // Apply calls written
	Groups      uint64        // write()+fsync() rounds
	Bytes       uint64        // bytes written to segments
	Errors      uint64        // failed group writes or syncs
	LastSync    time.Duration // latency of the last fsync
	MaxSync     time.Duration
	Segment     uint64 // current segment number
	Compactions uint64
	SnapRecords int // records in the last snapshot written
	// Failing is true while the last group write or sync failed: replies
	// wait on a log that is not durable.
	Failing bool
	// Flushed is how many of Bytes are known durable: all of them after
	// each group with fsync, the flusher's progress with FlushEvery, none
	// with NoSync alone.
	Flushed uint64
	Flushes uint64 // background flushes (FlushEvery) and Flush calls that synced
}

// Commit is the durability of one Apply (shared by every batch of the same
// group).
type Commit struct {
	log *Log // set for commits a waiter may write itself (NoSync)

	mu       sync.Mutex
	finished bool
	err      error
	// done is made only for a waiter that has to block: with NoSync the
	// waiter usually writes its own batch and never needs one, which
	// spares the proxy's path an allocation per request.
	done chan struct{}
	// written is set, and writtenC closed if made, once the batch is in
	// the page cache, before its fsync (WaitWritten).
	written  bool
	writtenC chan struct{}
}

func (c *Commit) finish(err error) {
	c.mu.Lock()
	c.err, c.finished = err, true
	if c.done != nil {
		close(c.done)
	}
	c.markWrittenLocked()
	c.mu.Unlock()
}

func (c *Commit) markWrittenLocked() {
	if !c.written && c.writtenC != nil {
		close(c.writtenC)
	}
	c.written = true
}

// WaitWritten returns once the batch is in the page cache, where a kill
// -9 of the process cannot lose it, without waiting for its fsync; or at
// by with ErrPending; or with the error that kept it from being written.
// With NoSync it is WaitUntil.
func (c *Commit) WaitWritten(by time.Time) error {
	if c.log != nil {
		return c.WaitUntil(by)
	}
	c.mu.Lock()
	if c.written {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if c.writtenC == nil {
		c.writtenC = make(chan struct{})
	}
	ch := c.writtenC
	c.mu.Unlock()
	t := time.NewTimer(time.Until(by))
	defer t.Stop()
	select {
	case <-ch:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err // nil until the fsync's outcome is known
	case <-t.C:
		return ErrPending
	}
}

func failedCommit(err error) *Commit {
	c := &Commit{}
	c.finish(err)
	return c
}

// result is the commit's error and whether it is known yet.
func (c *Commit) result() (error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err, c.finished
}

// Wait returns once the batch is on disk (written, and fsync'd unless
// NoSync), or the error that kept it from getting there.
func (c *Commit) Wait() error {
	// Without fsync a write is quick: a waiter writes what is queued
	// itself when nobody else is writing, saving the hand-off to the
	// writer goroutine and back on the proxy's path. Apply runs under its
	// caller's locks; Wait does not, so the write happens outside them.
	if l := c.log; l != nil {
		if err, ok := c.result(); ok {
			return err
		}
		if mu := l.writerMu(); mu.TryLock() {
			for l.writeNext() {
			}
			mu.Unlock()
		} else {
			// Someone is writing and may have looked at the queue
			// before this batch joined it: make sure it is taken.
			l.wakeWriter()
		}
		if err, ok := c.result(); ok {
			return err
		}
	}
	<-c.Done()
	err, _ := c.result()
	return err
}

// WaitUntil is Wait that gives up at by with ErrPending; a zero by waits
// as long as Wait. With NoSync the waiter copies its batch into the ring
// itself (or, when the ring is full, drains it), which is not bounded.
func (c *Commit) WaitUntil(by time.Time) error {
	if c.log != nil || by.IsZero() {
		return c.Wait()
	}
	if err, ok := c.result(); ok {
		return err
	}
	t := time.NewTimer(time.Until(by))
	defer t.Stop()
	select {
	case <-c.Done():
		err, _ := c.result()
		return err
	case <-t.C:
		return ErrPending
	}
}

// Done is closed when Wait would return.
func (c *Commit) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.finished {
			close(c.done)
		}
	}
	return c.done
}

type group struct {
	buf     []byte
	commit  Commit // the group's, allocated with it
	records int
	batches int
}

type rotReq struct{ reply chan rotResult }

type rotResult struct {
	seq uint64
	err error
}

// Log is an open store directory. Safe for concurrent use.
type Log struct {
	dir   string
	opts  Options
	log   *slog.Logger
	lockf *os.File

	mu     sync.Mutex
	queue  []*group
	spare  []byte
	closed bool

	wake chan struct{}
	rot  chan rotReq
	done chan struct{}
	// With NoSync, pending is set by the first batch staged or put in
	// the ring since the flusher last took them (pendingSince is when,
	// UnixNano): the flusher then wakes within its interval.
	pending      atomic.Bool
	pendingSince atomic.Int64
	// flusherAwake: the flusher looks again within its interval, so
	// writers need not wake it (flush.go).
	flusherAwake atomic.Bool

	// With NoSync, batches are acknowledged in the ring (ring.go) and
	// the flusher drains it into the segment; nil otherwise, or where
	// the ring cannot be mapped (then groups go to the segment at once).
	ring *ring
	// rmu is held by whoever appends groups to the ring: the writer
	// goroutine, or a waiter writing its own batch inline.
	rmu sync.Mutex
	// wmu is held by whoever writes to the segment or rotates: the
	// writer goroutine, or with NoSync the drain, or a waiter writing
	// inline when there is no ring. rmu comes before wmu.
	wmu sync.Mutex
	// guarded by wmu
	seg       *os.File
	segSize   int // what the next segment reserves
	segSeq    uint64
	segBroken bool
	// segCut: a write to the segment failed (NoSync): cut it back to
	// segOff, the end of its last whole frame, before the next write.
	segCut    bool
	onSegment uint64 // bytes of batches written to segments (page cache)
	// Without NoSync: frames are written at segOff into segCap bytes the
	// segment was filled with zeros to; next is the segment after it,
	// being prepared in the background.
	segOff int
	segCap int
	next   chan prepared

	statsMu sync.Mutex
	stats   Stats

	compactMu sync.Mutex
	nop       *Commit

	// The interval flusher (FlushEvery; flush.go). dirty, dirtySince,
	// retired and dirNew are guarded by wmu; fmu serialises flushes.
	dirty      bool
	dirtySince time.Time
	retired    []*os.File // finished segments not yet synced and closed
	dirNew     bool       // a segment was created since the last flush
	fmu        sync.Mutex
	flushKick  chan struct{}
	// rounds are AwaitFlush's waiters: the next flush to start takes
	// them, and Close answers those left (flush.go).
	rounds   flushRounds
	drainBuf []byte // the drain's copy of the ring's entries (under wmu)
	// beforeSync, in tests, runs on the writer between a group's write
	// and its fsync.
	beforeSync func()
	flushStop  chan struct{}
	flushDone  chan struct{}
	health     health // episodes of state that is not durable (health.go)
}

const (
	snapName    = "snapshot"
	snapTmpName = "snapshot.tmp"
	lockName    = "LOCK"
	segPrefix   = "wal-"
	segSuffix   = ".log"
)

var segMagic = []byte("CCWAL\x00\x00\x01")

func segName(seq uint64) string { return fmt.Sprintf("%s%016x%s", segPrefix, seq, segSuffix) }

func parseSegName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[len(segPrefix):len(name)-len(segSuffix)], 16, 64)
	return seq, err == nil
}

// Open is OpenReplay that returns the live set: every key's last value,
// copied.
func Open(dir string, opts Options, log *slog.Logger) (*Log, map[string][]byte, error) {
	live := make(map[string][]byte)
	l, err := OpenReplay(dir, opts, log, func(r Replayed) {
		if r.Delete {
			delete(live, string(r.Key))
		} else {
			live[string(r.Key)] = bytes.Clone(r.Value)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return l, live, nil
}

// OpenReplay locks dir (creating it 0700), replays the snapshot and the
// segments, and starts the writer. The replay hands every op it finds to
// apply, in order (Replayed), as it reads them: the owner builds its own
// table, and the files and a map of their records are never held beside
// it. Damaged files are logged and read as far as they check out; only
// I/O failures (and a dir locked by another process) are errors: then
// what apply was given is to be dropped.
func OpenReplay(dir string, opts Options, log *slog.Logger, apply func(Replayed)) (*Log, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1 << 20
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	lockf, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", dir, err)
	}
	l := &Log{
		dir: dir, opts: opts, log: log, lockf: lockf,
		wake: make(chan struct{}, 1),
		rot:  make(chan rotReq),
		done: make(chan struct{}),
		nop:  failedCommit(nil),
	}
	if opts.NoSync {
		l.flushKick = make(chan struct{}, 1)
		l.flushStop = make(chan struct{})
		l.flushDone = make(chan struct{})
	}
	maxSeq, err := l.load(apply)
	if err != nil {
		lockf.Close()
		return nil, err
	}
	// Whatever the setting now, a ring left by a NoSync log killed in
	// this boot holds its last batches: replayed after the segments.
	fromRing, err := readRing(dir)
	if err == nil && len(fromRing) > 0 {
		if _, n, rerr := replayFrames(fromRing, nil, apply); rerr != nil {
			fromRing = fromRing[:n] // cannot happen: each entry was checked
		}
	}
	// Always write to a fresh segment: the last one may end in a torn frame,
	// and appending after it would hide every later record from replay.
	if err == nil {
		err = l.newSegment(maxSeq+1, len(fromRing))
	}
	if err == nil && len(fromRing) > 0 {
		// Durable before the ring is reset: they are in no segment yet.
		if _, err = l.seg.WriteAt(fromRing, int64(l.segOff)); err == nil {
			l.segOff += len(fromRing)
			if err = syncData(l.seg); err == nil {
				err = syncDir(dir)
			}
		}
		if err == nil {
			l.log.Info("store: replayed the batches a killed daemon had not yet moved from the ring to a segment", "bytes", len(fromRing))
		}
	}
	if err == nil && opts.NoSync {
		size := opts.RingSize
		if size <= 0 {
			size = DefaultRingSize
		}
		var rerr error
		if l.ring, rerr = openRing(dir, size); rerr != nil {
			l.log.Warn("store: no ring, each batch is written to the segment instead", "err", rerr)
		}
	} else if err == nil {
		if rerr := os.Remove(filepath.Join(dir, ringName)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			l.log.Warn("store: cannot remove the ring", "err", rerr)
		}
	}
	if err != nil {
		l.finishSegment()
		lockf.Close()
		return nil, err
	}
	go l.run()
	if opts.NoSync {
		go l.flushLoop()
	}
	return l, nil
}

func (l *Log) load(apply func(Replayed)) (uint64, error) {
	_ = os.Remove(filepath.Join(l.dir, snapTmpName)) // an unfinished Compact
	base, haveBase, err := l.loadSnapshot(apply)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var segs []uint64
	for _, e := range ents {
		if seq, ok := parseSegName(e.Name()); ok {
			segs = append(segs, seq)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	maxSeq := uint64(0)
	if haveBase && base > 0 {
		maxSeq = base - 1
	}
	l.reportMissing(segs, base, haveBase)
	var scratch []rawOp
	oldest := true // the oldest segment replayed is kept even when empty: it marks where the log starts (see reportMissing)
	for _, seq := range segs {
		maxSeq = max(maxSeq, seq)
		name := filepath.Join(l.dir, segName(seq))
		if haveBase && seq < base {
			// Covered by the snapshot; left over by a Compact that
			// crashed before deleting it.
			if err := os.Remove(name); err != nil {
				l.log.Warn("store: cannot remove old segment", "file", name, "err", err)
			}
			continue
		}
		buf, err := os.ReadFile(name)
		if err != nil {
			return 0, fmt.Errorf("store: %w", err)
		}
		keep := oldest
		oldest = false
		if len(buf) == 0 {
			l.log.Warn("store: segment is empty, without even its header: any records it held are lost", "file", name)
		}
		if keep && len(buf) >= len(segMagic) && string(buf[:len(segMagic)]) == string(segMagic) && allZero(buf[len(segMagic):]) {
			continue
		}
		if len(buf) == 0 || (len(buf) >= len(segMagic) && string(buf[:len(segMagic)]) == string(segMagic) && allZero(buf[len(segMagic):])) {
			// Nothing in it (each start opens a fresh segment): drop it so
			// restarts without a Compact do not pile up files.
			if err := os.Remove(name); err != nil {
				l.log.Warn("store: cannot remove empty segment", "file", name, "err", err)
			}
			continue
		}
		if len(buf) < len(segMagic) || string(buf[:len(segMagic)]) != string(segMagic) {
			l.log.Warn("store: segment has no valid header, skipped", "file", name, "size", len(buf))
			continue
		}
		var n int
		var rerr error
		scratch, n, rerr = replayFrames(buf[len(segMagic):], scratch, apply)
		// A mapped segment of a daemon that was killed ends in the zeros
		// it had reserved: its end, not damage.
		if rerr != nil && !allZero(buf[len(segMagic)+n:]) {
			l.log.Warn("store: segment damaged, records after the damage are lost",
				"file", name, "offset", len(segMagic)+n, "size", len(buf), "err", rerr)
		}
	}
	return maxSeq, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// replayFrames hands the ops of the frames in b to apply until the end or
// the first bad frame; it returns how many bytes were good.
func replayFrames(b []byte, scratch []rawOp, apply func(Replayed)) ([]rawOp, int, error) {
	off := 0
	for off < len(b) {
		payload, size, err := readFrame(b[off:])
		if err != nil {
			return scratch, off, err
		}
		if scratch, err = applyOps(payload, scratch, apply); err != nil {
			return scratch, off, err
		}
		off += size
	}
	return scratch, off, nil
}

// A segment reserves minSegment bytes, twice as much as the last one each
// time one fills, up to maxSegment (maxSyncSegment when fsyncing): a quiet
// daemon reserves little, a busy one rotates seldom.
//
// With NoSync nothing is reserved: the drain appends to the segment, and
// starts the next one when it is that size. Otherwise it is zeros
// written and fsync'd before the segment is used: fdatasync of a write
// into blocks that already exist has no file size or extent to commit,
// and takes less than half as long as after an append on ext4. Filling is
// done in the background while the segment before is in use, and a
// segment reserves at most maxSyncSegment so that filling it never holds
// the disk for long.
const (
	minSegment     = 1 << 20
	maxSegment     = 64 << 20
	maxSyncSegment = 8 << 20
	zeroChunk      = 1 << 20
)

// prepared is a segment filled in the background: seq's file, magic
// written, zeros up to size, all durable.
type prepared struct {
	seq  uint64
	f    *os.File
	size int
	err  error
}

// newSegment creates segment seq (or takes the one prepared for it) and
// makes its directory entry durable before anything is acknowledged in it.
// Without NoSync the segment reserves at least need bytes; if reserving
// fails, the segment is written without a reservation instead.
func (l *Log) newSegment(seq uint64, need int) error {
	if l.segSize == 0 {
		l.segSize = minSegment
	}
	if !l.opts.NoSync {
		if p, ok := l.takePrepared(); ok {
			if p.err == nil && p.seq == seq && p.size >= len(segMagic)+need {
				l.finishSegment()
				l.useSegment(p.f, seq, p.size)
				return nil
			}
			if p.err != nil {
				l.log.Warn("store: preparing a segment failed", "err", p.err)
			}
			if p.f != nil {
				p.f.Close()
				os.Remove(p.f.Name())
			}
		}
	}
	name := filepath.Join(l.dir, segName(seq))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("store: new segment: %w", err)
	}
	reserved := 0
	if _, err = f.Write(segMagic); err == nil && !l.opts.NoSync {
		// Filled here, with writers waiting (at open, on a Compact, or
		// when a batch outgrew what was prepared): reserve little, and
		// let the background fill the bigger segments after it.
		size := max(minSegment, len(segMagic)+need)
		if zerr := fillZeros(f, size); zerr != nil {
			l.log.Warn("store: cannot reserve the segment, appending to it instead", "err", zerr)
			err = f.Truncate(int64(len(segMagic)))
		} else {
			reserved = size
		}
	}
	if err == nil && !l.opts.NoSync {
		if err = f.Sync(); err == nil {
			err = syncDir(l.dir)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("store: new segment: %w", err)
	}
	if l.flushing() { // the flusher makes the new entry durable
		l.dirNew = true
		l.markDirty()
	}
	l.finishSegment()
	l.useSegment(f, seq, reserved)
	return nil
}

// useSegment makes f, segment seq, the one written to. reserved is the
// size it was filled with zeros to, 0 for none.
func (l *Log) useSegment(f *os.File, seq uint64, reserved int) {
	l.seg, l.segSeq, l.segBroken, l.segCut = f, seq, false, false
	l.segOff, l.segCap = len(segMagic), reserved
	if reserved == 0 {
		l.segCap = math.MaxInt // no reservation: the file grows
	}
	l.statsMu.Lock()
	l.stats.Segment = seq
	l.statsMu.Unlock()
}

// fillZeros writes zeros after the magic up to size bytes, and makes
// them durable a chunk at a time: one flush of the whole reserve would
// hold the disk, and every commit's fsync behind it, for tens of ms.
func fillZeros(f *os.File, size int) error {
	zeros := make([]byte, min(zeroChunk, size))
	for off := len(segMagic); off < size; {
		n, err := f.WriteAt(zeros[:min(len(zeros), size-off)], int64(off))
		if err != nil {
			return err
		}
		off += n
		if err := syncData(f); err != nil {
			return err
		}
	}
	return nil
}

// prepareNext starts filling the segment after the current one, once the
// current one is half used. The caller holds wmu.
func (l *Log) prepareNext() {
	if l.next != nil || l.segCap == math.MaxInt || l.segOff < l.segCap/2 {
		return
	}
	seq, size := l.segSeq+1, min(2*l.segSize, maxSyncSegment)
	ch := make(chan prepared, 1)
	l.next = ch
	go func() {
		name := filepath.Join(l.dir, segName(seq))
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err == nil {
			_, err = f.Write(segMagic)
			if err == nil {
				err = fillZeros(f, size)
			}
			if err == nil {
				err = f.Sync()
			}
			if err == nil {
				err = syncDir(l.dir)
			}
			if err != nil {
				f.Close()
				os.Remove(name)
				f = nil
			}
		}
		ch <- prepared{seq: seq, f: f, size: size, err: err}
	}()
}

// takePrepared waits for the segment being prepared, if any. The caller
// holds wmu.
func (l *Log) takePrepared() (prepared, bool) {
	if l.next == nil {
		return prepared{}, false
	}
	p := <-l.next
	l.next = nil
	return p, true
}

func (l *Log) finishSegment() error {
	if l.seg == nil {
		return nil
	}
	var err error
	if l.segCap != math.MaxInt {
		// The unused zeros go; a crash before this lands leaves them,
		// and replay reads zeros after the last frame as the end.
		err = l.seg.Truncate(int64(l.segOff))
	}
	if l.flushing() {
		l.retire(l.seg) // synced and closed by the flusher
	} else if cerr := l.seg.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		l.log.Warn("store: closing segment", "err", err)
	}
	l.seg = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Apply queues ops as one atomic batch and returns at once; Wait on the
// Commit for durability. Batches are written in the order Apply (or Stage)
// was called.
func (l *Log) Apply(ops ...Op) *Commit {
	c := l.enqueue(ops)
	l.wakeWriter()
	return c
}

// Stage is Apply for a caller that will usually Wait on the commit: with
// NoSync no goroutine is woken for it, as the waiter writes the batch
// itself, which spares the proxy's path two thread wake-ups. A staged
// batch nobody waits for is written all the same, by the flusher within
// its interval (FlushEvery, or drainEvery), if no Wait or Apply took it
// first: it wakes for that once per interval at most, when it was not
// going to wake for the ring anyway.
func (l *Log) Stage(ops ...Op) *Commit {
	c := l.enqueue(ops)
	if !l.opts.NoSync {
		l.wakeWriter()
	} else {
		l.notePending()
	}
	return c
}

func (l *Log) wakeWriter() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Log) enqueue(ops []Op) *Commit {
	if len(ops) == 0 {
		return l.nop
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return failedCommit(ErrClosed)
	}
	var g *group
	if n := len(l.queue); n > 0 && len(l.queue[n-1].buf) < l.opts.MaxBatch {
		g = l.queue[n-1]
	} else {
		g = &group{buf: l.spare[:0]}
		if l.opts.NoSync {
			g.commit.log = l
		}
		l.spare = nil
		l.queue = append(l.queue, g)
	}
	mark := len(g.buf)
	b, start := beginFrame(g.buf)
	for _, op := range ops {
		b = appendOp(b, op)
	}
	if len(b)-start-frameHeader > maxFrame {
		g.buf = b[:mark]
		l.mu.Unlock()
		return failedCommit(fmt.Errorf("store: batch larger than %d bytes", maxFrame))
	}
	g.buf = endFrame(b, start)
	g.records += len(ops)
	g.batches++
	c := &g.commit
	l.mu.Unlock()
	return c
}

// writerMu is the lock writeNext's caller holds.
func (l *Log) writerMu() *sync.Mutex {
	if l.ring != nil {
		return &l.rmu
	}
	return &l.wmu
}

// writeNext writes the oldest queued group; false when none was queued.
// The caller holds writerMu.
func (l *Log) writeNext() bool {
	l.mu.Lock()
	var g *group
	if len(l.queue) > 0 {
		g = l.queue[0]
		// Shift rather than reslice: the queue is short, and reslicing
		// would make append reallocate it every few groups.
		n := copy(l.queue, l.queue[1:])
		l.queue[n] = nil
		l.queue = l.queue[:n]
	}
	l.mu.Unlock()
	if g == nil {
		return false
	}
	if l.ring != nil {
		l.toRing(g)
	} else {
		l.write(g)
	}
	return true
}

// toRing acknowledges g once it is in the ring. When the ring has no
// room (the drain is behind a slow disk) or g is bigger than the ring,
// the ring is drained here and g written to the segment after it, in
// order. The caller holds rmu.
func (l *Log) toRing(g *group) {
	if l.ring.append(g.buf) {
		l.account(g, nil, false, 0)
		l.notePending()
		return
	}
	l.wmu.Lock()
	err := l.drain()
	if err == nil {
		err = l.writeSegment(g.buf)
	}
	l.wmu.Unlock()
	l.account(g, err, false, 0)
}

func (l *Log) rotateLocked(r rotReq) {
	l.wmu.Lock()
	r.reply <- l.rotate()
	l.wmu.Unlock()
}

func (l *Log) run() {
	defer close(l.done)
	for {
		select {
		case <-l.wake:
		case r := <-l.rot:
			l.rotateLocked(r)
			continue
		}
		for {
			select {
			case r := <-l.rot: // a steady stream of groups must not starve Compact
				l.rotateLocked(r)
			default:
			}
			mu := l.writerMu()
			mu.Lock()
			wrote := l.writeNext()
			mu.Unlock()
			if !wrote {
				l.mu.Lock()
				closing := l.closed && len(l.queue) == 0
				l.mu.Unlock()
				if closing {
					return
				}
				break
			}
		}
	}
}

func (l *Log) rotate() rotResult {
	// What the ring holds was applied before the rotation: into the
	// segment the snapshot covers. (Drained later, into the new one,
	// it would replay the same on top of the snapshot, only longer.)
	// A failed drain is retried into the new segment by the flusher.
	_ = l.drain()
	if err := l.newSegment(l.segSeq+1, 0); err != nil {
		return rotResult{err: err}
	}
	return rotResult{seq: l.segSeq}
}

func (l *Log) write(g *group) {
	var lat time.Duration
	synced := false
	err := l.writeSegment(g.buf)
	if err == nil && !l.opts.NoSync {
		g.commit.mu.Lock()
		g.commit.markWrittenLocked()
		g.commit.mu.Unlock()
		if l.beforeSync != nil {
			l.beforeSync()
		}
		t0 := time.Now()
		if err = syncData(l.seg); err != nil {
			l.segBroken = true
			err = fmt.Errorf("store: write: %w", err)
			l.failed(err, "a state write failed")
		}
		lat, synced = time.Since(t0), true
		l.prepareNext()
	}
	l.account(g, err, synced, lat)
}

// writeSegment appends b, whole frames, to the segment (its page cache),
// starting the next segment first when b does not fit. The caller holds
// wmu.
func (l *Log) writeSegment(b []byte) error {
	var err error
	if l.segCut {
		// The failed write may have left part of a frame after segOff.
		// Cut off, the segment takes writes again: a disk that stays
		// full is retried in the same file, not in a new file each time.
		l.segCut = false
		if terr := l.seg.Truncate(int64(l.segOff)); terr != nil {
			l.segBroken = true
		}
	}
	if l.segBroken {
		// Never append after a failed write: a partial frame there would
		// hide every later one from replay.
		err = l.newSegment(l.segSeq+1, len(b))
	}
	if err == nil && l.segOff+len(b) > l.segCap {
		l.segSize = min(2*l.segSize, maxSyncSegment)
		err = l.newSegment(l.segSeq+1, len(b))
	} else if err == nil && l.opts.NoSync && l.segOff > len(segMagic) && l.segOff+len(b) > l.segSize {
		l.segSize = min(2*l.segSize, maxSegment)
		err = l.newSegment(l.segSeq+1, len(b))
	}
	if err == nil {
		if _, err = l.seg.WriteAt(b, int64(l.segOff)); err == nil {
			l.segOff += len(b)
			l.onSegment += uint64(len(b))
		} else if l.opts.NoSync {
			l.segCut = true // nothing is reserved: the file ends where the write failed
		} else {
			l.segBroken = true
		}
	}
	if err != nil {
		err = fmt.Errorf("store: write: %w", err)
		l.failed(err, "a state write failed") // logged once per episode (health.go)
		return err
	}
	if l.flushing() {
		l.markDirty()
	}
	return nil
}

// account counts group g as written (or failed with err), finishes its
// commit and keeps its buffer for the next group.
func (l *Log) account(g *group, err error, synced bool, lat time.Duration) {
	l.statsMu.Lock()
	if err != nil || l.ring == nil { // with a ring, the drain says whether writes fail
		l.stats.Failing = err != nil
	}
	if err != nil {
		l.stats.Errors++
	} else {
		l.stats.Records += uint64(g.records)
		l.stats.Batches += uint64(g.batches)
		l.stats.Groups++
		l.stats.Bytes += uint64(len(g.buf))
		if synced {
			l.stats.Flushed = l.stats.Bytes
			l.stats.LastSync = lat
			l.stats.MaxSync = max(l.stats.MaxSync, lat)
		}
	}
	l.statsMu.Unlock()
	if synced && err == nil && l.opts.OnSync != nil {
		l.opts.OnSync(lat)
	}
	g.commit.finish(err)
	if cap(g.buf) <= 4*l.opts.MaxBatch {
		l.mu.Lock()
		l.spare = g.buf[:0]
		l.mu.Unlock()
	}
}

// Close writes what is queued, stops the writer and releases the directory.
// Ops applied afterwards fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
	if l.flushStop != nil { // the rest is drained and flushed below
		close(l.flushStop)
		<-l.flushDone
	}
	l.compactMu.Lock() // let a running Compact finish with the directory
	defer l.compactMu.Unlock()
	l.rmu.Lock() // let a caller writing inline finish with the ring
	defer l.rmu.Unlock()
	l.wmu.Lock() // and with the segment
	defer l.wmu.Unlock()
	err := l.drain()
	if l.seg != nil && !l.opts.NoSync {
		err = l.seg.Sync()
	}
	if cerr := l.finishSegment(); err == nil {
		err = cerr
	}
	if l.flushing() {
		if ferr := l.flushRetired(); err == nil {
			err = ferr
		}
	}
	if p, ok := l.takePrepared(); ok && p.f != nil { // never used: no records in it
		p.f.Close()
		os.Remove(p.f.Name())
	}
	if l.ring != nil {
		if cerr := l.ring.close(); err == nil {
			err = cerr
		}
	}
	l.rounds.close(err)
	if cerr := l.lockf.Close(); err == nil {
		err = cerr
	}
	return err
}

// Stats returns counters since Open.
func (l *Log) Stats() Stats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.stats
}
