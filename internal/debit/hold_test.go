package debit

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating"
)

// holdLog records the spool's Hold and Unhold calls, as rating.Pool
// would take them.
type holdLog struct {
	mu     sync.Mutex
	events []string
	held   map[string]int
}

func (h *holdLog) options() Options {
	h.held = map[string]int{}
	o := fast
	o.Hold = func(party, engine string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, "hold "+party+" "+engine)
		h.held[party]++
	}
	o.Unhold = func(party string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, "unhold "+party)
		h.held[party]--
	}
	return o
}

func (h *holdLog) count(party string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held[party]
}

func (h *holdLog) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events[n:])
}

func (h *holdLog) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// TestHoldsWhileOwed: every debit that charges time holds its party on its
// engine from the moment it is owed (restored ones too) until it is
// delivered or dropped, and a reroute moves the hold with it; a 0 s debit
// holds nothing.
func TestHoldsWhileOwed(t *testing.T) {
	a, b := newEngine(), newEngine("c1", "c2", "c3")
	a.set(func(e *fakeEngine) { e.down = true })
	party := "sip:a@x"
	h := &holdLog{}
	dir := t.TempDir()
	r := start(t, dir, engines{"a": a, "b": b}, h.options())
	owe(t, r.spool, "a", "c1")
	owe(t, r.spool, "a", "c2")
	release := Owed{Owed: rating.Owed{Engine: "a", Debit: rating.Debit{CallID: "c0", From: party, To: "sip:b@x", Duration: 0}}}
	if err := r.spool.Owe(release).Wait(); err != nil {
		t.Fatal(err)
	}
	if got := h.since(0); !slices.Equal(got, []string{"hold " + party + " a", "hold " + party + " a"}) {
		t.Fatalf("holds after two debits and a 0 s release: %q", got)
	}

	n, err := r.spool.Drop("c2")
	for errors.Is(err, ErrInFlight) {
		n, err = r.spool.Drop("c2")
	}
	if err != nil || n != 1 {
		t.Fatalf("drop: %d, %v", n, err)
	}
	if got := h.count(party); got != 1 {
		t.Fatalf("held %d times after a drop, want 1", got)
	}
	r.stop()

	// Restored: held before anything is sent.
	h = &holdLog{}
	r = start(t, dir, engines{"a": a, "b": b}, h.options())
	if got := h.since(0); !slices.Equal(got, []string{"hold " + party + " a"}) {
		t.Fatalf("holds of the restored debits: %q", got)
	}
	mark := h.len()
	for moved := 0; moved == 0; {
		rr := r.spool.Reroute("a", func(string) string { return "b" })
		if rr.NotWritten != 0 || rr.Err != nil {
			t.Fatalf("reroute: %+v", rr)
		}
		moved = rr.Moved
	}
	waitFor(t, "c1 delivered on b", func() bool { d, _, _, _ := b.snapshot(); return d["c1"] == 1 })
	waitFor(t, "c1's hold let go", func() bool { return h.count(party) == 0 })
	if got := h.since(mark); !slices.Equal(got, []string{"unhold " + party, "hold " + party + " b", "unhold " + party}) {
		t.Errorf("holds through the reroute and the delivery: %q", got)
	}
	r.stop()
}
