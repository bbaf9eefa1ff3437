package session_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// askHookRater is a real rating.Pool whose first MaxSessionTime (the
// engine already picked) first runs beforeAsk: what other calls do while
// this one waits for the engine's connection.
type askHookRater struct {
	*rating.Pool
	beforeAsk func(engine string)
}

func (p *askHookRater) MaxSessionTime(ctx context.Context, engine string, r rating.Request) (rating.MaxTime, error) {
	if f := p.beforeAsk; f != nil {
		p.beforeAsk = nil
		f(engine)
	}
	return p.Pool.MaxSessionTime(ctx, engine, r)
}

// Two calls of one party set up together while the engine picked for the
// first one restarts (its connection drops and one reconnect fails, then
// it is back): the second call is picked while the first is still being
// asked, sees the engine failing and goes to the other engine. Both are
// admitted, each engine counting one call of the account on the whole
// balance: the account may talk twice its credit (rating-protocol.md:
// all calls of one party must go to the same engine).
func TestConcurrentInitsOfOnePartyStayOnOneEngine(t *testing.T) {
	a, b := ratingtest.New(t), ratingtest.New(t)
	for _, e := range []*ratingtest.Engine{a, b} {
		e.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
		e.SetRate("", ratingtest.PerMinute(0.1))
	}
	const backoff = 20 * time.Millisecond
	pool := rating.NewPool([]string{a.Addr(), b.Addr()}, rating.Options{Timeout: 2 * time.Second, MinBackoff: backoff, MaxBackoff: backoff}, nil)
	t.Cleanup(pool.Close)
	r := &askHookRater{Pool: pool}
	j := sessiontest.NewJournal()
	m := NewManager(Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 2 * time.Second, SetupTime: time.Hour, StaleTimeout: time.Hour},
		r, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, j, slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)

	r.beforeAsk = func(engine string) {
		first := a
		if b.Addr() == rating.NormalizeAddr(engine) {
			first = b
		}
		// The engine restarts: a request of another party finds the
		// connection gone and the engine not listening yet.
		first.Stop()
		other := rating.Request{CallID: "x", From: "sip:bob@example.com", To: "sip:dest@example.com", Gateway: "10.0.0.1", Application: "audio", Duration: 60}
		if _, err := pool.MaxSessionTime(context.Background(), engine, other); err == nil {
			t.Error("a stopped engine answered")
		}
		if err := first.Restart(true); err != nil {
			t.Error(err)
		}
		// Held on the first call's engine, whose connection is in its
		// reconnect backoff: refused (fail closed) or, if the engine is
		// reached, rated there; never on the other engine.
		if got := m.Init(initReq("c2", "alice", "true"), time.Now()); got != ReplyLimited && got != ReplyError {
			t.Errorf("init c2: %v", got)
		}
		time.Sleep(3 * backoff) // the first call's turn on the connection comes after the backoff
	}
	if got := m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
		t.Fatalf("init c1: %v", got)
	}
	s1, ok1 := m.Get("c1")
	s2, ok2 := m.Get("c2")
	if !ok1 {
		t.Fatal("c1 not tracked")
	}
	if !ok2 {
		s2 = s1 // refused: check no other engine counts the party
		for _, e := range []*ratingtest.Engine{a, b} {
			if rating.NormalizeAddr(e.Addr()) != rating.NormalizeAddr(s1.Engine) && len(e.Sessions("alice@example.com")) > 0 {
				t.Fatalf("c2 refused, yet engine %s counts %v besides c1's engine %s", e.Addr(), e.Sessions("alice@example.com"), s1.Engine)
			}
		}
	}
	if s1.Engine != s2.Engine {
		t.Fatalf("one party's calls on two engines (two balances): c1 on %s, c2 on %s; engine %s counts %v, engine %s counts %v",
			s1.Engine, s2.Engine, a.Addr(), a.Sessions("alice@example.com"), b.Addr(), b.Sessions("alice@example.com"))
	}
}

// The same split from a reload that adds an engine while the party's first
// call is being asked: rendezvous hashing moves the party to the new engine
// for its second call, as it has no tracked call yet.
func TestReloadDuringInitKeepsPartyOnOneEngine(t *testing.T) {
	a, b := ratingtest.New(t), ratingtest.New(t)
	setUp := func(e *ratingtest.Engine) {
		e.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
		e.SetRate("", ratingtest.PerMinute(0.1))
	}
	setUp(a)
	setUp(b)
	pool := rating.NewPool([]string{a.Addr(), b.Addr()}, rating.Options{Timeout: 2 * time.Second}, nil)
	t.Cleanup(pool.Close)
	r := &askHookRater{Pool: pool}
	m := NewManager(Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 2 * time.Second, SetupTime: time.Hour, StaleTimeout: time.Hour},
		r, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, sessiontest.NewJournal(), slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)

	r.beforeAsk = func(engine string) {
		// The operator adds an engine (reload); the first try that moves
		// alice's hash is the reload that happened.
		for i := 0; i < 30 && pool.Pick("sip:alice@example.com") == engine; i++ {
			c := ratingtest.New(t)
			setUp(c)
			pool.SetAddrs([]string{a.Addr(), b.Addr(), c.Addr()})
		}
		if got := m.Init(initReq("c2", "alice", "true"), time.Now()); got != ReplyLimited {
			t.Errorf("init c2: %v", got)
		}
	}
	if got := m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
		t.Fatalf("init c1: %v", got)
	}
	s1, _ := m.Get("c1")
	s2, _ := m.Get("c2")
	if s1.Engine != s2.Engine {
		t.Fatalf("one party's calls on two engines after a reload during its first init: c1 on %s, c2 on %s", s1.Engine, s2.Engine)
	}
}
