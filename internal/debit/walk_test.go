package debit

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
)

// TestOperatorReadsLetACallEndBetweenChunks: with 100,000 debits owed (a
// long outage), every operator's read of the spool (callcontrol debits,
// its drop and reroute, a snapshot's dump) lets go of the lock a call's
// end takes between bounded chunks: a call ends (its debit recorded and
// queued, the proxy's stop) in the middle of each, and each read sees
// the whole backlog, in order. Structural, not timed: the hook runs
// between chunks and waits for the call's end to finish; a read holding
// the lock throughout would leave it waiting (the guard below fails the
// test rather than hang).
func TestOperatorReadsLetACallEndBetweenChunks(t *testing.T) {
	const owed = 100_000
	restored := make([]Owed, owed)
	for i := range restored {
		restored[i] = Owed{ID: uint64(i + 1), Owed: rating.Owed{Engine: "a",
			Debit: rating.Debit{CallID: fmt.Sprintf("c%d", i+1), From: "sip:a@x", To: "sip:b@x", Duration: 60}}}
	}
	tests := []struct {
		name string
		read func(s *Spool) int // how many debits it saw
	}{
		{"status", func(s *Spool) int {
			st := s.Status()
			for i := 1; i < len(st); i++ {
				if st[i-1].ID >= st[i].ID {
					t.Fatalf("status out of order at %d: %d then %d", i, st[i-1].ID, st[i].ID)
				}
			}
			return len(st)
		}},
		{"pending", func(s *Spool) int { return len(s.Pending()) }},
		{"dump", func(s *Spool) int {
			n := 0
			s.Dump(func(string, []byte) { n++ })
			return n
		}},
		{"reroute", func(s *Spool) int {
			n := 0
			s.Reroute("a", func(string) string { n++; return "" }) // every party stays
			return n
		}},
		{"drop of an unknown call", func(s *Spool) int {
			if n, err := s.Drop("nope"); n != 0 || err != nil {
				t.Fatalf("drop: %d, %v", n, err)
			}
			return -1
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _, err := store.Open(t.TempDir(), store.Options{NoSync: true}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			s := New(l, newEngine(), restored, fast, nil, quiet()) // not running: nothing is sent
			defer s.Close()
			chunks, ended := 0, false
			s.walked = func() {
				chunks++
				if chunks != 2 {
					return
				}
				done := make(chan error, 1)
				go func() {
					done <- s.Owe(Owed{Owed: rating.Owed{Engine: "a", Debit: rating.Debit{CallID: "ended-meanwhile", From: "sip:a@x", Duration: 1}}},
						store.Delete("s/ended-meanwhile")).Wait()
				}()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("the call's end: %v", err)
					}
					ended = true
				case <-time.After(30 * time.Second): // a guard against a hang, not a measure
					t.Errorf("a call's end waited for the whole read of %d debits", owed)
				}
			}
			saw := tc.read(s)
			if !ended {
				t.Fatalf("no call ended between chunks (%d chunks)", chunks)
			}
			if want := owed / walkChunk; chunks < want {
				t.Errorf("%d debits read in %d holds of the lock, want %d at least (%d a hold)", owed, chunks, want, walkChunk)
			}
			// The debit owed meanwhile has the highest ID: it is read too.
			if saw != -1 && saw != owed+1 {
				t.Errorf("read %d debits, want %d", saw, owed+1)
			}
		})
	}
}

// TestRerouteFailedWriteSaidApart: a reroute whose records cannot be
// written (the state log fails; played by a closed log, whose commits
// fail as a broken disk's do) does not call those debits moved: they are
// counted apart with the cause. They stay moved in memory, and nothing
// reaches the new engine while the state is not durable; what is on disk
// still owes them to the old engine: never dropped, never twice.
func TestRerouteFailedWriteSaidApart(t *testing.T) {
	dir := t.TempDir()
	l, live, err := store.Open(dir, store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a, b := newEngine("c1", "c2"), newEngine("c1", "c2")
	s := New(l, engines{"a": a, "b": b}, Restore(live, store.BootID(), quiet()), fast, nil, quiet())
	defer s.Close()
	owe(t, s, "a", "c1") // not running: nothing is sent
	owe(t, s, "a", "c2")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := s.Reroute("a", func(string) string { return "b" })
	if r.Moved != 0 || r.NotWritten != 2 || !errors.Is(r.Err, store.ErrClosed) {
		t.Fatalf("reroute with a failing state log: %+v; want 0 moved, 2 not written, the write's error", r)
	}
	for _, st := range s.Status() {
		if st.Engine != "b" {
			t.Errorf("%s owed to %s in memory, want b (the move is kept)", st.Debit.CallID, st.Engine)
		}
	}
	// Running, b's worker cannot write its prepared mark: no send.
	go s.Run(t.Context())
	waitFor(t, "a failed round on b", func() bool {
		st := s.Status()
		return len(st) > 0 && st[0].LastErr != ""
	})
	if _, _, reqs, _ := b.snapshot(); len(reqs) != 0 {
		t.Errorf("engine b was sent %d debits whose records name engine a", len(reqs))
	}
	// What a restart finds: both still owed, to a.
	l2, live, err := store.Open(dir, store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	restored := Restore(live, store.BootID(), quiet())
	if len(restored) != 2 {
		t.Fatalf("%d debits after a restart, want 2", len(restored))
	}
	for _, o := range restored {
		if o.Engine != "a" {
			t.Errorf("after a restart %s is owed to %s, want a", o.Debit.CallID, o.Engine)
		}
	}
}

// BenchmarkBacklog: an operator's read (Status) and reroute of an outage's
// backlog of owed debits, per debit, and the longest wait for the spool's
// lock of a goroutine taking it meanwhile as a call's end does. Each read
// holds the lock for a chunk and each move for one debit, so the cost per
// debit stays flat as the backlog grows.
func BenchmarkBacklog(b *testing.B) {
	for _, owed := range []int{10_000, 100_000} {
		restored := make([]Owed, owed)
		for i := range restored {
			restored[i] = Owed{ID: uint64(i + 1), Owed: rating.Owed{Engine: "a",
				Debit: rating.Debit{CallID: fmt.Sprintf("c%d", i+1), From: "sip:a@x", To: "sip:b@x", Duration: 60}}}
		}
		l, _, err := store.Open(b.TempDir(), store.Options{NoSync: true}, quiet())
		if err != nil {
			b.Fatal(err)
		}
		s := New(l, newEngine(), restored, fast, nil, quiet())
		b.Run(fmt.Sprintf("status/%d", owed), func(b *testing.B) {
			stop, waited := make(chan struct{}), make(chan time.Duration)
			go func() {
				var longest time.Duration
				for {
					select {
					case <-stop:
						waited <- longest
						return
					default:
					}
					t0 := time.Now()
					s.mu.Lock()
					longest = max(longest, time.Since(t0))
					s.mu.Unlock()
					time.Sleep(50 * time.Microsecond)
				}
			}()
			for b.Loop() {
				s.Status()
			}
			close(stop)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*owed), "ns/debit")
			b.ReportMetric(float64((<-waited).Microseconds()), "max-lock-wait-us")
		})
		from, to := "a", "b" // where the backlog is, across runs (-count)
		b.Run(fmt.Sprintf("reroute/%d", owed), func(b *testing.B) {
			for b.Loop() {
				if r := s.Reroute(from, func(string) string { return to }); r.Moved != owed {
					b.Fatalf("moved %+v of %d", r, owed)
				}
				from, to = to, from
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*owed), "ns/debit")
		})
		s.Close()
		l.Close()
	}
}
