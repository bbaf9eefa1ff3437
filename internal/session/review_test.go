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
