package rating

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func twoEngines(t *testing.T) (a, b *ratingtest.Engine, p *Pool) {
	a, b = ratingtest.New(t), ratingtest.New(t)
	for _, e := range []*ratingtest.Engine{a, b} {
		e.SetRate("", ratingtest.PerMinute(0.10))
	}
	p = NewPool([]string{a.Addr(), b.Addr()}, Options{Timeout: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, testLog(t))
	t.Cleanup(p.Close)
	return a, b, p
}

func other(p *Pool, eng string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.addrs {
		if a != eng {
			return a
		}
	}
	return ""
}

// breakEngine stops the engine at addr and lets the pool find out.
func breakEngine(t *testing.T, p *Pool, e *ratingtest.Engine) {
	e.Stop()
	if _, err := p.MaxSessionTime(context.Background(), e.Addr(), testReq); !errors.Is(err, ErrNotSent) {
		t.Fatalf("stopped engine: %v", err)
	}
}

func engineAt(addr string, es ...*ratingtest.Engine) *ratingtest.Engine {
	for _, e := range es {
		if e.Addr() == addr {
			return e
		}
	}
	return nil
}

func TestPoolAffinity(t *testing.T) {
	a, b, p := twoEngines(t)
	party := "sip:alice@example.com"
	eng := p.Pick(party)
	if eng == "" {
		t.Fatal("no engine picked")
	}
	for i := 0; i < 10; i++ {
		if got := p.Pick(party); got != eng {
			t.Fatalf("Pick changed without affinity: %s then %s", eng, got)
		}
	}
	p.Acquire(party, eng)
	p.Acquire(party, eng) // two calls
	// Even when its engine goes down, the party stays: its sessions are there.
	breakEngine(t, p, engineAt(eng, a, b))
	if got := p.Pick(party); got != eng {
		t.Fatalf("party moved while it has calls: %s -> %s", eng, got)
	}
	p.Release(party)
	if got := p.Pick(party); got != eng {
		t.Fatalf("party moved with one call left: %s -> %s", eng, got)
	}
	p.Release(party)
	if got := p.Pick(party); got != other(p, eng) {
		t.Fatalf("released party on a down engine: got %s, want %s", got, other(p, eng))
	}
	p.Release(party) // one too many: harmless
}

func TestPoolFailover(t *testing.T) {
	a, b, p := twoEngines(t)
	// Parties spread over both engines while both are up.
	seen := map[string]int{}
	for i := 0; i < 50; i++ {
		seen[p.Pick(fmt.Sprintf("sip:user%d@example.com", i))]++
	}
	if seen[a.Addr()] == 0 || seen[b.Addr()] == 0 {
		t.Fatalf("parties not spread: %v", seen)
	}
	breakEngine(t, p, a)
	for i := 0; i < 50; i++ {
		if got := p.Pick(fmt.Sprintf("sip:user%d@example.com", i)); got != b.Addr() {
			t.Fatalf("new party sent to the down engine %s", got)
		}
	}
	if up, total := p.Connected(); total != 2 || up > 1 {
		t.Errorf("Connected() = %d, %d", up, total)
	}
	// All down: still pick one (the call gets a real error from it).
	breakEngine(t, p, b)
	if got := p.Pick("sip:x@example.com"); got == "" {
		t.Fatal("no engine when all are down")
	}
	// The engine comes back: a background probe notices without a call
	// having to fail on it.
	if err := a.Restart(true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Pick("sip:user1@example.com") != a.Addr() || p.Pick("sip:user2@example.com") != a.Addr() {
		if time.Now().After(deadline) {
			t.Fatal("restarted engine never picked again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoolSetAddrs(t *testing.T) {
	a, b, p := twoEngines(t)
	a.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	p.SetAddrs([]string{a.Addr()})
	party := testReq.From
	if got := p.Pick(party); got != a.Addr() {
		t.Fatalf("Pick = %s, want the only engine %s", got, a.Addr())
	}
	mt, err := p.MaxSessionTime(context.Background(), a.Addr(), testReq)
	if err != nil || mt.Seconds != 600 {
		t.Fatalf("MaxSessionTime = %+v, %v", mt, err)
	}
	p.Acquire(party, a.Addr())
	// Reload drops engine a: alice's call still ends there.
	p.SetAddrs([]string{b.Addr() + "", b.Addr()})
	if got := p.Pick(party); got != a.Addr() {
		t.Fatalf("party moved off a removed engine with calls: %s", got)
	}
	if up, total := p.Connected(); total != 1 || up != 0 {
		t.Errorf("Connected() = %d, %d; want 0, 1", up, total)
	}
	p.Release(party)
	if got := p.Pick(party); got != b.Addr() {
		t.Fatalf("Pick after release = %s, want %s", got, b.Addr())
	}
	// A debit owed to the removed engine is still delivered.
	dr, err := p.DebitBalance(context.Background(), a.Addr(), Debit{CallID: testReq.CallID, From: party, To: testReq.To, Gateway: testReq.Gateway, Duration: 60})
	if err != nil || !dr.OK {
		t.Fatalf("debit to removed engine: %+v, %v", dr, err)
	}
	if got := a.Debited(testReq.CallID); len(got) != 1 || got[0] != 60 {
		t.Fatalf("Debited = %v", got)
	}
	if _, err := p.MaxSessionTime(context.Background(), "", testReq); !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrNoEngine) {
		t.Fatalf("empty engine: %v", err)
	}
}

func TestPoolClose(t *testing.T) {
	_, b, p := twoEngines(t)
	b.SetAccount("alice@example.com", ratingtest.Account{Postpaid: true})
	if _, err := p.MaxSessionTime(context.Background(), b.Addr(), testReq); err != nil {
		t.Fatal(err)
	}
	if up, _ := p.Connected(); up != 1 {
		t.Errorf("up = %d, want 1", up)
	}
	p.Close()
	p.Close()
	if _, err := p.MaxSessionTime(context.Background(), b.Addr(), testReq); !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if got := p.Pick("x"); got != "" {
		t.Fatalf("Pick after Close = %q", got)
	}
	p.SetAddrs([]string{b.Addr()}) // ignored after Close, must not panic or leak
}

// The parallel-call numbers observed on a real engine (rating-protocol.md),
// reproduced through the client and the fake with a manual clock.
func TestParallelModel(t *testing.T) {
	eng := ratingtest.New(t)
	clk := &manualClock{t: time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)}
	eng.SetClock(clk.Now)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1.00})
	eng.SetRate("", ratingtest.PerMinute(0.10))
	p := NewPool([]string{eng.Addr()}, Options{Timeout: 5 * time.Second}, testLog(t))
	defer p.Close()
	e := p.Pick(testReq.From)
	ctx := context.Background()

	first, second := testReq, testReq
	second.CallID = "call-2@h"
	steps := []struct {
		name string
		do   func() (int, error)
		want int
	}{
		{"first call", func() (int, error) {
			mt, err := p.MaxSessionTime(ctx, e, first)
			return mt.Seconds, err
		}, 600},
		{"first answered", func() (int, error) {
			c := first
			c.Connected = true
			mt, err := p.MaxSessionTime(ctx, e, c)
			return mt.Seconds, err
		}, 600},
		{"second parallel call", func() (int, error) {
			clk.Advance(4 * time.Second)
			mt, err := p.MaxSessionTime(ctx, e, second)
			return mt.Seconds, err
		}, 298},
		{"first debited 60 s", func() (int, error) {
			clk.Advance(4 * time.Second)
			dr, err := p.DebitBalance(ctx, e, Debit{CallID: first.CallID, From: first.From, To: first.To, Gateway: first.Gateway, Duration: 60})
			if err == nil && (!dr.OK || dr.Price != "0.1000") {
				err = fmt.Errorf("reply %+v", dr)
			}
			return dr.MaxSessionTime, err
		}, 536},
		{"debited twice", func() (int, error) {
			dr, err := p.DebitBalance(ctx, e, Debit{CallID: first.CallID, From: first.From, To: first.To, Gateway: first.Gateway, Duration: 60})
			if err == nil && dr.OK {
				err = fmt.Errorf("second debit accepted: %+v", dr)
			}
			return 0, err
		}, 0},
		{"second debited", func() (int, error) {
			dr, err := p.DebitBalance(ctx, e, Debit{CallID: second.CallID, From: second.From, To: second.To, Gateway: second.Gateway, Duration: 4})
			return dr.MaxSessionTime, err
		}, 0},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got < s.want-2 || got > s.want+2 {
			t.Fatalf("%s: %d s, want %d", s.name, got, s.want)
		}
	}
	if bal := eng.Balance("alice@example.com"); bal < 0.8933 || bal > 0.8934 {
		t.Errorf("balance = %.4f, want 1.00 - 0.10 - 0.0067", bal)
	}
	if s := eng.Sessions("alice@example.com"); len(s) != 0 {
		t.Errorf("sessions left: %v", s)
	}
}

// Concurrent use of the pool: run with -race.
func TestPoolConcurrent(t *testing.T) {
	a, b, p := twoEngines(t)
	for _, e := range []*ratingtest.Engine{a, b} {
		for i := 0; i < 8; i++ {
			e.SetAccount(fmt.Sprintf("u%d@example.com", i), ratingtest.Account{Balance: 100})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				party := fmt.Sprintf("sip:u%d@example.com", i)
				eng := p.Pick(party)
				r := testReq
				r.From, r.CallID = party, fmt.Sprintf("c%d-%d", i, j)
				mt, err := p.MaxSessionTime(context.Background(), eng, r)
				if err != nil || mt.Kind != Limited {
					errs <- fmt.Errorf("%s: %+v %v", r.CallID, mt, err)
					return
				}
				p.Acquire(party, eng)
				if j%3 == 0 {
					p.SetAddrs([]string{a.Addr(), b.Addr()})
				}
				_, _ = p.Connected()
				dr, err := p.DebitBalance(context.Background(), eng, Debit{CallID: r.CallID, From: party, To: r.To, Gateway: r.Gateway, Duration: 1})
				if err != nil || !dr.OK {
					errs <- fmt.Errorf("debit %s: %+v %v", r.CallID, dr, err)
					return
				}
				p.Release(party)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkPoolParallel(b *testing.B) {
	eng := ratingtest.New(b)
	eng.SetAccount("alice@example.com", ratingtest.Account{Postpaid: true})
	p := NewPool([]string{eng.Addr()}, Options{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	defer p.Close()
	e := p.Pick(testReq.From)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.MaxSessionTime(context.Background(), e, testReq); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
