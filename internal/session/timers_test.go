package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
	"github.com/callcontrol/callcontrol/internal/sipdialog"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// endRecorder is a dialog ender that notes when each call's end was asked
// for (by the fake clock, under testing/synctest).
type endRecorder struct {
	mu   sync.Mutex
	ends map[string][]time.Time
}

func (r *endRecorder) End(t sipdialog.Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends[t.CallID] = append(r.ends[t.CallID], time.Now())
}

func (r *endRecorder) of(callID string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.ends[callID]...)
}

func newRecorded(t *testing.T) (*Manager, *endRecorder) {
	rec := &endRecorder{ends: map[string][]time.Time{}}
	m := NewManager(Limits{Limit: 3600, PrepaidLimit: NoLimit, SetupTime: 24 * time.Hour, StaleTimeout: 48 * time.Hour,
		ProxyTimeout: 500 * time.Millisecond}, nil, rec, sessiontest.NewJournal(), slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)
	t.Cleanup(func() { checkCounts(t, m) })
	return m, rec
}

// Random sequences of calls answered, re-timed (sooner and later, the
// earliest one included), stopped and left to run, on the fake clock:
// every call whose timer is left fires exactly at its end (on Kamailio
// not before AtAnswerDelay after its answer: armLocked), once; none
// stopped fires; the heap and its indices stay true after every step.
func TestTimerHeapRandomSequences(t *testing.T) {
	for seed := uint64(1); seed <= 25; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, rec := newRecorded(t)
				rnd := rand.New(rand.NewPCG(seed, 7))
				want := map[string]time.Time{} // calls left to their timer, and their end
				answered := map[string]time.Time{}
				stopped := map[string]bool{}
				var live []string
				pickLive := func() (string, int) {
					for len(live) > 0 {
						i := rnd.IntN(len(live))
						if _, ok := m.Get(live[i]); ok {
							return live[i], i
						}
						live[i] = live[len(live)-1]
						live = live[:len(live)-1]
					}
					return "", -1
				}
				randomEnd := func() time.Time {
					return time.Now().Add(time.Duration(rnd.IntN(120_000)) * time.Millisecond)
				}
				for step := 0; step < 400; step++ {
					switch op := rnd.IntN(10); {
					case op < 3: // a call answered
						id := fmt.Sprintf("c%d", step)
						if got := m.Init(initReq(id, fmt.Sprint("u", rnd.IntN(20)), "false"), time.Now()); got != ReplyLimited {
							t.Fatalf("init %s: %v", id, got)
						}
						if rnd.IntN(5) == 0 {
							break // left ringing: no timer
						}
						m.Start(id, "1:2", time.Now())
						answered[id] = time.Now()
						end := randomEnd()
						if rnd.IntN(3) == 0 {
							end = time.Now().Add(3600 * time.Second) // its own limit
						} else {
							m.SetEnd(id, end)
						}
						want[id] = end
						live = append(live, id)
					case op < 6: // re-timed, sooner or later
						if id, _ := pickLive(); id != "" {
							end := randomEnd()
							if m.SetEnd(id, end) {
								want[id] = end
							}
						}
					case op < 7: // stopped
						if id, i := pickLive(); id != "" {
							if m.Stop(id) == ReplyOk {
								delete(want, id)
								stopped[id] = true
								live[i] = live[len(live)-1]
								live = live[:len(live)-1]
							}
						}
					default: // time passes
						time.Sleep(time.Duration(rnd.IntN(5000)) * time.Millisecond)
						synctest.Wait()
					}
					if err := m.CheckTimers(); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
				}
				time.Sleep(2 * time.Hour)
				synctest.Wait()
				for id, end := range want {
					if settled := answered[id].Add(AtAnswerDelay); end.Before(settled) {
						end = settled
					}
					if got := rec.of(id); len(got) != 1 || !got[0].Equal(end) {
						t.Errorf("%s: ended at %v, want once at %v", id, got, end)
					}
				}
				for id := range stopped {
					if got := rec.of(id); len(got) != 0 {
						t.Errorf("%s, stopped, had its dialog ended at %v", id, got)
					}
				}
				if err := m.CheckTimers(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// 20,000 calls due at the same moment are all ended at that moment, none
// lost, and a call due a millisecond later is not held back by them.
func TestTimersManyDueTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newRecorded(t)
		const n = 20_000
		due := time.Now().Add(time.Minute)
		for i := 0; i < n; i++ {
			id := fmt.Sprint("c", i)
			m.Init(initReq(id, fmt.Sprint("u", i), "false"), time.Now())
			m.Start(id, "1:2", time.Now())
			m.SetEnd(id, due)
		}
		m.Init(initReq("late", "x", "false"), time.Now())
		m.Start("late", "1:2", time.Now())
		m.SetEnd("late", due.Add(time.Millisecond))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		for i := 0; i < n; i++ {
			if got := rec.of(fmt.Sprint("c", i)); len(got) != 1 || !got[0].Equal(due) {
				t.Fatalf("c%d ended at %v, want once at %v", i, got, due)
			}
		}
		if got := rec.of("late"); len(got) != 1 || !got[0].Equal(due.Add(time.Millisecond)) {
			t.Fatalf("late ended at %v", got)
		}
		if p, a, _ := m.Counts(); p+a != 0 {
			t.Fatalf("%d calls left", p+a)
		}
	})
}

// A stop of a call restored ringing is held for the proxy's word; a start
// that comes after it (on another connection of the proxy, or re-sent)
// must not make the call run on its timer: the proxy said it ended. It is
// settled from the proxy's record, once, with no BYE.
func TestStartAfterAHeldStopDoesNotRunTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, limited(60))
		restored := time.Now()
		s := &Session{CallID: "c1", Party: "sip:alice@example.com", RURI: "sip:bob@example.com", Engine: "engine1",
			Prepaid: true, Owed: true, Limit: 60, Cap: NoLimit, Created: restored.Add(-40 * time.Second)}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		f.m.ExpectMissedAnswers(ringing)
		if got := f.m.Stop("c1"); got != ReplyOk {
			t.Fatalf("stop: %v", got)
		}
		f.m.Start("c1", "1:2", time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		f.m.FindMissedAnswers(ctx, lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
			return sipdialog.Found{Ended: true, AnsweredAt: restored.Add(-30 * time.Second), EndedAt: restored}, nil
		}), ringing)
		if _, ok := f.m.Get("c1"); ok {
			t.Fatal("the call its proxy stopped still runs on its timer after a late start")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 30 {
			t.Fatalf("debits %+v, want one of 30 s (the proxy's record)", d)
		}
		if len(f.ch) != 0 {
			t.Fatal("a BYE was sent for a call the proxy had ended")
		}
	})
}

// Calls due together are taken off the heap a chunk at a time, each hold
// of the lock the proxy's requests take bounded (popping 100,000 at once
// held it ~15 ms here, a million ~200 ms), and all still end at once.
func TestTimersDueTogetherPoppedInChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newRecorded(t)
		const n = 3*ListChunk + 5
		due := time.Now().Add(time.Minute)
		for i := 0; i < n; i++ {
			id := fmt.Sprint("c", i)
			m.Init(initReq(id, fmt.Sprint("u", i), "false"), time.Now())
			m.Start(id, "1:2", time.Now())
			m.SetEnd(id, due)
		}
		m.SetNow(func() time.Time { return time.Now().Add(2 * time.Minute) }) // all due, the wake-up not yet
		if popped := m.FireTimers(); popped > ListChunk {
			t.Errorf("one wake-up took %d calls off the heap under the lock, want %d at most", popped, ListChunk)
		}
		synctest.Wait()
		for i := 0; i < n; i++ {
			if got := rec.of(fmt.Sprint("c", i)); len(got) != 1 || !got[0].Equal(due.Add(-time.Minute)) {
				t.Fatalf("c%d ended at %v, want once, at once", i, got)
			}
		}
	})
}

// Housekeeping walks the table in chunks while the proxy's requests change
// it in between: calls answered, stopped and set up again meanwhile. No
// call's dialog is ended twice, the counters match the table, and the
// timers stay true.
func TestHousekeepWhileTheTableChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newRecorded(t)
		const n = 4 * ListChunk
		old := time.Now().Add(-48 * time.Hour) // past the setup time and the stale timeout
		for i := 0; i < n; i++ {
			id := fmt.Sprint("c", i)
			r := initReq(id, fmt.Sprint("u", i), "false")
			m.Init(r, old)
			if i%3 == 0 {
				m.Start(id, "1:2", old)
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := n - 1; i >= 0; i-- {
				id := fmt.Sprint("c", i)
				switch i % 4 {
				case 0:
					m.Stop(id)
				case 1:
					m.Start(id, "1:2", time.Now())
				case 2:
					m.Stop(id)
					m.Init(initReq(id, fmt.Sprint("u", i), "false"), time.Now())
				}
			}
		}()
		m.Housekeep()
		<-done
		m.Housekeep()
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		for i := 0; i < n; i++ {
			if got := rec.of(fmt.Sprint("c", i)); len(got) > 1 {
				t.Errorf("c%d's dialog ended %d times", i, len(got))
			}
		}
		if err := m.CheckTimers(); err != nil {
			t.Fatal(err)
		}
	})
}

// A timer armed with a now read a while before (retimeFrom reads the clock
// before it waits for the lock; Restore before it re-arms a whole table)
// still fires at its time: the wake-up is set from the clock as it is.
func TestTimerArmedWithAStaleNowFiresOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newRecorded(t)
		m.Init(initReq("c", "u", "false"), time.Now())
		m.Start("c", "1:2", time.Now())
		time.Sleep(10 * time.Second)
		end := time.Now().Add(5 * time.Second)
		m.SetEndSeenAt("c", end, time.Now().Add(-10*time.Second))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := rec.of("c"); len(got) != 1 || !got[0].Equal(end) {
			t.Fatalf("ended at %v, want once at %v", got, end)
		}
	})
}
