package session_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// zeroProbes is the engine rater recording when a probe was answered 0.
type zeroProbes struct {
	*engineRater
	mu sync.Mutex
	at []time.Time
}

func (z *zeroProbes) MaxSessionTime(ctx context.Context, engine string, q rating.Request) (rating.MaxTime, error) {
	mt, err := z.engineRater.MaxSessionTime(ctx, engine, q)
	if err == nil && mt.Kind == rating.Limited && mt.Seconds == 0 && strings.Contains(q.CallID, "~recheck") {
		z.mu.Lock()
		z.at = append(z.at, time.Now())
		z.mu.Unlock()
	}
	return mt, err
}

// Two proxies. c1 runs on A; c2, three times dearer, runs on B from
// +10.5 s, just after c1's first re-ask, and is cut by B at its shared
// end; its debit leaves c1 credit until +18 s, which A does not hear of.
// c1's next re-ask (+18 to +20 s) finds the credit spent: the engine
// answers 0. c1 was then given 2 s more ("0 means under about 2 s left"),
// past a credit that is gone: the account went below zero by 2 s of talk
// beyond the step the design allows.
// A call whose timer says more than 2 s when the probe is answered 0 is
// behind the engine: it ends at once.
func TestProbeAnsweredZeroOnSpentCreditEndsCallsThen(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 0.05}) // 30 s of c1 alone
	e.SetRate("", ratingtest.PerMinute(0.10))
	e.SetRate("0099", 3*ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		const interval = 10 * time.Second
		a := newDaemon(e, interval, rec, &wg)
		zp := &zeroProbes{engineRater: a.rater}
		a.m.SetRater(zp)
		b := newDaemon(e, interval, rec, &wg)
		t0 := time.Now()
		callTo(t, a, "c1", "sip:0031650222333@example.com")
		time.Sleep(10500 * time.Millisecond) // c1's first re-ask came at +9 to +10 s
		callTo(t, b, "c2", "sip:0099650222333@example.com")
		time.Sleep(time.Minute)
		synctest.Wait()
		zp.mu.Lock()
		zeros := append([]time.Time(nil), zp.at...)
		zp.mu.Unlock()
		if len(zeros) == 0 {
			t.Fatal("no re-ask of c1 was answered 0: the case did not happen")
		}
		at, ok := rec.at("c1")
		if !ok {
			t.Fatal("c1 never cut")
		}
		if late := at.Sub(zeros[0]); late > 0 {
			t.Errorf("c1 cut at +%v, %v after the engine answered its re-ask 0 at +%v with the credit spent (balance %.4f)",
				at.Sub(t0), late, zeros[0].Sub(t0), e.Balance(account))
		}
		a.m.Shutdown()
		b.m.Shutdown()
		wg.Wait()
	})
}

// A lone call near its end: the engine counts the probe as one more
// session, so a probe made with under 2 s left is answered 0 while the
// call's own timer is right. The call is not cut before its timer.
func TestProbeAnsweredZeroNearTheEndOfALoneCall(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 0.05}) // 30 s
	e.SetRate("", ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		a := newDaemon(e, 10*time.Second, rec, &wg)
		zp := &zeroProbes{engineRater: a.rater}
		a.m.SetRater(zp)
		t0 := time.Now()
		call(t, a, "c1")
		time.Sleep(time.Minute)
		synctest.Wait()
		zp.mu.Lock()
		zeros := len(zp.at)
		zp.mu.Unlock()
		if at, ok := rec.at("c1"); !ok || at.Sub(t0) != 30*time.Second {
			t.Errorf("c1 cut at +%v (cut: %v), want at its end, +30 s (%d probes answered 0)", at.Sub(t0), ok, zeros)
		}
		t.Logf("%d probes answered 0", zeros)
		a.m.Shutdown()
		wg.Wait()
	})
}
