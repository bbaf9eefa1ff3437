package session

import (
	"math"
	"time"
)

// The calls' timers: one heap for the table, not a runtime timer per call.
// A runtime timer with its function cost about 150 bytes per call, a fifth
// of a session: 150 MB for a million calls, where a heap slot is 16 bytes.
// One runtime timer, set for the earliest, wakes the manager; each call
// then due is expired on a goroutine of its own, as a runtime timer's
// function would be: an end waits for its journal write (an fsync with
// sync = yes), which must not hold up the next call's.
//
// Every method is called with the manager's lock held.
//
// Times are kept as nanoseconds since base, the manager's clock at the
// first timer, taken with Time.Sub: on the monotonic clock, as a
// time.AfterFunc of EndAt.Sub(now) was. On the wall clock (UnixNano), a
// step of the system clock made them disagree with expire, which reads the
// monotonic one: stepped forward, every call armed before the step fired
// again and again until its end, and calls armed after it waited for the
// earlier wake-up (TestWallClockStepForwardKeepsTimers).
type timers struct {
	heap    slots
	base    time.Time
	wake    *time.Timer
	wakeSet bool  // wake is set, for wakeAt
	wakeAt  int64 // since base
}

type timerSlot struct {
	at int64 // since base
	s  *Session
}

// since is at in the timers' frame.
func (t *timers) since(at, now time.Time) int64 {
	if t.base.IsZero() {
		t.base = now
	}
	n, d := now.Sub(t.base), at.Sub(now)
	switch {
	case d > 0 && n > math.MaxInt64-d:
		return math.MaxInt64
	case d < 0 && n < math.MinInt64-d:
		return math.MinInt64
	}
	return int64(n + d)
}

// set arms s's timer for at, moving it if armed already.
func (m *Manager) setTimerLocked(s *Session, at, now time.Time) {
	t := &m.timers
	a := t.since(at, now)
	if i := s.timerAt - 1; i >= 0 {
		old := t.heap.at(i).at
		t.heap.at(i).at = a
		if a < old {
			t.up(i)
		} else {
			t.down(i)
		}
	} else {
		t.heap.push(timerSlot{at: a, s: s})
		s.timerAt = t.heap.n
		t.up(t.heap.n - 1)
	}
	if top := t.heap.at(0).at; !t.wakeSet || top < t.wakeAt {
		// From the clock as it is, not now: callers read it before they
		// took the lock (or re-armed a whole table), and a wake-up set
		// from that is late by as much, for every call due before it
		// (TestTimerArmedWithAStaleNowFiresOnTime).
		clock := m.now()
		m.wakeAtLocked(top, t.since(clock, clock))
	}
}

// stopTimerLocked disarms s's timer. The wake-up set for it, if it was
// the earliest, finds nothing due and sets itself for the next.
func (m *Manager) stopTimerLocked(s *Session) {
	t := &m.timers
	i := s.timerAt - 1
	if i < 0 {
		return
	}
	last := t.heap.n - 1
	if i != last {
		t.swap(i, last)
	}
	t.heap.pop()
	s.timerAt = 0
	if i != last {
		t.down(i)
		t.up(i)
	}
}

func (m *Manager) wakeAtLocked(at, now int64) {
	t := &m.timers
	d := time.Duration(max(at-now, 0))
	if t.wake == nil {
		t.wake = time.AfterFunc(d, m.fireTimers)
	} else {
		t.wake.Reset(d)
	}
	t.wakeAt, t.wakeSet = at, true
}

// fireTimers runs on the wake-up: it takes the calls due off the heap (a
// chunk at a time), sets the wake-up for the next, and expires those due.
func (m *Manager) fireTimers() {
	m.mu.Lock()
	t := &m.timers
	t.wakeSet = false
	if m.closed {
		m.mu.Unlock()
		return
	}
	clock := m.now()
	now := t.since(clock, clock)
	// At most a chunk per hold of the lock: the proxy's requests wait on
	// it, and 100,000 calls due together took ~15 ms to pop. The wake-up
	// set below for a top still due fires again at once for the rest.
	var due []*Session
	for t.heap.n > 0 && t.heap.at(0).at <= now && len(due) < listChunk {
		s := t.heap.at(0).s
		m.stopTimerLocked(s)
		due = append(due, s)
	}
	if t.heap.n > 0 {
		m.wakeAtLocked(t.heap.at(0).at, now)
	}
	m.mu.Unlock()
	for _, s := range due {
		go m.expire(s)
	}
}

// stopAllTimersLocked is Shutdown's: no wake-up fires after it.
func (m *Manager) stopAllTimersLocked() {
	if m.timers.wake != nil {
		m.timers.wake.Stop()
	}
	m.timers.wakeSet = false
}

func (t *timers) less(i, j int) bool { return t.heap.at(i).at < t.heap.at(j).at }

func (t *timers) swap(i, j int) {
	a, b := t.heap.at(i), t.heap.at(j)
	*a, *b = *b, *a
	a.s.timerAt = i + 1
	b.s.timerAt = j + 1
}

func (t *timers) up(i int) {
	for i > 0 {
		parent := (i - 1) / 4
		if !t.less(i, parent) {
			return
		}
		t.swap(i, parent)
		i = parent
	}
}

func (t *timers) down(i int) {
	n := t.heap.n
	for {
		first := 4*i + 1
		if first >= n {
			return
		}
		least := first
		for c := first + 1; c < min(first+4, n); c++ {
			if t.less(c, least) {
				least = c
			}
		}
		if !t.less(least, i) {
			return
		}
		t.swap(i, least)
		i = least
	}
}

// slots is the heap's array, in blocks of slotBlock: growing it adds a
// block, where a slice would copy every slot (16 MB for a million calls)
// under the lock the proxy's requests take.
type slots struct {
	blocks [][]timerSlot
	n      int
}

const slotBlock = 4096 // a power of two

func (h *slots) at(i int) *timerSlot { return &h.blocks[i/slotBlock][i%slotBlock] }

func (h *slots) push(x timerSlot) {
	if h.n == len(h.blocks)*slotBlock {
		h.blocks = append(h.blocks, make([]timerSlot, slotBlock))
	}
	*h.at(h.n) = x
	h.n++
}

// pop drops the last slot; a block two blocks' worth past the last slot
// goes back to the collector (one is kept spare, so that a table around a
// block's edge does not allocate one on every other call).
func (h *slots) pop() {
	h.n--
	*h.at(h.n) = timerSlot{}
	if k := len(h.blocks); k > 0 && h.n <= (k-2)*slotBlock {
		h.blocks[k-1] = nil
		h.blocks = h.blocks[:k-1]
	}
}
