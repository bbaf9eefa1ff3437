package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
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

// The tests of issue 15 run two daemons' session managers, each with its
// own table, journal and debit delivery, against one fake engine that
// keeps the account's balance and sessions across them. They run on
// synctest's fake clock; the engine is called in-process (Handle), with
// the requests the rating client would send.

const engineName = "engine1"

// engineRater is a Rater asking the shared fake engine in-process.
type engineRater struct {
	e    *ratingtest.Engine
	fail atomic.Bool // MaxSessionTime fails as an unreachable engine would
	hang atomic.Bool // probes get no answer before their deadline
	hung atomic.Int64
	// reconnects: how many times the connection to the engine was made
	// again (answers carry generation reconnects+1; restartEngine).
	reconnects atomic.Uint64
}

func (r *engineRater) Pick(string) string     { return engineName }
func (r *engineRater) Acquire(string, string) {}
func (r *engineRater) Release(string)         {}

func (r *engineRater) MaxSessionTime(ctx context.Context, _ string, q rating.Request) (rating.MaxTime, error) {
	if r.fail.Load() {
		return rating.MaxTime{}, fmt.Errorf("%w: engine unreachable", rating.ErrNotSent)
	}
	if r.hang.Load() && strings.Contains(q.CallID, "~recheck") {
		r.hung.Add(1)
		<-ctx.Done()
		return rating.MaxTime{}, ctx.Err()
	}
	line := fmt.Sprintf("MaxSessionTime CallId=%s From=%s To=%s Gateway=%s Duration=%d Application=%s",
		q.CallID, q.From, q.To, q.Gateway, q.Duration, q.Application)
	if q.Connected {
		line += " State=Connected"
	}
	reply := r.e.Handle(line)
	if reply == "" {
		return rating.MaxTime{}, errors.New("no answer")
	}
	mt, err := rating.ParseMaxSessionTime(reply)
	mt.Generation = r.reconnects.Load() + 1
	return mt, err
}

// spool delivers each debit owed to the engine at once, in the
// background, the reply told to the manager: the daemon's debit spool in
// short, as sessiontest.Journal's OnDebit.
type spool struct {
	e     *ratingtest.Engine
	m     *session.Manager
	wg    *sync.WaitGroup
	rater *engineRater // its connection's generation, if set
}

func (s *spool) deliver(o session.Owed) {
	d := o.Debit
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		line := fmt.Sprintf("DebitBalance CallId=%s From=%s To=%s Gateway=%s Duration=%d Application=%s",
			d.CallID, d.From, d.To, d.Gateway, d.Duration, d.Application)
		reply := s.e.Handle(line)
		if reply == "Failed" && d.Duration > 0 && s.rater != nil {
			// The engine does not know the call (it restarted): the
			// spool sends it again with Force=1; a 0 s release it
			// drops (debit/spool.go).
			reply = s.e.Handle(line + " Force=1")
			o.Debit.Force = true
		}
		if dr, err := rating.ParseDebit(reply); err == nil {
			if s.rater != nil {
				dr.Generation = s.rater.reconnects.Load() + 1
			}
			s.m.Debited(o, dr)
		}
	}()
}

// cutRecorder records when each dialog was ended.
type cutRecorder struct {
	dialogtest.Ender[dialog.Target]
}

func (c *cutRecorder) at(callID string) (time.Time, bool) {
	return c.EndedAt(func(t dialog.Target) bool { return t.CallID == callID })
}

type daemon struct {
	m     *session.Manager
	rater *engineRater
}

func newDaemon(e *ratingtest.Engine, interval time.Duration, cuts *cutRecorder, wg *sync.WaitGroup) daemon {
	return newDaemonCapped(e, interval, session.NoLimit, cuts, wg)
}

// newDaemonCapped is newDaemon with prepaid_limit = prepaidLimit.
func newDaemonCapped(e *ratingtest.Engine, interval time.Duration, prepaidLimit int, cuts *cutRecorder, wg *sync.WaitGroup) daemon {
	r := &engineRater{e: e}
	sp := &spool{e: e, wg: wg, rater: r}
	j := sessiontest.NewJournal()
	j.OnDebit = sp.deliver
	m := session.NewManager(session.Limits{Limit: session.NoLimit, PrepaidLimit: prepaidLimit,
		SetupTime: 90 * time.Second, StaleTimeout: 24 * time.Hour, ProxyTimeout: 500 * time.Millisecond,
		RecheckInterval: interval}, r, cuts, j, slog.New(slog.DiscardHandler))
	sp.m = m
	return daemon{m: m, rater: r}
}

const account = "alice@example.com"

func call(t *testing.T, d daemon, id string) {
	t.Helper()
	r := &session.InitRequest{CallID: id, RURI: "sip:0031650222333@example.com", Diverter: "None",
		SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=" + id, FromTag: id, Prepaid: "true"}
	if got := d.m.Init(r, time.Now()); got != session.ReplyLimited {
		t.Fatalf("init %s: %s", id, got)
	}
	if got := d.m.Start(id, "1:2", time.Now()); got != session.ReplyOk {
		t.Fatalf("start %s: %s", id, got)
	}
}

// step is one action of a case: at a moment after the first call, a call
// starts on daemon A or B, or a call stops.
type step struct {
	at     time.Duration
	callID string
	on     string // "A" or "B"
	stop   bool
}

// The cases of issue 15's table. With the balance (0.05 at
// 0.10/min, 30 s of talk) the shared end comes within one step of a call's
// start; with 1.00 (600 s) it is far, and re-asks learn of it well before.
var cases = []struct {
	name  string
	steps []step
}{
	{"c1 on A, c2 on B 2 s later", []step{{0, "c1", "A", false}, {2 * time.Second, "c2", "B", false}}},
	{"c2 on B stops after 3 s", []step{{0, "c1", "A", false}, {2 * time.Second, "c2", "B", false}, {5 * time.Second, "c2", "B", true}}},
	{"c1, c3 on A, c2 on B", []step{{0, "c1", "A", false}, {2 * time.Second, "c2", "B", false}, {4 * time.Second, "c3", "A", false}}},
	{"c1 on A, c2 and c3 on B", []step{{0, "c1", "A", false}, {2 * time.Second, "c2", "B", false}, {4 * time.Second, "c3", "B", false}}},
}

const perSecond = 0.10 / 60

// sharedEnd is the engine's model: after the last step, the calls still
// running (all at one price) share what is left of balance seconds of talk.
func sharedEnd(balance time.Duration, steps []step) time.Duration {
	started := map[string]time.Duration{}
	left, last := balance, time.Duration(0)
	for _, s := range steps {
		left -= time.Duration(len(started)) * (s.at - last)
		last = s.at
		if s.stop {
			delete(started, s.callID)
		} else {
			started[s.callID] = s.at
		}
	}
	return last + left/time.Duration(len(started))
}

func running(steps []step) []string {
	var ids []string
	stopped := map[string]bool{}
	for _, s := range steps {
		stopped[s.callID] = s.stop
	}
	for _, s := range steps {
		if !s.stop && !stopped[s.callID] {
			ids = append(ids, s.callID)
		}
	}
	return ids
}

// runCase plays a case on two daemons and returns when each call was cut
// (relative to the first call) and the account's final balance.
func runCase(t *testing.T, interval time.Duration, credit float64, steps []step) (cuts map[string]time.Duration, balance float64) {
	e := ratingtest.New(t) // outside the bubble: its listener is real I/O
	e.SetAccount(account, ratingtest.Account{Balance: credit})
	e.SetRate("", ratingtest.PerMinute(0.10))
	cuts = map[string]time.Duration{}
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now) // the bubble's clock, read by Handle's callers
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		ds := map[string]daemon{"A": newDaemon(e, interval, rec, &wg), "B": newDaemon(e, interval, rec, &wg)}
		t0 := time.Now()
		for _, s := range steps {
			time.Sleep(time.Until(t0.Add(s.at)))
			if s.stop {
				ds[s.on].m.Stop(s.callID)
				continue
			}
			call(t, ds[s.on], s.callID)
		}
		time.Sleep(time.Until(t0.Add(time.Hour))) // every call has ended by then
		synctest.Wait()
		for _, s := range steps {
			if at, ok := rec.at(s.callID); ok {
				cuts[s.callID] = at.Sub(t0)
			}
		}
		for _, d := range ds {
			if p, inProgress, _ := d.m.Counts(); p+inProgress != 0 {
				t.Errorf("calls still tracked after an hour: %d", p+inProgress)
			}
			d.m.Shutdown()
		}
		wg.Wait()
		if s := e.Sessions(account); len(s) != 0 {
			t.Errorf("engine still counts sessions %v", s)
		}
	})
	return cuts, e.Balance(account)
}

func TestRecheckTwoDaemonsShareOneBalance(t *testing.T) {
	const interval = 30 * time.Second // the default
	for _, credit := range []float64{0.05, 1.00} {
		talk := time.Duration(credit / perSecond * float64(time.Second))
		// The longest step a call can be in when the shared end comes:
		// half the time it believes left, at most the interval.
		maxStep := min(interval, talk/2)
		for _, c := range cases {
			t.Run(fmt.Sprintf("%v of talk/%s", talk, c.name), func(t *testing.T) {
				cuts, balance := runCase(t, interval, credit, c.steps)
				shared := sharedEnd(talk, c.steps)
				ids := running(c.steps)
				over := time.Duration(0)
				for _, id := range ids {
					cut, ok := cuts[id]
					if !ok {
						t.Errorf("%s never cut", id)
						continue
					}
					// Late by one step at most. Early by 3 s at most: the
					// engine's answers in whole seconds (rounded down),
					// debits rounded to whole seconds, and a probe
					// answering 0 (under about 2 s left) cuts at once.
					d := cut - shared
					if d < -3*time.Second || d > maxStep {
						t.Errorf("%s cut at +%v, shared end +%v: %v off, one step is %v", id, cut, shared, d, maxStep)
					}
					if talk > 2*interval && (d < -3*time.Second || d > 2*time.Second) {
						t.Errorf("%s cut at +%v, %v off the shared end, which was announced more than a step ahead", id, cut, d)
					}
					over = max(over, d)
					t.Logf("%s: cut at +%v, shared end +%v", id, cut, shared)
				}
				// One step's price: every call of the account running one
				// step more.
				floor := -float64(len(ids)) * maxStep.Seconds() * perSecond
				if balance < floor-1e-9 {
					t.Errorf("balance %.4f, below zero by more than one step's price (%.4f)", balance, floor)
				}
				t.Logf("balance %.4f, latest cut %v after the shared end", balance, over)
			})
		}
	}
}

// Without re-asks, the overruns are back: the test above would see
// them.
func TestRecheckOffReproducesTheOverrun(t *testing.T) {
	c := cases[3]
	cuts, balance := runCase(t, 0, 0.05, c.steps)
	if cuts["c1"] < 29*time.Second {
		t.Errorf("c1 cut at +%v without re-asks; the issue saw it run its solo 30 s", cuts["c1"])
	}
	if balance > -0.02 {
		t.Errorf("balance %.4f without re-asks; the issue saw about -0.03", balance)
	}
	t.Logf("recheck off: c1 cut at +%v, balance %.4f", cuts["c1"], balance)
}

// A failing engine during re-asks ends no call: each keeps its limit, and
// the re-asks resume when the engine answers again.
func TestRecheckFailingEngineEndsNoCall(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 10}) // 6000 s
	e.SetRate("", ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		a, b := newDaemon(e, 10*time.Second, rec, &wg), newDaemon(e, 10*time.Second, rec, &wg)
		t0 := time.Now()
		call(t, a, "c1")
		a.rater.fail.Store(true)
		before := e.Count("MaxSessionTime")
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if _, cut := rec.at("c1"); cut {
			t.Fatal("a failing re-ask ended the call")
		}
		s, ok := a.m.Get("c1")
		if !ok || s.Limit != 6000 {
			t.Fatalf("c1 lost its limit while the engine failed: %+v", s)
		}
		if n := e.Count("MaxSessionTime"); n != before {
			t.Fatalf("%d requests reached a failing engine", n-before)
		}
		if n := e.Count("DebitBalance"); n != 0 {
			t.Fatalf("%d releases of probes that were never sent", n)
		}
		// The engine answers again; a call of the account starts on B
		// and halves the shared end: A hears of it at its next step.
		a.rater.fail.Store(false)
		call(t, b, "c2")
		shared := time.Since(t0) + time.Duration(float64(6000*time.Second-time.Since(t0))/2)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		s, _ = a.m.Get("c1")
		if d := s.EndAt.Sub(t0.Add(shared)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("after the engine came back, c1 ends at +%v, shared end +%v", s.EndAt.Sub(t0), shared)
		}
		a.m.Shutdown()
		b.m.Shutdown()
		wg.Wait()
	})
}

// Calls restored at a restart ask again too, their first re-asks spread
// over the first step.
func TestRecheckAfterRestore(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 1}) // 600 s
	e.SetRate("", ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		const interval = 30 * time.Second
		a, b := newDaemon(e, interval, rec, &wg), newDaemon(e, interval, rec, &wg)
		t0 := time.Now()
		call(t, a, "c1")
		var saved []*session.Session
		a.m.Each(func(s *session.Session) { c := *s; saved = append(saved, &c) })
		a.m.Shutdown()
		time.Sleep(10 * time.Second)
		restarted := newDaemon(e, interval, rec, &wg)
		restarted.m.Restore(saved)
		call(t, b, "c2") // 590 s left for two calls: both end at +305 s
		shared := 10*time.Second + 295*time.Second
		time.Sleep(interval)
		synctest.Wait()
		s, ok := restarted.m.Get("c1")
		if !ok {
			t.Fatal("c1 lost at the restart")
		}
		if d := s.EndAt.Sub(t0.Add(shared)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("restored c1 ends at +%v, shared end +%v: its re-ask did not come within one step", s.EndAt.Sub(t0), shared)
		}
		restarted.m.Shutdown()
		b.m.Shutdown()
		wg.Wait()
	})
}

// A re-ask the engine does not answer gives up at its deadline, holds no
// lock meanwhile (the proxy's requests are answered), ends no call, and is
// tried again at the next step.
func TestRecheckHungEngineDelaysNothing(t *testing.T) {
	e := ratingtest.New(t)
	e.SetAccount(account, ratingtest.Account{Balance: 10})
	e.SetRate("", ratingtest.PerMinute(0.10))
	synctest.Test(t, func(t *testing.T) {
		e.SetClock(time.Now)
		rec := &cutRecorder{}
		var wg sync.WaitGroup
		a := newDaemon(e, 10*time.Second, rec, &wg)
		call(t, a, "c1")
		a.rater.hang.Store(true)
		time.Sleep(10 * time.Second) // the first re-ask is out, hanging
		synctest.Wait()
		if a.rater.hung.Load() != 1 {
			t.Fatalf("%d re-asks hanging, want 1", a.rater.hung.Load())
		}
		// The proxy's requests meanwhile: answered, from the same manager.
		r := &session.InitRequest{CallID: "post", RURI: "sip:1@example.com", Diverter: "None", SourceIP: "10.0.0.1",
			From: "<sip:bob@example.com>", Prepaid: "false", CallLimit: "1"}
		if got := a.m.Init(r, time.Now()); got != session.ReplyLimited {
			t.Fatalf("init during a hanging re-ask: %s", got)
		}
		if a.m.Start("post", "1:3", time.Now()) != session.ReplyOk || a.m.Stop("post") != session.ReplyOk {
			t.Fatal("start/stop during a hanging re-ask")
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if _, cut := rec.at("c1"); cut {
			t.Fatal("a hanging engine ended the call")
		}
		if n := a.rater.hung.Load(); n < 10 {
			t.Errorf("%d re-asks in 5 minutes with a 10 s interval: a hung one was not given up at its deadline", n)
		}
		a.m.Shutdown() // ends a probe still out, which is released too
		wg.Wait()
		// A probe whose fate is unknown may be counted: each is released.
		if n, hung := e.Count("DebitBalance"), a.rater.hung.Load(); int64(n) != hung {
			t.Errorf("%d releases for %d probes of unknown fate", n, hung)
		}
	})
}
