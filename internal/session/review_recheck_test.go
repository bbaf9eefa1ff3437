package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// Review of the re-asks, re-timing and engine affinity for calls that
// escape their limits. The tests below FAIL on purpose: each is a way a
// prepaid account talks past its credit that no small, sure fix closes;
// the comment over each says why and what would.

// callTo sets up and answers call id of the account to ruri on d.
func callTo(t *testing.T, d daemon, id, ruri string) {
	t.Helper()
	r := &session.InitRequest{CallID: id, RURI: ruri, Diverter: "None", SourceIP: "10.0.0.1",
		From: "<sip:" + account + ">;tag=" + id, FromTag: id, Prepaid: "true"}
	if got := d.m.Init(r, time.Now()); got != session.ReplyLimited {
		t.Fatalf("init %s: %s", id, got)
	}
	if got := d.m.Start(id, "1:2", time.Now()); got != session.ReplyOk {
		t.Fatalf("start %s: %s", id, got)
	}
}

// The engine restarts while a call runs and forgets the sessions it
// counted (rating-protocol.md: the sessions are the engine's own state;
// Debited's comment names this case). The party's next call starts: its
// re-ask is answered from the whole balance, as if that call were alone,
// and Start re-times every call of the party to it, the running one
// included, which the engine no longer counts. Both calls then run the
// whole credit: the account talks about twice its balance. Re-asks do
// not help: each probe's release is answered for the new call alone too.
//
// Not fixed: nothing the engine answers says it lost the calls (a forced
// debit says so, but only when a call ends). A fix would keep the party's
// running calls from being moved later once their engine may have
// restarted (its connection was lost), until a debit of the party is
// answered Ok without Force; or register them again.
func TestReviewEngineRestartDoesNotStretchRunningCalls(t *testing.T) {
	for _, interval := range []time.Duration{0, 30 * time.Second} {
		t.Run(fmt.Sprintf("recheck_interval %v", interval), func(t *testing.T) {
			e := ratingtest.New(t)
			e.SetAccount(account, ratingtest.Account{Balance: 1.00}) // 600 s alone
			e.SetRate("", ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				rec := &cutRecorder{}
				var wg sync.WaitGroup
				d := newDaemon(e, interval, rec, &wg)
				t0 := time.Now()
				call(t, d, "c1")
				time.Sleep(100 * time.Second)
				e.ForgetSessions() // the engine restarted
				call(t, d, "c2")
				time.Sleep(time.Hour)
				synctest.Wait()
				// 500 s of credit left at +100 s, for two calls: 250 s each.
				shared := 350 * time.Second
				talk := time.Duration(0)
				for id, start := range map[string]time.Duration{"c1": 0, "c2": 100 * time.Second} {
					at, ok := rec.at(id)
					if !ok {
						t.Errorf("%s never cut", id)
						continue
					}
					talk += at.Sub(t0) - start
					if off := at.Sub(t0) - shared; off > 3*time.Second {
						t.Errorf("%s cut at +%v, %v after the credit ran out at +%v", id, at.Sub(t0), off, shared)
					}
				}
				if talk > 603*time.Second {
					t.Errorf("the account talked %v on 600 s of credit", talk)
				}
				d.m.Shutdown()
				wg.Wait()
			})
		})
	}
}

// A party's call ends while its engine is down: the debit waits in the
// spool for that engine. The party's affinity goes with its last call
// (removeLocked -> Release), so its next call is picked onto the other,
// healthy engine, which rates it on the balance in CDRTool's database,
// where the first call's cost is not yet taken: the party talks that cost
// again. With one engine the call would be refused (fail closed).
//
// Not fixed: the hold must last until the spool has delivered (or
// dropped) the debit, so it belongs to the debit spool, the journal and
// the daemon's wiring (debit.Options: hold and let go of the party on
// the pool as debits are queued, restored, moved and finished), not to
// session alone.
func TestReviewPartyHeldOnEngineItOwesADebit(t *testing.T) {
	a, b := ratingtest.New(t), ratingtest.New(t)
	for _, e := range []*ratingtest.Engine{a, b} {
		e.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
		e.SetRate("", ratingtest.PerMinute(0.1))
	}
	pool := rating.NewPool([]string{a.Addr(), b.Addr()}, rating.Options{Timeout: time.Second, MinBackoff: time.Minute, MaxBackoff: time.Minute}, nil)
	t.Cleanup(pool.Close)
	j := sessiontest.NewJournal()
	m := session.NewManager(session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit, ProxyTimeout: 2 * time.Second,
		SetupTime: time.Hour, StaleTimeout: time.Hour}, pool, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, j,
		slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)

	if got := m.Init(initReq("c1", "alice", "true"), time.Now()); got != session.ReplyLimited {
		t.Fatalf("init c1: %v", got)
	}
	if got := m.Start("c1", "1:2", time.Now()); got != session.ReplyOk {
		t.Fatalf("start c1: %v", got)
	}
	s1, _ := m.Get("c1")
	first := a
	if rating.NormalizeAddr(b.Addr()) == s1.Engine {
		first = b
	}
	first.Stop()
	time.Sleep(1100 * time.Millisecond) // c1 talks a second
	if got := m.Stop("c1"); got != session.ReplyOk {
		t.Fatalf("stop c1: %v", got)
	}
	owed := j.Debits()
	if len(owed) != 1 || owed[0].Engine != s1.Engine || owed[0].Debit.Duration == 0 {
		t.Fatalf("debits owed %+v, want c1's to %s", owed, s1.Engine)
	}
	// Another party's call finds the engine down: the pool marks it.
	bob := rating.Request{CallID: "x", From: "sip:bob@example.com", To: "sip:dest@example.com", Gateway: "10.0.0.1", Application: "audio", Duration: 60}
	if _, err := pool.MaxSessionTime(context.Background(), s1.Engine, bob); err == nil {
		t.Fatal("a stopped engine answered")
	}
	got := m.Init(initReq("c2", "alice", "true"), time.Now())
	if s2, ok := m.Get("c2"); ok && s2.Engine != s1.Engine {
		t.Fatalf("c2 (%v) rated on %s while c1's debit is still owed to %s: the balance there does not carry it", got, s2.Engine, s1.Engine)
	}
}
