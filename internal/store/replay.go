package store

import (
	"fmt"
	"os"
)

// Replayed is one op found by the replay at Open, handed over in the
// order the log applies them: the snapshot's records, then each segment's
// ops, then the ring's. The last op of a key is its state. Key and Value
// alias a buffer that is reused once the call returns: copy what is kept.
type Replayed struct {
	Key, Value []byte
	Delete     bool
}

// window reads a file through a buffer of about snapChunk bytes, so that
// a snapshot of a million records (some 250 MB) is never in memory whole:
// the owner decodes each record as it is read instead of keeping the file
// and a map of its records beside what it decodes.
type window struct {
	f     *os.File
	size  int64  // of the file
	buf   []byte // the file's bytes from start
	start int64
	chunk int // bytes read at a time; 0 is snapChunk
}

// at returns the file's bytes [off, off+n), fewer where the file ends
// first. They are valid until the next call. A frame bigger than the
// buffer grows it; going back before the buffer reads again.
func (w *window) at(off int64, n int) ([]byte, error) {
	n = int(min(int64(n), w.size-off))
	if off >= w.start && off+int64(n) <= w.start+int64(len(w.buf)) {
		return w.buf[off-w.start:][:n], nil
	}
	chunk := w.chunk
	if chunk <= 0 {
		chunk = snapChunk
	}
	want := int(min(int64(max(n, chunk)), w.size-off))
	kept := 0
	if off >= w.start && off < w.start+int64(len(w.buf)) {
		rest := w.buf[off-w.start:]
		if cap(w.buf) < want {
			w.buf = append(make([]byte, 0, want), rest...)
		} else {
			w.buf = w.buf[:copy(w.buf[:cap(w.buf)], rest)]
		}
		kept = len(w.buf)
	} else if cap(w.buf) < want {
		w.buf = make([]byte, 0, want)
	}
	w.buf, w.start = w.buf[:want], off
	if _, err := w.f.ReadAt(w.buf[kept:], off+int64(kept)); err != nil {
		w.buf = w.buf[:0]
		return nil, fmt.Errorf("store: %w", err)
	}
	return w.buf[:n], nil
}

// frameAt returns the frame at off as readFrame sees it: the bytes from
// off up to the end of the frame its header announces, or only the
// header when the length is impossible, or what the file has left.
func (w *window) frameAt(off int64) ([]byte, error) {
	hdr, err := w.at(off, frameHeader)
	if err != nil || len(hdr) < frameHeader {
		return hdr, err
	}
	n := uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16 | uint32(hdr[3])<<24
	if n == 0 || n > maxFrame {
		return hdr, nil
	}
	return w.at(off, frameHeader+int(n))
}

// applyOps hands the ops of one payload to apply, all or none: a
// malformed payload changes nothing.
func applyOps(payload []byte, scratch []rawOp, apply func(Replayed)) ([]rawOp, error) {
	scratch, err := decodeOps(scratch[:0], payload)
	if err != nil {
		return scratch, err
	}
	for _, op := range scratch {
		apply(Replayed{Key: op.key, Value: op.value, Delete: op.kind == opDelete})
	}
	return scratch, nil
}
