package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// Snapshot: magic | base seq u64 | record count u64 | crc32c of those 24
// bytes | frames of puts. base is the first segment to replay on top.
var snapMagic = []byte("CCSNP\x00\x00\x01")

// Each record is a frame of its own: a damaged byte loses that record
// only (replaySnapshot skips to the next good frame), for 8 bytes each.
const snapHeader = 28

// loadSnapshot hands the snapshot's records to apply as it reads them, a
// chunk of the file at a time: the file is never in memory whole.
func (l *Log) loadSnapshot(apply func(Replayed)) (base uint64, haveBase bool, err error) {
	name := filepath.Join(l.dir, snapName)
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("store: %w", err)
	}
	w := &window{f: f, size: st.Size()}
	h, err := w.at(0, snapHeader)
	if err != nil {
		return 0, false, err
	}
	if len(h) < snapHeader || string(h[:8]) != string(snapMagic) ||
		binary.LittleEndian.Uint32(h[24:]) != crc32.Checksum(h[:24], castagnoli) {
		l.log.Error("store: snapshot header damaged, snapshot ignored: the records only it held are lost; replaying the segments that exist",
			"file", name, "size", w.size)
		return 0, false, nil
	}
	base = binary.LittleEndian.Uint64(h[8:])
	count := binary.LittleEndian.Uint64(h[16:])
	restored, skipped, err := replaySnapshot(w, snapHeader, apply)
	if err != nil {
		return 0, false, err
	}
	switch {
	case len(skipped) > 0:
		var bytes int64
		for _, r := range skipped {
			bytes += r[1] - r[0]
		}
		l.log.Error("store: snapshot damaged: the records in the damaged parts are lost, all others restored",
			"file", name, "lost_records", int64(count)-int64(restored), "restored", restored, "expected", count,
			"damaged_parts", len(skipped), "damaged_bytes", bytes, "first_damage_at", skipped[0][0])
	case restored != count:
		l.log.Error("store: snapshot record count mismatch: records lost", "file", name,
			"lost_records", int64(count)-int64(restored), "restored", restored, "expected", count)
	}
	return base, true, nil
}

// Compact starts a new segment, then calls dump, which must call put for
// every live record (the owner iterates its table under its own lock), and
// writes the snapshot atomically; then deletes the segments it covers.
// Ops applied after the rotation land in the new segment and replay on top
// of the snapshot. put copies its arguments.
func (l *Log) Compact(dump func(put func(key string, v []byte))) error {
	l.compactMu.Lock()
	defer l.compactMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	failuresAt := l.failureCount()
	req := rotReq{reply: make(chan rotResult, 1)}
	select {
	case l.rot <- req:
	case <-l.done:
		return ErrClosed
	}
	res := <-req.reply
	if res.err != nil {
		return res.err
	}
	base := res.seq

	count, err := l.writeSnapshot(base, func(put func(key string, v []byte)) {
		dump(put)
		// The snapshot replaces the segments before base: what was
		// written since the rotation must be as durable as it is before
		// it does. A change made during the dump may be in the snapshot
		// only by its absence (a call ended before the walk reached it,
		// its debit left to the log after base): a power cut that kept
		// the snapshot and lost that log would lose both. A failed flush
		// is recorded (failed); the snapshot still goes on, as it is
		// what heals the state then.
		_ = l.flush()
	})
	if err != nil {
		return err
	}
	l.removeSegmentsBefore(base)
	l.statsMu.Lock()
	l.stats.Compactions++
	l.stats.SnapRecords = int(count)
	l.statsMu.Unlock()
	l.log.Info("store: snapshot written", "records", count, "segment", base)
	l.healed(failuresAt, count)
	return nil
}

// snapChunk is how much of a snapshot is built in memory before it is
// written: a snapshot of a million sessions is some 250 MB, which built
// whole (and doubled on its way by append) was the daemon's biggest
// allocation.
const snapChunk = 1 << 20

// writeSnapshot writes the records dump puts as the snapshot following
// segment base, a chunk at a time, and replaces the snapshot so that a
// crash at any point leaves either the old one or the new one, complete.
// It returns the records written.
func (l *Log) writeSnapshot(base uint64, dump func(put func(key string, v []byte))) (count uint64, err error) {
	tmp := filepath.Join(l.dir, snapTmpName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	buf := make([]byte, snapHeader, snapChunk+snapChunk/4) // the header is written last, in place
	var werr error
	dump(func(key string, v []byte) {
		var start int
		buf, start = beginFrame(buf)
		buf = appendOp(buf, Put(key, v))
		buf = endFrame(buf, start)
		count++
		if len(buf) >= snapChunk {
			if werr == nil {
				_, werr = f.Write(buf)
			}
			buf = buf[:0]
		}
	})
	err = werr
	if err == nil {
		_, err = f.Write(buf)
	}
	if err == nil {
		var h [snapHeader]byte
		copy(h[:], snapMagic)
		binary.LittleEndian.PutUint64(h[8:], base)
		binary.LittleEndian.PutUint64(h[16:], count)
		binary.LittleEndian.PutUint32(h[24:], crc32.Checksum(h[:24], castagnoli))
		_, err = f.WriteAt(h[:], 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(l.dir, snapName))
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	return count, nil
}

func (l *Log) removeSegmentsBefore(base uint64) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		l.log.Warn("store: listing segments", "err", err)
		return
	}
	for _, e := range ents {
		if seq, ok := parseSegName(e.Name()); ok && seq < base {
			if err := os.Remove(filepath.Join(l.dir, e.Name())); err != nil {
				l.log.Warn("store: cannot remove old segment", "file", e.Name(), "err", err)
			}
		}
	}
}
