package session

import (
	"runtime"
	"sort"
	"time"
)

// Listings (debug show: sessions, callcontrol sessions, accounting's
// tracked calls, stats) never hold the lock the proxy path takes for work
// that grows with the table: they copy it in bounded chunks, letting go of
// the lock between them.
const (
	listChunk = 256           // sessions copied per hold of the lock
	scanChunk = 4 * listChunk // entries looked at per hold (holes included)
	// listRest: a listing sleeps as long as it worked each time it has
	// worked this long. 0, a rest after every chunk, kept the proxy's p99
	// at 2-3 ms with four clients listing 100,000 sessions in a loop;
	// 200-500 us gave 7 ms, with more listings served (BENCHMARKS.md).
	listRest = 0
)

// orderEntry is one slot of the table in the order sessions were added;
// s is nil once the session is gone.
type orderEntry struct {
	seq uint64
	s   *Session
}

// order lists the table by a sequence number given at addition, so a walk
// can resume after the last number it saw: a session that stays in the
// table for a whole walk is seen exactly once, whatever is added or removed
// meanwhile. It is kept in blocks of orderBlockSize entries, each sorted by
// number: removal leaves a hole, a block half holes is squeezed, an empty
// one dropped (the last one is emptied in place: it takes the additions).
// Every change costs at most one block's work (and a move of
// the blocks' pointers, a thousandth of the table), never a pass over the
// table: the proxy's requests change it under the manager's lock.
type order struct {
	last   uint64
	blocks []*orderBlock
	live   int // sessions listed
}

const orderBlockSize = 1024

type orderBlock struct {
	entries []orderEntry // at most orderBlockSize, sorted by seq
	live    int          // entries that are not holes
}

func (o *order) add(s *Session) {
	o.last++
	s.seq = o.last
	n := len(o.blocks)
	if n == 0 || len(o.blocks[n-1].entries) == orderBlockSize {
		o.blocks = append(o.blocks, &orderBlock{entries: make([]orderEntry, 0, orderBlockSize)})
		n++
	}
	b := o.blocks[n-1]
	b.entries = append(b.entries, orderEntry{seq: o.last, s: s})
	b.live++
	o.live++
}

func (o *order) remove(s *Session) {
	bi, i := o.find(s.seq)
	if bi == len(o.blocks) {
		return
	}
	b := o.blocks[bi]
	if i == len(b.entries) || b.entries[i].s != s {
		return
	}
	b.entries[i].s = nil
	b.live--
	o.live--
	last := bi == len(o.blocks)-1
	switch {
	case b.live == 0 && !last:
		o.dropBlock(bi)
	case b.live == 0:
		// The last block takes the additions: its array is kept, so a
		// table of short calls allocates nothing per call.
		clear(b.entries)
		b.entries = b.entries[:0]
	case 2*b.live < len(b.entries) && (!last || len(b.entries)-b.live >= orderSqueezeMin):
		o.squeeze(bi)
	}
}

// orderSqueezeMin is how many holes the last block gathers before it is
// squeezed (in place): a pass over it per that many removals.
const orderSqueezeMin = 64

// squeeze rewrites block bi without its holes, together with the block
// after it when both fit in one: a block of a few long calls among short
// ones neither keeps its array of holes nor stays a block of its own.
func (o *order) squeeze(bi int) {
	b := o.blocks[bi]
	if bi == len(o.blocks)-1 {
		kept := appendLive(b.entries[:0], b.entries) // in place: kept never passes the entry read
		clear(b.entries[len(kept):])
		b.entries = kept
		return
	}
	var next *orderBlock
	if bi+1 < len(o.blocks) && b.live+o.blocks[bi+1].live <= orderBlockSize {
		next = o.blocks[bi+1]
	}
	live := b.live
	if next != nil {
		live += next.live
	}
	size := live
	if next != nil && bi+1 == len(o.blocks)-1 {
		size = orderBlockSize // the last block takes the additions
	}
	entries := appendLive(make([]orderEntry, 0, size), b.entries)
	if next != nil {
		entries = appendLive(entries, next.entries)
		o.dropBlock(bi + 1)
	}
	b.entries, b.live = entries, live
}

func appendLive(to, from []orderEntry) []orderEntry {
	for _, e := range from {
		if e.s != nil {
			to = append(to, e)
		}
	}
	return to
}

func (o *order) dropBlock(bi int) {
	o.blocks = append(o.blocks[:bi], o.blocks[bi+1:]...)
	o.blocks[:len(o.blocks)+1][len(o.blocks)] = nil // keep no pointer past the end
}

// find returns where the first entry numbered seq or later is: its block
// and its index there; len(o.blocks) if there is none.
func (o *order) find(seq uint64) (block, i int) {
	// The first block whose last entry is numbered seq or later.
	block = sort.Search(len(o.blocks), func(k int) bool {
		e := o.blocks[k].entries
		return len(e) == 0 || e[len(e)-1].seq >= seq // only the last block can be empty
	})
	if block == len(o.blocks) {
		return block, 0
	}
	e := o.blocks[block].entries
	return block, sort.Search(len(e), func(k int) bool { return e[k].seq >= seq })
}

// Walk calls f, outside the lock, for a copy of every session: the table
// is copied listChunk sessions at a time. A session in the table for the
// whole walk is seen once; one added or removed meanwhile may or may not
// be. gone, when not nil, is asked between chunks: true (the asker went
// away) ends the walk, and Walk returns false. One listing runs at a time,
// so listings in a loop take at most one core from the proxy's requests.
func (m *Manager) Walk(gone func() bool, f func(s *Session)) bool {
	if !m.acquireListing(gone) {
		return false
	}
	defer m.releaseListing()
	return m.eachCopy(gone, f)
}

// eachCopy calls f, outside the lock, for a copy of every session, copied
// listChunk sessions at a time (Walk and Each).
func (m *Manager) eachCopy(gone func() bool, f func(s *Session)) bool {
	return m.eachCopyIn(&m.order, gone, f)
}

// eachCopyIn is eachCopy over the sessions listed in o.
func (m *Manager) eachCopyIn(o *order, gone func() bool, f func(s *Session)) bool {
	buf := make([]Session, 0, listChunk)
	return m.eachChunkedIn(o, gone, func(s *Session) {
		buf = append(buf, *s)
		buf[len(buf)-1].timerAt = 0
	}, func() {
		for i := range buf {
			f(&buf[i])
		}
		buf = buf[:0]
	})
}

// Brief is what a listing of one line per session shows of it.
type Brief struct {
	CallID, Party, RURI string
	InProgress          bool
}

// WalkBrief is Walk for listings of one line per session (debug show:
// sessions): under the lock only a Brief is copied, listChunk sessions at
// a time, and f gets each chunk outside it, so the lock is held for a
// small part of the listing's work. f must keep no reference to the chunk
// (it is reused). It returns false when gone ended the walk.
func (m *Manager) WalkBrief(gone func() bool, f func(chunk []Brief)) bool {
	if !m.acquireListing(gone) {
		return false
	}
	defer m.releaseListing()
	chunk := make([]Brief, 0, listChunk)
	return m.eachChunked(gone, func(s *Session) {
		chunk = append(chunk, Brief{s.CallID, s.Party, s.RURI, s.InProgress()})
	}, func() {
		f(chunk)
		clear(chunk) // keep no strings of sessions gone meanwhile
		chunk = chunk[:0]
	})
}

// Len is how many sessions the table holds.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// Each calls f, outside the lock, for a copy of every session, copied in
// chunks as Walk does but without waiting for the listing slot: the
// journal's snapshot, which must not wait behind operators' listings. As
// with Walk, a session added, changed or removed meanwhile may be seen in
// either state or not at all: the snapshot is taken after the log's
// rotation, so every such change is also in the log it replays on top.
func (m *Manager) Each(f func(s *Session)) { m.eachCopy(nil, f) }

// acquireListing waits for the one listing slot, giving up when gone says
// the asker went away meanwhile.
func (m *Manager) acquireListing(gone func() bool) bool {
	select {
	case m.listing <- struct{}{}:
		return true
	default:
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case m.listing <- struct{}{}:
			return true
		case <-t.C:
			if gone != nil && gone() {
				return false
			}
		}
	}
}

func (m *Manager) releaseListing() { <-m.listing }

// eachChunked calls visit for each session under the lock, at most
// listChunk sessions (scanChunk slots) per hold of it, and flush (when not
// nil) outside the lock after each chunk. visit must only copy what it
// needs and keep no pointer. gone is asked between chunks; true ends the
// walk early and eachChunked returns false.
func (m *Manager) eachChunked(gone func() bool, visit func(s *Session), flush func()) bool {
	return m.eachChunkedIn(&m.order, gone, visit, flush)
}

// eachChunkedIn is eachChunked over the sessions listed in o, an order the
// manager's lock guards.
func (m *Manager) eachChunkedIn(o *order, gone func() bool, visit func(s *Session), flush func()) bool {
	next := uint64(1)
	var worked time.Duration
	for {
		if gone != nil && gone() {
			return false
		}
		began := time.Now()
		m.mu.Lock()
		blocks := o.blocks
		bi, i := o.find(next)
		for scanned, visited := 0, 0; bi < len(blocks) && visited < listChunk && scanned < scanChunk; {
			if i >= len(blocks[bi].entries) { // past a block's end, or the last block empty
				bi, i = bi+1, 0
				continue
			}
			e := blocks[bi].entries[i]
			next = e.seq + 1
			if e.s != nil {
				visit(e.s)
				visited++
			}
			i, scanned = i+1, scanned+1
		}
		done := bi >= len(blocks)
		m.mu.Unlock()
		if flush != nil {
			flush()
		}
		if done {
			return true
		}
		if worked += time.Since(began); flush != nil && worked >= listRest {
			// A listing (it has output to write) rests as long as it
			// worked: listings in a loop take at most half a core, and
			// the proxy's requests find the processor free.
			time.Sleep(worked)
			worked = 0
		} else {
			runtime.Gosched() // let the proxy's requests in between chunks
		}
	}
}
