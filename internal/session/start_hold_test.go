package session_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// A call that rang before it was answered, on one daemon: c1 runs; c2 is
// set up at +10 s (the engine's answer, 295 s, counts c1 and c2 from
// now: the account's calls end at +305 s) and answered at +40 s, where
// its start gets no new number: the re-ask is answered Locked (an account
// at its parallel maximum, rating-protocol.md), fails, or is not made at
// all because the state log is late. c2 keeps its 295 s from its answer;
// c1 must end by +305 s, the end the engine gave at c2's init. Brought
// only to "295 s from c2's answer" (+335 s), c1 talks the ring time
// twice: the account talks 630 s (Locked, failing) on 600 s of credit; a
// late start re-timed nothing (895 s).
func TestStartWithoutNumberHoldsPartyToInitAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		account ratingtest.Account
		before  func(d daemon, j *sessiontest.Journal) (after func())
		reply   session.Reply
	}{
		{"re-ask Locked", ratingtest.Account{Balance: 1.00, MaxParallel: 2},
			func(daemon, *sessiontest.Journal) func() { return func() {} }, session.ReplyOk},
		{"re-ask fails", ratingtest.Account{Balance: 1.00},
			func(d daemon, _ *sessiontest.Journal) func() {
				d.rater.fail.Store(true)
				return func() { d.rater.fail.Store(false) }
			}, session.ReplyOk},
		{"state log late at start", ratingtest.Account{Balance: 1.00},
			func(_ daemon, j *sessiontest.Journal) func() { return j.Stall() }, session.ReplyError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ratingtest.New(t)
			e.SetAccount(account, tc.account)
			e.SetRate("", ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				rec := &cutRecorder{}
				var wg sync.WaitGroup
				r := &engineRater{e: e}
				sp := &spool{e: e, wg: &wg}
				j := sessiontest.NewJournal()
				j.OnDebit = sp.deliver
				m := session.NewManager(session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit,
					SetupTime: 90 * time.Second, StaleTimeout: 24 * time.Hour, ProxyTimeout: 500 * time.Millisecond}, r, rec, j,
					slog.New(slog.DiscardHandler))
				sp.m = m
				d := daemon{m: m, rater: r}
				t0 := time.Now()
				call(t, d, "c1")
				time.Sleep(10 * time.Second)
				req := &session.InitRequest{CallID: "c2", RURI: "sip:0031650222333@example.com", Diverter: "None",
					SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=c2", FromTag: "c2", Prepaid: "true"}
				if got := m.Init(req, time.Now()); got != session.ReplyLimited {
					t.Fatalf("init c2: %s", got)
				}
				time.Sleep(30 * time.Second) // ringing
				after := tc.before(d, j)
				if got := m.Start("c2", "1:3", time.Now()); got != tc.reply {
					t.Errorf("start c2: %s, want %s", got, tc.reply)
				}
				after()
				time.Sleep(time.Hour)
				synctest.Wait()
				starts := map[string]time.Duration{"c1": 0, "c2": 40 * time.Second}
				talk := time.Duration(0)
				for id, start := range starts {
					at, ok := rec.at(id)
					if !ok {
						t.Fatalf("%s never cut", id)
					}
					talk += at.Sub(t0) - start
					t.Logf("%s cut at +%v", id, at.Sub(t0))
				}
				if c1, _ := rec.at("c1"); c1.Sub(t0) > 305*time.Second {
					t.Errorf("c1 cut at +%v, after the end the engine gave at c2's init (+305 s)", c1.Sub(t0))
				}
				if talk > 601*time.Second {
					t.Errorf("the account talked %v on 600 s of credit", talk)
				}
				m.Shutdown()
				wg.Wait()
			})
		})
	}
}

// The same hold for a call answered while the daemon was down: b was set
// up 30 s before the restore (the engine's answer, 298 s, counted a and b
// from then) and answered 20 s before it. a, answered before b's init,
// ends by b's init + 298 s, not by b's own end (10 s later). Unless 298 s
// is b's cap (prepaid_limit), not the engine's answer: then a keeps its
// end, and b's debit re-times it.
func TestMissedAnswerHoldsPartyToInitAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cap   int
		aEnds time.Duration // from the restore
	}{
		{"engine's answer", session.NoLimit, 268 * time.Second},
		{"b's cap", 298, 500 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit}, limited(298))
				now := time.Now()
				party := "alice@example.com"
				a := &session.Session{CallID: "a", Party: party, RURI: "sip:x@example.com", Engine: "engine1",
					Prepaid: true, Owed: true, Limit: 600, Cap: session.NoLimit, Created: now.Add(-110 * time.Second),
					Answered: now.Add(-100 * time.Second), EndAt: now.Add(500 * time.Second),
					Dialog: sipdialog.ID{Entry: 1, ID: 1}, HasDialog: true}
				b := &session.Session{CallID: "b", Party: party, RURI: "sip:y@example.com", Engine: "engine1",
					Prepaid: true, Owed: true, Limit: 298, Cap: tc.cap, Created: now.Add(-30 * time.Second)}
				ringing := session.Ringing([]*session.Session{a, b}, nil)
				f.m.Restore([]*session.Session{a, b})
				f.m.FindMissedAnswers(context.Background(), lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
					return sipdialog.Found{Exists: true, Answered: true, Dialog: sipdialog.ID{Entry: 2, ID: 2}, HasDialog: true,
						AnsweredAt: now.Add(-20 * time.Second)}, nil
				}), ringing)
				ga, _ := f.m.Get("a")
				gb, _ := f.m.Get("b")
				if d := ga.EndAt.Sub(now.Add(tc.aEnds)); d < -time.Second || d > time.Second {
					t.Errorf("a ends %v from the restore, want %v", ga.EndAt.Sub(now), tc.aEnds)
				}
				if want := now.Add(-20 * time.Second).Add(298 * time.Second); !gb.EndAt.Equal(want) {
					t.Errorf("b ends %v, want its 298 s from its answer", gb.EndAt.Sub(want))
				}
			})
		})
	}
}

// The hold must not end a call in the past: c2 rings longer (15 s) than
// the engine gave at its init (10 s), so c1 has talked past that end by
// the time c2 is answered (its re-ask Locked). c1 is cut then, and
// debited what it talked, not that end: a debit capped at an end already
// past would not bill the last 5 s.
func TestHoldToInitAnswerNeverEndsACallInThePast(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 0.05, MaxParallel: 2}) // 30 s alone
	e.SetRate("", ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		d := newDaemon(e, 0, rec, &wg)
		t0 := time.Now()
		call(t, d, "c1")
		time.Sleep(10 * time.Second)
		req := &session.InitRequest{CallID: "c2", RURI: "sip:0031650222333@example.com", Diverter: "None",
			SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=c2", FromTag: "c2", Prepaid: "true"}
		if got := d.m.Init(req, time.Now()); got != session.ReplyLimited {
			t.Fatalf("init c2: %s", got)
		}
		time.Sleep(15 * time.Second)
		if got := d.m.Start("c2", "1:3", time.Now()); got != session.ReplyOk {
			t.Fatalf("start c2: %s", got)
		}
		synctest.Wait()
		if at, ok := rec.at("c1"); !ok || at.Sub(t0) != 25*time.Second {
			t.Errorf("c1 cut at +%v (cut: %v), want at c2's start, +25 s", at.Sub(t0), ok)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		d.m.Shutdown()
		wg.Wait()
		if got := e.Debited("c1"); len(got) != 1 || got[0] != 25 {
			t.Errorf("c1 debited %v, want the 25 s it talked", got)
		}
	})
}

// The hold is the engine's answer, not the call's own cap: with
// prepaid_limit 60 s, c2 is limited to 60 s although the engine gave the
// account's calls 295 s at its init. When its start gets no number, c1
// must not be cut at c2's cap: c2 ends first, and its debit's reply
// re-times c1.
func TestHoldToInitAnswerIsNotTheNewCallsCap(t *testing.T) {
	for _, reply := range []string{"Locked", "fails"} {
		t.Run(reply, func(t *testing.T) {
			e := ratingtest.New(t)
			e.SetAccount(account, ratingtest.Account{Balance: 1.00, MaxParallel: map[string]int{"Locked": 2, "fails": 0}[reply]})
			e.SetRate("", ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				rec := &cutRecorder{}
				var wg sync.WaitGroup
				d := newDaemon(e, 0, rec, &wg)
				t0 := time.Now()
				call(t, d, "c1") // before the cap: 600 s
				lim := d.m.Limits()
				lim.PrepaidLimit = 60
				d.m.SetLimits(lim)
				time.Sleep(10 * time.Second)
				req := &session.InitRequest{CallID: "c2", RURI: "sip:0031650222333@example.com", Diverter: "None",
					SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=c2", FromTag: "c2", Prepaid: "true"}
				if got := d.m.Init(req, time.Now()); got != session.ReplyLimited {
					t.Fatalf("init c2: %s", got)
				}
				time.Sleep(5 * time.Second)
				d.rater.fail.Store(reply == "fails")
				if got := d.m.Start("c2", "1:3", time.Now()); got != session.ReplyOk {
					t.Fatalf("start c2: %s", got)
				}
				d.rater.fail.Store(false)
				time.Sleep(time.Hour)
				synctest.Wait()
				if at, _ := rec.at("c2"); at.Sub(t0) != 75*time.Second {
					t.Errorf("c2 cut at +%v, want its 60 s cap from +15 s", at.Sub(t0))
				}
				// c2 talked 60 s: 600 - 60 = 540 s of c1's talk in all.
				if at, _ := rec.at("c1"); at.Sub(t0) < 535*time.Second || at.Sub(t0) > 541*time.Second {
					t.Errorf("c1 cut at +%v, want about +540 s (the balance less c2's 60 s)", at.Sub(t0))
				}
				d.m.Shutdown()
				wg.Wait()
			})
		})
	}
}
