package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// poolRater is a real rating.Pool whose re-ask at start first runs
// beforeReask: what happens on other connections meanwhile.
type poolRater struct {
	*rating.Pool
	beforeReask func()
}

func (p *poolRater) MaxSessionTime(ctx context.Context, engine string, r rating.Request) (rating.MaxTime, error) {
	if r.Connected && p.beforeReask != nil {
		p.beforeReask()
	}
	return p.Pool.MaxSessionTime(ctx, engine, r)
}

// The proxy's workers each have a connection: the call's stop can be
// served, and its debit delivered, while its start waits to re-ask the
// engine (its record's fsync, the engine's one connection). The re-ask
// then reaches the engine after the debit, and the engine, which restarts
// or creates a session for a CallId asked about, counts the ended call
// again: nothing ever debits it, so it shortens (or Locks) the account's
// other calls until the engine purges it, 120 s after its cap ran out.
func TestStopDuringStartReaskLeavesNoEngineSession(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
	eng.SetRate("", ratingtest.PerMinute(0.1))
	pool := rating.NewPool([]string{eng.Addr()}, rating.Options{Timeout: 2 * time.Second}, nil)
	t.Cleanup(pool.Close)
	r := &poolRater{Pool: pool}
	j := sessiontest.NewJournal()
	m := NewManager(Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 2 * time.Second, SetupTime: time.Hour, StaleTimeout: time.Hour},
		r, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, j, slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)

	delivered := 0
	deliver := func() { // what the debit spool does with what is owed
		for _, o := range j.Debits()[delivered:] {
			if _, err := pool.DebitBalance(context.Background(), o.Engine, o.Debit); err != nil {
				t.Fatalf("debit %+v: %v", o, err)
			}
			delivered++
		}
	}

	if got := m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
		t.Fatalf("init: %v", got)
	}
	r.beforeReask = func() {
		r.beforeReask = nil
		if got := m.Stop("c1"); got != ReplyOk {
			t.Errorf("stop: %v", got)
		}
		deliver()
	}
	m.Start("c1", "1:2", time.Now())
	deliver()
	if _, ok := m.Get("c1"); ok {
		t.Fatal("c1 still tracked after its stop")
	}
	if s := eng.Sessions("alice@example.com"); len(s) != 0 {
		t.Fatalf("the engine still counts %v for alice after every owed debit was delivered (requests %q)", s, eng.Requests())
	}
}

// A call set up again for another destination (a serial fork after a
// failure) owes the engine a 0 s debit for the first question "first", so
// the engine forgets it (behaviour.md). The engine keys sessions by CallId
// and the second question uses the same one: a release delivered after the
// second question (the spool sends it once its record is durable, while the
// question goes at once) ends the new call's session at the engine, which
// then counts the running call in nobody's share of the balance.
func TestSerialForkReleaseDoesNotEndTheNewQuestion(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
	eng.SetRate("", ratingtest.PerMinute(0.1))
	pool := rating.NewPool([]string{eng.Addr()}, rating.Options{Timeout: 2 * time.Second}, nil)
	t.Cleanup(pool.Close)
	j := sessiontest.NewJournal()
	m := NewManager(Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 2 * time.Second, SetupTime: time.Hour, StaleTimeout: time.Hour},
		&poolRater{Pool: pool}, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, j, slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)

	first := initReq("c1", "alice", "true")
	first.RURI = "sip:gw1@example.com"
	if got := m.Init(first, time.Now()); got != ReplyLimited {
		t.Fatalf("first init: %v", got)
	}
	again := initReq("c1", "alice", "true")
	again.RURI = "sip:gw2@example.com"
	if got := m.Init(again, time.Now()); got != ReplyLimited {
		t.Fatalf("init again: %v", got)
	}
	for _, o := range j.Debits() { // the spool delivers what is owed
		if _, err := pool.DebitBalance(context.Background(), o.Engine, o.Debit); err != nil {
			t.Fatalf("debit %+v: %v", o, err)
		}
	}
	if s := eng.Sessions("alice@example.com"); len(s) != 1 {
		t.Fatalf("the engine counts %v for alice while c1 is set up; want [c1] (requests %q)", s, eng.Requests())
	}
}

// When that release cannot be delivered in time, the call is refused in
// time and the release stays owed (to the spool): nothing is asked on top
// of a question the engine may still count. On the bubble's clock, so the
// proxy's deadline is the code's, not the machine's scheduling.
func TestSerialForkReleaseFailsClosed(t *testing.T) {
	eng := ratingtest.New(t) // outside the bubble: its listener is real I/O
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
	eng.SetRate("", ratingtest.PerMinute(0.1))
	synctest.Test(t, func(t *testing.T) {
		eng.SetClock(time.Now)
		const proxyTimeout = 300 * time.Millisecond // answeredWithin's
		j := sessiontest.NewJournal()
		m := NewManager(Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: proxyTimeout, SetupTime: time.Hour, StaleTimeout: time.Hour},
			releasingRater{&engineRater{e: eng}}, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, j, slog.New(slog.DiscardHandler))
		t.Cleanup(m.Shutdown)

		first := initReq("c1", "alice", "true")
		first.RURI = "sip:gw1@example.com"
		if got := m.Init(first, time.Now()); got != ReplyLimited {
			t.Fatalf("first init: %v", got)
		}
		eng.Hang(true) // reads the release, never answers it
		again := initReq("c1", "alice", "true")
		again.RURI = "sip:gw2@example.com"
		received := time.Now()
		got := answeredWithin(t, "init again with the engine hung", func() Reply { return m.Init(again, received) })
		if got != ReplyError {
			t.Fatalf("init again with the engine hung: %v, want Error", got)
		}
		// Exact on the bubble's clock: by the budget's answer time, which
		// keeps a margin under the proxy's timeout for the reply's write.
		if took, budget := time.Since(received), AnswerBy(received, proxyTimeout).Sub(received); took > budget {
			t.Errorf("answered %v after the init, past the budget's %v", took, budget)
		}
		if n, r := eng.Count("DebitBalance"), eng.Count("MaxSessionTime"); n != 1 || r != 1 {
			t.Errorf("the engine got %d DebitBalance and %d MaxSessionTime, want the release tried once and nothing asked on top (requests %q)",
				n, r, eng.Requests())
		}
		d := j.Debits()
		if len(d) != 1 || d[0].Debit.CallID != "c1" || d[0].Debit.Duration != 0 || d[0].Debit.To != "sip:gw1@example.com" {
			t.Fatalf("owed %+v, want the 0 s release of the first question", d)
		}
		if _, ok := m.Get("c1"); ok {
			t.Error("c1 tracked after Error")
		}
		if n := j.Unsettled(); n != 0 {
			t.Errorf("%d asked marks left", n)
		}
	})
}

// releasingRater is engineRater (the fake engine in-process) that also
// debits, as rating.Pool does (a releaser): a debit the engine reads and
// never answers waits for its deadline, as the TCP client's does.
type releasingRater struct{ *engineRater }

func (r releasingRater) DebitBalance(ctx context.Context, _ string, d rating.Debit) (rating.DebitReply, error) {
	reply := r.e.Handle(fmt.Sprintf("DebitBalance CallId=%s From=%s To=%s Gateway=%s Duration=%d Application=%s",
		d.CallID, d.From, d.To, d.Gateway, d.Duration, d.Application))
	if reply == "" {
		<-ctx.Done() // no deadline: the caller hangs, and answeredWithin says so
		return rating.DebitReply{}, fmt.Errorf("rating %s: no reply: %w", engineName, ctx.Err())
	}
	return rating.ParseDebit(reply)
}

// A display name is a quoted string (RFC 3261 25.1) and may hold '<' or
// '>': the URI is the one in the angle brackets after it. Refusing the call
// (no billing party: Error) fails an ordinary caller for their name.
func TestBillingPartyQuotedDisplayName(t *testing.T) {
	for _, tt := range []struct{ from, want string }{
		{`"Alice <CEO>" <sip:alice@example.com>;tag=1`, "sip:alice@example.com"},
		{`"a<b" <sip:bob@example.com>`, "sip:bob@example.com"},
		{`"say \"<hi>\"" <sip:carol@example.com>`, "sip:carol@example.com"},
	} {
		if got, err := BillingParty(tt.from, "None"); err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.from, got, err, tt.want)
		}
	}
}
