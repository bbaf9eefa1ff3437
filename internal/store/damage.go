package store

// replaySnapshot hands the snapshot's records from off on to apply, a
// frame at a time as w reads them, skipping damaged frames: each frame
// is a self-contained set of puts, so one damaged frame loses only its
// own records. After a bad frame the next good one is found from the bad
// frame's own length when that still leads to a good frame, else by
// scanning forward for a frame whose length and checksum hold. It
// returns the records handed over and the byte ranges skipped; an error
// only when the file cannot be read.
func replaySnapshot(w *window, off int64, apply func(Replayed)) (records uint64, skipped [][2]int64, err error) {
	var scratch []rawOp
	counted := func(r Replayed) {
		records++
		apply(r)
	}
	for off < w.size {
		b, err := w.frameAt(off)
		if err != nil {
			return records, skipped, err
		}
		payload, size, ferr := readFrame(b)
		if ferr == nil {
			if scratch, ferr = applyOps(payload, scratch, counted); ferr == nil {
				off += int64(size)
				continue
			}
		}
		next, err := resync(w, off)
		if err != nil {
			return records, skipped, err
		}
		skipped = append(skipped, [2]int64{off, next})
		off = next
	}
	return records, skipped, nil
}

// resync returns the offset of the first good frame after the bad one at
// off, or the file's size when there is none.
func resync(w *window, off int64) (int64, error) {
	hdr, err := w.at(off, frameHeader)
	if err != nil {
		return 0, err
	}
	if len(hdr) >= frameHeader {
		// Only the payload damaged: the header's length skips it.
		if n := int64(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16 | uint32(hdr[3])<<24); n > 0 && n <= maxFrame {
			if next := off + frameHeader + n; next < w.size {
				if ok, err := goodFrame(w, next); ok || err != nil {
					return next, err
				}
			}
		}
	}
	for p := off + 1; p+frameHeader <= w.size; p++ {
		if ok, err := goodFrame(w, p); ok || err != nil {
			return p, err
		}
	}
	return w.size, nil
}

// goodFrame reports whether the file has at off a frame whose length fits
// in the file and whose checksum and payload hold. The length is checked
// before the frame is read and its checksum computed, so scanning garbage
// is cheap.
func goodFrame(w *window, off int64) (bool, error) {
	hdr, err := w.at(off, frameHeader)
	if err != nil || len(hdr) < frameHeader {
		return false, err
	}
	n := int64(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16 | uint32(hdr[3])<<24)
	if n == 0 || n > w.size-off-frameHeader || n > maxFrame {
		return false, nil
	}
	b, err := w.at(off, frameHeader+int(n))
	if err != nil {
		return false, err
	}
	payload, _, ferr := readFrame(b)
	if ferr != nil {
		return false, nil
	}
	_, ferr = decodeOps(nil, payload)
	return ferr == nil, nil
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
