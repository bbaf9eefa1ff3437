package session

import (
	"fmt"
	"time"
)

// SetEnd re-arms the tracked call's timer for end, as a re-timing does;
// it says whether the call was tracked.
func (m *Manager) SetEnd(callID string, end time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.calls[callID]
	if s == nil {
		return false
	}
	m.setEndLocked(s, end)
	return true
}

// CheckTimers checks the timer heap against the table: every slot's
// session is tracked and knows its slot, the heap is ordered, every
// tracked call with a slot is in it, and the wake-up is set no later
// than the earliest slot.
func (m *Manager) CheckTimers() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &m.timers
	for i := range t.heap.n {
		slot := t.heap.at(i)
		if slot.s == nil {
			return fmt.Errorf("slot %d empty", i)
		}
		if slot.s.timerAt != i+1 {
			return fmt.Errorf("slot %d holds %s, which says slot %d", i, slot.s.CallID, slot.s.timerAt-1)
		}
		if m.calls[slot.s.CallID] != slot.s {
			return fmt.Errorf("slot %d holds %s, not in the table", i, slot.s.CallID)
		}
		if i > 0 && t.heap.at((i-1)/4).at > slot.at {
			return fmt.Errorf("slot %d earlier than its parent", i)
		}
	}
	for id, s := range m.calls {
		if i := s.timerAt - 1; i >= 0 && (i >= t.heap.n || t.heap.at(i).s != s) {
			return fmt.Errorf("%s says slot %d, not its own", id, i)
		}
	}
	if t.heap.n > 0 && (!t.wakeSet || t.wakeAt > t.heap.at(0).at) && !m.closed {
		return fmt.Errorf("wake-up at %d, after the earliest timer at %d", t.wakeAt, t.heap.at(0).at)
	}
	if len(t.heap.blocks) > t.heap.n/slotBlock+2 {
		return fmt.Errorf("%d blocks of slots for %d timers", len(t.heap.blocks), t.heap.n)
	}
	return nil
}

// FireTimers runs one wake-up of the timers now, as the runtime timer
// does, and returns how many timers it took off the heap.
func (m *Manager) FireTimers() (popped int) {
	m.mu.Lock()
	before := m.timers.heap.n
	m.mu.Unlock()
	m.fireTimers()
	m.mu.Lock()
	defer m.mu.Unlock()
	return before - m.timers.heap.n
}

// SetEndSeenAt re-arms the tracked call's timer for end as armLocked does
// with a now read before the lock was taken (retimeFrom, Restore).
func (m *Manager) SetEndSeenAt(callID string, end, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.calls[callID]
	s.EndAt = end
	m.armLocked(s, now)
}
