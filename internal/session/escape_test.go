package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// One daemon, an account limited to 2 parallel calls. c1 runs alone
// (600 s). c2 starts 10 s later: at its init the engine answers the
// shared end, 295 s; at its start the re-ask is answered Locked (the
// account is at its maximum, rating-protocol.md). When c2 ends, its debit
// reply says MaxSessionTime=0 (the balance is spent), which Debited
// ignores. So the answer at init must re-time c1, only sooner, when the
// re-ask gives no number: c1 is cut at the shared end (+305 s), not on
// its solo 600 s.
func TestLockedReaskAtStartRetimesPartySooner(t *testing.T) {
	for _, interval := range []time.Duration{0, 30 * time.Second} {
		t.Run(fmt.Sprintf("recheck_interval %v", interval), func(t *testing.T) {
			e := ratingtest.New(t)
			e.SetAccount(account, ratingtest.Account{Balance: 1.00, MaxParallel: 2}) // 600 s alone
			e.SetRate("", ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				rec := &cutRecorder{}
				var wg sync.WaitGroup
				d := newDaemon(e, interval, rec, &wg)
				t0 := time.Now()
				call(t, d, "c1")
				time.Sleep(10 * time.Second)
				call(t, d, "c2") // init: 295 s shared; start re-ask: Locked
				time.Sleep(time.Hour)
				synctest.Wait()
				shared := 10*time.Second + 295*time.Second
				for _, id := range []string{"c1", "c2"} {
					at, ok := rec.at(id)
					if !ok {
						t.Errorf("%s never cut", id)
						continue
					}
					if off := at.Sub(t0) - shared; off < -3*time.Second || off > 3*time.Second {
						t.Errorf("%s cut at +%v, shared end +%v: %v off", id, at.Sub(t0), shared, off)
					}
				}
				d.m.Shutdown()
				wg.Wait()
				// c1's debit comes after the engine purged its session (120 s
				// after the shared end): Failed; the daemon's spool forces it.
				t.Logf("balance %.4f, debited c1 %v c2 %v", e.Balance(account), e.Debited("c1"), e.Debited("c2"))
			})
		})
	}
}

// gatedRater holds the first MaxSessionTime until gate is closed, so a
// second init of the same Call-ID, on another proxy connection, passes
// admission meanwhile.
type gatedRater struct {
	*engineRater
	gate chan struct{}
	n    atomic.Int32
}

func (g *gatedRater) MaxSessionTime(ctx context.Context, engine string, q rating.Request) (rating.MaxTime, error) {
	if g.n.Add(1) == 1 {
		<-g.gate
	}
	return g.engineRater.MaxSessionTime(ctx, engine, q)
}

// Two inits of one Call-ID arrive together on two proxy connections. The
// second is tracked and answered Limited; the first is answered
// Duplicated callid at track, and must let go of nothing the tracked call
// owns: a release by Call-ID (0 s debit, the record deleted) would end
// the engine's session of the tracked call and lose its record, and after
// a crash its start would be answered Not found: unlimited.
func TestConcurrentDuplicateInitKeepsTrackedCall(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 1.00})
	e.SetRate("", ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		var wg sync.WaitGroup
		lim := session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit, SetupTime: 90 * time.Second,
			StaleTimeout: 24 * time.Hour, ProxyTimeout: 500 * time.Millisecond}
		r := &gatedRater{engineRater: &engineRater{e: e}, gate: make(chan struct{})}
		j := sessiontest.NewJournal()
		sp := &spool{e: e, wg: &wg}
		j.OnDebit = sp.deliver
		m := session.NewManager(lim, r, &cutRecorder{}, j, slog.New(slog.DiscardHandler))
		sp.m = m
		req := func(tag string) *session.InitRequest {
			return &session.InitRequest{CallID: "dup", RURI: "sip:0031650222333@example.com", Diverter: "None",
				SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=" + tag, FromTag: tag, Prepaid: "true"}
		}
		first := make(chan session.Reply, 1)
		go func() { first <- m.Init(req("a"), time.Now()) }()
		synctest.Wait() // the first init waits for the engine
		if got := m.Init(req("b"), time.Now()); got != session.ReplyLimited {
			t.Fatalf("second init: %s", got)
		}
		close(r.gate)
		if got := <-first; got != session.ReplyDuplicatedCallID {
			t.Fatalf("first init: %s", got)
		}
		wg.Wait()
		synctest.Wait()
		if _, ok := m.Get("dup"); !ok {
			t.Fatal("the call answered Limited is not tracked")
		}
		if got := e.Sessions(account); len(got) != 1 {
			t.Errorf("engine counts %v for the account while call dup runs Limited: its 0 s release hit the tracked call", got)
		}
		saved, ok := j.Saved("dup")
		if !ok {
			t.Errorf("the record of the call answered Limited was deleted from the state log")
		}
		// kill -9 now; the daemon restarts from its state log, then the
		// call is answered.
		m.Shutdown()
		restarted := session.NewManager(lim, &engineRater{e: e}, &cutRecorder{}, sessiontest.NewJournal(), slog.New(slog.DiscardHandler))
		if ok {
			restarted.Restore([]*session.Session{saved})
		}
		if got := restarted.Start("dup", "1:2", time.Now()); got != session.ReplyOk {
			t.Errorf("start after the restart: %s: the answered prepaid call has no timer", got)
		}
		restarted.Shutdown()
		wg.Wait()
	})
}

// OpenSIPS ends a ringing call (setup time passed, or an operator's
// terminate) with dlg_end_dlg, which for an early dialog only CANCELs the
// INVITE (modules/dialog/dlg_req_within.c, dlg_end_dlg: t_cancel_trans).
// A callee whose 200 OK crossed the CANCEL has answered all the same: the
// proxy relays the 200 OK (RFC 3261 16.7) and sends `start`. That start
// must find the call kept aside and end it, not answer Not found and leave
// it with no timer.
func TestCancelCrossedByAnswerEndedAtAnswer(t *testing.T) {
	lim := session.Limits{Limit: 60, PrepaidLimit: session.NoLimit, SetupTime: time.Minute, StaleTimeout: time.Hour}
	for _, how := range []string{"setup time", "operator terminate"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newEarlyFixture(t, lim, limited(600))
				f.m.Init(initReq("ring", "alice", "true"), time.Now().Add(-2*time.Minute))
				if how == "setup time" {
					f.m.Housekeep()
				} else if res := f.m.Terminate("ring"); res != session.TerminateRequested {
					t.Fatalf("terminate: %v", res)
				}
				if tg := waitEnd(t, f, time.Second); tg.CallID != "ring" || !tg.NoID {
					t.Fatalf("CANCEL: %+v", tg)
				}
				// The 200 OK crossed the CANCEL: the call is answered.
				got := f.m.Start("ring", "1:2", time.Now())
				select {
				case tg := <-f.ch:
					if tg.CallID != "ring" {
						t.Fatalf("ended %+v", tg)
					}
				case <-time.After(time.Hour):
					t.Fatalf("start after the CANCEL answered %s; the answered call was never ended", got)
				}
			})
		})
	}
}
