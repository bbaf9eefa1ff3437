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
// meanwhile. Removal leaves a hole; holes are squeezed out once they are
// half the slice, so the work is constant per change, amortized.
type order struct {
	last    uint64
	entries []orderEntry
	holes   int
}

func (o *order) add(s *Session) {
	o.last++
	s.seq = o.last
	o.entries = append(o.entries, orderEntry{seq: o.last, s: s})
}

func (o *order) remove(s *Session) {
	i := o.find(s.seq)
	if i == len(o.entries) || o.entries[i].s != s {
		return
	}
	o.entries[i].s = nil
	o.holes++
	if o.holes > 64 && o.holes > len(o.entries)/2 {
		kept := o.entries[:0]
		for _, e := range o.entries {
			if e.s != nil {
				kept = append(kept, e)
			}
		}
		clear(o.entries[len(kept):])
		o.entries, o.holes = kept, 0
	}
}

// find returns the index of the first entry numbered seq or later.
func (o *order) find(seq uint64) int {
	return sort.Search(len(o.entries), func(i int) bool { return o.entries[i].seq >= seq })
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
	buf := make([]Session, 0, listChunk)
	return m.eachChunked(gone, func(s *Session) {
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
	next := uint64(1)
	var worked time.Duration
	for {
		if gone != nil && gone() {
			return false
		}
		began := time.Now()
		m.mu.Lock()
		entries := m.order.entries
		i := m.order.find(next)
		for scanned, visited := 0, 0; i < len(entries) && visited < listChunk && scanned < scanChunk; i, scanned = i+1, scanned+1 {
			next = entries[i].seq + 1
			if s := entries[i].s; s != nil {
				visit(s)
				visited++
			}
		}
		done := i >= len(entries)
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
