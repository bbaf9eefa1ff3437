package session

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestOrderBlocks: the listing order in blocks lists exactly the sessions
// added and not removed, in the order they were added, finds each by its
// number, and stays a few blocks per thousand sessions whatever the
// pattern of removals, so no change of it costs a pass over the table.
func TestOrderBlocks(t *testing.T) {
	tests := []struct {
		name string
		run  func(r *rand.Rand, add func() *Session, remove func(*Session), live func() []*Session)
	}{
		{"random", func(r *rand.Rand, add func() *Session, remove func(*Session), _ func() []*Session) {
			var alive []*Session
			for range 50_000 {
				if len(alive) > 0 && r.IntN(100) < 45 {
					i := r.IntN(len(alive))
					remove(alive[i])
					alive[i] = alive[len(alive)-1]
					alive = alive[:len(alive)-1]
				} else {
					alive = append(alive, add())
				}
			}
		}},
		{"a long call in each thousand", func(r *rand.Rand, add func() *Session, remove func(*Session), _ func() []*Session) {
			var short []*Session
			for i := range 40 * orderBlockSize {
				if s := add(); i%orderBlockSize != 7 {
					short = append(short, s)
				}
			}
			r.Shuffle(len(short), func(i, j int) { short[i], short[j] = short[j], short[i] })
			for _, s := range short {
				remove(s)
			}
		}},
		{"oldest first", func(r *rand.Rand, add func() *Session, remove func(*Session), live func() []*Session) {
			for range 20_000 {
				add()
			}
			for _, s := range live()[:19_000] {
				remove(s)
			}
			oldest := live()
			for range 5_000 {
				oldest = append(oldest, add())
				remove(oldest[0])
				oldest = oldest[1:]
			}
		}},
		{"newest first", func(r *rand.Rand, add func() *Session, remove func(*Session), live func() []*Session) {
			for range 20_000 {
				add()
			}
			l := live()
			for range 19_500 {
				remove(l[len(l)-1])
				l = l[:len(l)-1]
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o order
			var want []*Session // in the order added
			check := func() {
				t.Helper()
				if o.live != len(want) {
					t.Fatalf("live %d, want %d", o.live, len(want))
				}
				var got []*Session
				for k, b := range o.blocks {
					if len(b.entries) == 0 && k != len(o.blocks)-1 || len(b.entries) > orderBlockSize {
						t.Fatalf("block %d of %d holds %d entries", k, len(o.blocks), len(b.entries))
					}
					n := 0
					for _, e := range b.entries {
						if e.s != nil {
							got = append(got, e.s)
							n++
						}
					}
					if n != b.live {
						t.Fatalf("block counts %d live, holds %d", b.live, n)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("lists %d sessions, want %d, or out of order", len(got), len(want))
				}
				if limit := 4 + 4*len(want)/orderBlockSize; len(o.blocks) > limit {
					t.Fatalf("%d blocks for %d sessions, want at most %d", len(o.blocks), len(want), limit)
				}
			}
			gone := map[*Session]bool{}
			live := func() []*Session { // in the order added
				want = slices.DeleteFunc(want, func(x *Session) bool { return gone[x] })
				clear(gone)
				return slices.Clone(want)
			}
			add := func() *Session {
				s := &Session{}
				o.add(s)
				want = append(want, s)
				return s
			}
			ops := 0
			remove := func(s *Session) {
				o.remove(s)
				gone[s] = true
				if ops++; ops%4999 == 0 {
					live()
					check()
				}
			}
			tt.run(rand.New(rand.NewPCG(1, 2)), add, remove, live)
			live()
			check()
			for _, s := range want {
				if bi, i := o.find(s.seq); bi == len(o.blocks) || o.blocks[bi].entries[i].s != s {
					t.Fatalf("session %d not found by its number", s.seq)
				}
			}
			o.remove(&Session{seq: o.last + 1}) // unknown: nothing happens
			check()
		})
	}
}

// TestSlotsBlocks: the timer heap's array in blocks holds what a slice
// would, grows by a block at a time, and gives blocks back as it shrinks,
// keeping one spare.
func TestSlotsBlocks(t *testing.T) {
	var h slots
	var model []timerSlot
	r := rand.New(rand.NewPCG(3, 4))
	for step := range 200_000 {
		grow := step < 100_000 && r.IntN(10) < 7 || step >= 100_000 && r.IntN(10) < 3
		if grow || len(model) == 0 {
			x := timerSlot{at: int64(step)}
			h.push(x)
			model = append(model, x)
		} else {
			h.pop()
			model = model[:len(model)-1]
		}
		if h.n != len(model) {
			t.Fatalf("step %d: %d slots, want %d", step, h.n, len(model))
		}
		if k := len(h.blocks); k > h.n/slotBlock+2 || k < (h.n+slotBlock-1)/slotBlock {
			t.Fatalf("step %d: %d blocks for %d slots", step, k, h.n)
		}
		if step%1000 == 0 {
			for i, x := range model {
				if *h.at(i) != x {
					t.Fatalf("step %d: slot %d is %v, want %v", step, i, *h.at(i), x)
				}
			}
		}
	}
}

// TestOrderShortCallsAllocateNothing: a table of short calls (each added
// and soon removed, as a proxy's call cycles are) reuses the last block's
// array. A block allocated per call (16 KB, when the last call's removal
// dropped the block) or per squeeze cost one proxy connection 5% of its
// calls per second (scripts/bench-ab.sh).
func TestOrderShortCallsAllocateNothing(t *testing.T) {
	for _, tc := range []struct{ inProgress, perCall int }{
		{1, 0}, {40, 0},
		{1000, 128}, // calls outlive a block: a block per thousand calls, 16 bytes each
	} {
		inProgress := tc.inProgress
		var o order
		calls := make([]Session, 4096)
		for i := range inProgress {
			o.add(&calls[i])
		}
		n := inProgress
		cycle := func() {
			s := &calls[n%len(calls)]
			*s = Session{}
			o.add(s)
			o.remove(&calls[(n-inProgress)%len(calls)]) // the oldest goes
			n++
		}
		for range 2 * orderBlockSize {
			cycle() // the blocks settle
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 20_000 {
			cycle()
		}
		runtime.ReadMemStats(&after)
		if b := after.TotalAlloc - before.TotalAlloc; b > uint64(4<<10+20_000*tc.perCall) {
			t.Errorf("%d calls in progress: %d bytes allocated over 20,000 calls added and removed, want at most %d per call", inProgress, b, tc.perCall)
		}
	}
}
