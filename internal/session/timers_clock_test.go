package session_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"
)

// clockAt is the fake clock's time t as time.Now gives it outside a
// bubble, with a monotonic reading (testing/synctest's time has none, so
// there Sub compares wall clocks), and its wall clock reading moved by
// step: what time.Now returns after the system clock was stepped (NTP, an
// operator's date). No API makes one.
func clockAt(t time.Time, step time.Duration) time.Time {
	const (
		day            = 86400
		wallToInternal = (1884*365 + 1884/4 - 1884/100 + 1884/400) * day // time's epoch for readings with a monotonic clock: 1885
		unixToInternal = (1969*365 + 1969/4 - 1969/100 + 1969/400) * day
		hasMonotonic   = 1 << 63
	)
	wall := t.Add(step)
	var r time.Time
	p := (*struct {
		wall uint64
		ext  int64
		loc  *time.Location
	})(unsafe.Pointer(&r))
	p.wall = hasMonotonic | uint64(wall.Unix()+unixToInternal-wallToInternal)<<30 | uint64(wall.Nanosecond())
	p.ext = t.UnixNano() // the monotonic reading: the fake clock itself
	return r
}

// The system clock stepped forward an hour while calls run. Timers run on
// the monotonic clock (as time.AfterFunc did): a call answered before the
// step still ends at its limit, not before, and not with its timer firing
// over and over until then; a call answered after the step, due before an
// earlier call's wake-up, ends on time, not at that wake-up.
func TestWallClockStepForwardKeepsTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rec := newRecorded(t)
		var stepped atomic.Bool
		var reads atomic.Int64
		const spinning = 100_000
		m.SetNow(func() time.Time {
			switch {
			case reads.Add(1) > spinning: // let the test end
				return clockAt(time.Now().Add(10*time.Hour), time.Hour)
			case stepped.Load():
				return clockAt(time.Now(), time.Hour)
			}
			return clockAt(time.Now(), 0)
		})
		if a, b := clockAt(time.Now(), 0), clockAt(time.Now(), time.Hour); !a.Equal(time.Now()) || b.Sub(a) != 0 || b.Unix()-a.Unix() != 3600 {
			t.Fatalf("clockAt: %v %v", a, b)
		}
		t0 := time.Now()
		for _, c := range []struct {
			id  string
			end time.Duration
		}{{"a", 60 * time.Second}, {"b", 120 * time.Second}} {
			m.Init(initReq(c.id, c.id, "false"), time.Now())
			m.Start(c.id, "1:2", time.Now())
			m.SetEnd(c.id, m.Now().Add(c.end))
		}
		stepped.Store(true)
		time.Sleep(time.Second)
		m.Init(initReq("c", "c", "false"), time.Now())
		m.Start("c", "1:2", time.Now())
		m.SetEnd("c", m.Now().Add(30*time.Second)) // due at t0+31 s
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := reads.Load(); n > spinning {
			t.Errorf("the clock was read %d times: timers fired over and over", n)
		}
		for id, want := range map[string]time.Duration{"a": 60 * time.Second, "b": 120 * time.Second, "c": 31 * time.Second} {
			if got := rec.of(id); len(got) != 1 || got[0].Sub(t0) != want {
				var at []time.Duration
				for _, g := range got {
					at = append(at, g.Sub(t0))
				}
				t.Errorf("%s ended %v after the start, want once at %v", id, at, want)
			}
		}
	})
}
