package session

import "time"

// The calls' timers: one heap for the table, not a runtime timer per call.
// A runtime timer with its function cost about 150 bytes per call, a fifth
// of a session: 150 MB for a million calls, where a heap slot is 16 bytes.
// One runtime timer, set for the earliest, wakes the manager; each call
// then due is expired on a goroutine of its own, as a runtime timer's
// function would be: an end waits for its journal write (an fsync with
// sync = yes), which must not hold up the next call's.
//
// Times are kept as nanoseconds since base, the manager's creation, taken
// from the monotonic clock where the time has it (what the calls of this
// run got): a step of the system's clock neither ends calls early nor
// lets them run late. A time restored from disk has no monotonic reading
// and counts by the wall clock, as it must.
//
// Every method is called with the manager's lock held.
type timers struct {
	base   time.Time
	heap   []timerSlot
	wake   *time.Timer
	wakeAt int64 // since base, when wake is set for; 0 when not set
}

type timerSlot struct {
	at int64 // nanoseconds since base
	s  *Session
}

func (t *timers) since(at time.Time) int64 { return int64(at.Sub(t.base)) }

// set arms s's timer for at, moving it if armed already.
func (m *Manager) setTimerLocked(s *Session, at, now time.Time) {
	t := &m.timers
	a := t.since(at)
	if i := s.timerAt - 1; i >= 0 {
		old := t.heap[i].at
		t.heap[i].at = a
		if a < old {
			t.up(i)
		} else {
			t.down(i)
		}
	} else {
		t.heap = append(t.heap, timerSlot{at: a, s: s})
		s.timerAt = len(t.heap)
		t.up(len(t.heap) - 1)
	}
	if top := t.heap[0].at; t.wakeAt == 0 || top < t.wakeAt {
		m.wakeAtLocked(top, t.since(now))
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
	last := len(t.heap) - 1
	if i != last {
		t.swap(i, last)
	}
	t.heap[last] = timerSlot{}
	t.heap = t.heap[:last]
	s.timerAt = 0
	if i != last {
		t.down(i)
		t.up(i)
	}
	if len(t.heap) == 0 && cap(t.heap) > 1024 {
		t.heap = nil // a table that emptied gives back its slots
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
	t.wakeAt = at
}

// fireTimers runs on the wake-up: it takes the calls due off the heap,
// listChunk at a time per hold of the lock (100,000 may be due together:
// the proxy's requests get in between), expires them, and sets the
// wake-up for the next.
func (m *Manager) fireTimers() {
	for {
		m.mu.Lock()
		t := &m.timers
		t.wakeAt = 0
		if m.closed {
			m.mu.Unlock()
			return
		}
		now := t.since(m.now())
		var due []*Session
		for len(t.heap) > 0 && t.heap[0].at <= now && len(due) < listChunk {
			s := t.heap[0].s
			m.stopTimerLocked(s)
			due = append(due, s)
		}
		more := len(t.heap) > 0 && t.heap[0].at <= now
		if len(t.heap) > 0 && !more {
			m.wakeAtLocked(t.heap[0].at, now)
		}
		m.mu.Unlock()
		for _, s := range due {
			go m.expire(s)
		}
		if !more {
			return
		}
	}
}

// stopAllTimersLocked is Shutdown's: no wake-up fires after it.
func (m *Manager) stopAllTimersLocked() {
	if m.timers.wake != nil {
		m.timers.wake.Stop()
	}
	m.timers.wakeAt = 0
}

func (t *timers) less(i, j int) bool { return t.heap[i].at < t.heap[j].at }

func (t *timers) swap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	h[i].s.timerAt = i + 1
	h[j].s.timerAt = j + 1
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
	n := len(t.heap)
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
