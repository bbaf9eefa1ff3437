package session_test

import (
	"testing"
	"testing/synctest"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// TestEndedCallOwesItsDebitBeforeLettingGoOfItsEngine: a prepaid call that
// ends keeps its party on its engine (Acquire) until its debit is owed,
// which holds the party there in turn (the debit spool's Hold): the party
// is never free in between, when a call of it could be rated on another
// engine against a balance that will not carry the debit. Each way an
// answered call ends with a debit is checked.
func TestEndedCallOwesItsDebitBeforeLettingGoOfItsEngine(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(m *Manager)
	}{
		{"stop", func(m *Manager) { m.Stop("c1") }},
		{"operator", func(m *Manager) { m.Terminate("c1") }},
		{"accounting with a duration", func(m *Manager) { m.EndUnseen("c1", "", 1) }},
		{"accounting without one", func(m *Manager) { m.EndUnseen("c1", "", -1) }},
	} {
		synctest.Test(t, func(t *testing.T) { // the operator's end comes on the call's timer
			f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
			heldAtDebit := -1
			f.j.OnDebit = func(o Owed) {
				f.r.mu.Lock()
				heldAtDebit = f.r.acquired[o.Debit.From]
				f.r.mu.Unlock()
			}
			if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
				t.Fatalf("init: %v", got)
			}
			if got := f.m.Start("c1", "1:2", time.Now()); got != ReplyOk {
				t.Fatalf("start: %v", got)
			}
			tc.end(f.m)
			time.Sleep(time.Second)
			synctest.Wait()
			if heldAtDebit != 1 {
				t.Errorf("%s: the party's calls held on its engine when its debit was owed: %d, want 1", tc.name, heldAtDebit)
			}
			f.r.mu.Lock()
			left := f.r.acquired["sip:alice@example.com"]
			f.r.mu.Unlock()
			if left != 0 {
				t.Errorf("%s: calls held after the end: %d, want 0", tc.name, left)
			}
		})
	}
}
