package store

// replaySnapshot applies the snapshot's frames to live, skipping damaged
// ones: each frame is a self-contained set of puts, so one damaged frame
// loses only its own records. After a bad frame the next good one is found
// from the bad frame's own length when that still leads to a good frame,
// else by scanning forward for a frame whose length and checksum hold. It
// returns the byte ranges skipped.
func replaySnapshot(b []byte, live map[string][]byte) (skipped [][2]int) {
	var scratch []rawOp
	off := 0
	for off < len(b) {
		var n int
		var err error
		scratch, n, err = replayFrames(b[off:], scratch, live)
		off += n
		if err == nil {
			return skipped
		}
		next := resync(b, off)
		skipped = append(skipped, [2]int{off, next})
		off = next
	}
	return skipped
}

// resync returns the offset of the first good frame after the bad one at
// off, or len(b) when there is none.
func resync(b []byte, off int) int {
	if len(b)-off >= frameHeader {
		// Only the payload damaged: the header's length skips it.
		if n := int(uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24); n > 0 && n <= maxFrame {
			if next := off + frameHeader + n; next < len(b) && goodFrame(b[next:]) {
				return next
			}
		}
	}
	for p := off + 1; p+frameHeader <= len(b); p++ {
		if goodFrame(b[p:]) {
			return p
		}
	}
	return len(b)
}

// goodFrame reports whether b starts with a frame whose length fits in b
// and whose checksum and payload hold. The length is checked before the
// checksum is computed, so scanning garbage is cheap.
func goodFrame(b []byte) bool {
	if len(b) < frameHeader {
		return false
	}
	n := uint64(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	if n == 0 || n > uint64(len(b)-frameHeader) || n > maxFrame {
		return false
	}
	payload, _, err := readFrame(b)
	if err != nil {
		return false
	}
	_, err = decodeOps(nil, payload)
	return err == nil
}

// reportMissing logs the files the directory says should exist but do
// not: segments start at the snapshot's base (or at 1 without a snapshot),
// and Compact removes only the segments below the base, so an oldest
// segment above that means the snapshot or the first segments are gone,
// with their records.
func (l *Log) reportMissing(segs []uint64, base uint64, haveBase bool) {
	want := uint64(1)
	if haveBase {
		want = base
	}
	first := uint64(0)
	for _, seq := range segs {
		if seq >= want {
			first = seq
			break
		}
	}
	switch {
	case first == 0 || first == want:
	case !haveBase:
		l.log.Error("store: snapshot missing: the oldest segment is "+segName(first)+", so the ones before it were compacted into a snapshot that is gone; the records only it held are lost",
			"dir", l.dir, "oldest_segment", segName(first))
	default:
		l.log.Error("store: segments missing: the snapshot goes up to "+segName(base)+" but the oldest segment is "+segName(first)+"; the records written in between are lost",
			"dir", l.dir, "missing_from", segName(base), "missing_to", segName(first-1))
	}
}
