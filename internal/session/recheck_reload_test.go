package session_test

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// A reload that turns re-asks on (or makes them more frequent) reaches
// the calls already in progress: two proxies, c1 runs on A; A is reloaded
// with recheck_interval 10 s; c2 starts on B. A's c1 must hear of the
// shared end within a step of the new interval. It did not ask until
// something re-timed it (from 0), or until its old step (an hour): c1
// talked on its solo end, past the balance.
func TestReloadReachesCallsInProgress(t *testing.T) {
	for _, from := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("recheck_interval %v to 10s", from), func(t *testing.T) {
			e := ratingtest.New(t)
			e.SetAccount(account, ratingtest.Account{Balance: 10.00}) // 6000 s alone
			e.SetRate("", ratingtest.PerMinute(0.10))
			e.SetRate("0099", 10*ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				rec := &cutRecorder{}
				var wg sync.WaitGroup
				a, b := newDaemon(e, from, rec, &wg), newDaemon(e, 10*time.Second, rec, &wg)
				t0 := time.Now()
				call(t, a, "c1")
				time.Sleep(5 * time.Second)
				lim := a.m.Limits()
				lim.RecheckInterval = 10 * time.Second
				a.m.SetLimits(lim) // the reload
				time.Sleep(5 * time.Second)
				callTo(t, b, "c2", "sip:0099650222333@example.com") // ten times dearer
				// 5990 s of c1's price left at +10 s, for 11 times that price.
				shared := 10*time.Second + 5990*time.Second/11
				time.Sleep(20 * time.Second)
				synctest.Wait()
				s, ok := a.m.Get("c1")
				if !ok {
					t.Fatal("c1 lost")
				}
				if d := s.EndAt.Sub(t0.Add(shared)); d < -3*time.Second || d > 3*time.Second {
					t.Errorf("20 s after c2 started, c1 ends at +%v, the shared end is +%v: the reload did not reach it", s.EndAt.Sub(t0), shared)
				}
				a.m.Shutdown()
				b.m.Shutdown()
				wg.Wait()
			})
		})
	}
}
