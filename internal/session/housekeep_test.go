package session_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// Housekeeping walks a table of several chunks (it lets the proxy's
// requests in between them: no scan of the whole table under the lock)
// and ends exactly the calls due: the ringing ones past the setup time
// and the answered ones without a limit past the stale timeout, each
// once, the others left alone.
func TestHousekeepEndsExactlyTheCallsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := Limits{Limit: NoLimit, PrepaidLimit: NoLimit, SetupTime: time.Minute, StaleTimeout: time.Hour}
		f := newFixture(t, lim, nil)
		n := 3 * ListChunk
		old := time.Now().Add(-2 * time.Hour)
		// No limit: tracked for their call_limit, so an answered one has
		// no end and only the stale timeout ends it.
		initReq := func(id, user, prepaid string) *InitRequest {
			r := initReq(id, user, prepaid)
			r.CallLimit = "5"
			return r
		}
		for i := 0; i < n; i++ {
			ringingLong := fmt.Sprintf("ring-old-%d", i)
			f.m.Init(initReq(ringingLong, fmt.Sprintf("a%d", i), ""), old)
			if i%9 == 0 { // the fixture's ender holds 100 ends
				stale := fmt.Sprintf("stale-%d", i)
				f.m.Init(initReq(stale, fmt.Sprintf("b%d", i), ""), old)
				f.m.Start(stale, "1:2", old)
			}
			fresh := fmt.Sprintf("fresh-%d", i)
			f.m.Init(initReq(fresh, fmt.Sprintf("c%d", i), ""), time.Now())
			f.m.Start(fresh, "1:3", time.Now())
			f.m.Init(initReq("ring-new-"+fmt.Sprint(i), fmt.Sprintf("d%d", i), ""), time.Now())
		}
		f.m.Housekeep()
		pending, inProgress, _ := f.m.Counts()
		if pending != n || inProgress != n {
			t.Fatalf("%d ringing and %d answered left, want %d of each (the recent ones)", pending, inProgress, n)
		}
		ends := 0
		for len(f.ch) > 0 {
			tg := <-f.ch
			if len(tg.CallID) < 6 || tg.CallID[:6] != "stale-" {
				t.Fatalf("ended %s", tg.CallID)
			}
			ends++
		}
		if want := (n + 8) / 9; ends != want {
			t.Fatalf("%d stale calls ended, want %d", ends, want)
		}
		f.m.Housekeep() // nothing more is due
		if len(f.ch) != 0 {
			t.Fatal("a second round ended calls again")
		}
	})
}
