package rating

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// An engine that accepts connections but leaves requests unanswered is
// passed over for new parties; what operators watch must say so too:
// `callcontrol stats`, the page's chip and callcontrol_engine_up /
// callcontrol_engines_up showed it "connected" (while a probe's
// connection was open) or "idle" (no failure), and engine_up 1.
func TestAHungEngineIsNotShownUp(t *testing.T) {
	a, b := ratingtest.New(t), ratingtest.New(t)
	p := NewPool([]string{a.Addr(), b.Addr()}, Options{Timeout: 100 * time.Millisecond, MinBackoff: time.Hour, MaxBackoff: time.Hour}, testLog(t))
	t.Cleanup(p.Close)
	a.Hang(true)
	t.Cleanup(func() { a.Hang(false) })
	for i := 0; i < silentLimit; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		p.MaxSessionTime(ctx, a.Addr(), testReq)
		cancel()
	}
	st := p.States()
	if st[0].State != StateUnreachable || st[0].Cause == "" {
		t.Errorf("hung engine shown as %+v", st[0])
	}
	// A connection open to it (as a probe's is) does not make it up.
	p.conns[a.Addr()].mu.Lock()
	pipe, other := net.Pipe()
	defer pipe.Close()
	defer other.Close()
	p.conns[a.Addr()].live = pipe // only read as "a connection is open"
	p.conns[a.Addr()].mu.Unlock()
	defer func() {
		p.conns[a.Addr()].mu.Lock()
		p.conns[a.Addr()].live = nil
		p.conns[a.Addr()].mu.Unlock()
	}()
	if st := p.States(); st[0].State != StateUnreachable {
		t.Errorf("hung engine with a connection open shown as %+v", st[0])
	}
	// The healthy engine's answer is not raced against the hung one's
	// 100 ms: a connect and round trip on a loaded machine can take that.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.MaxSessionTime(ctx, b.Addr(), testReq); err != nil {
		t.Fatal(err)
	}
	if up, total := p.Connected(); up != 1 || total != 2 {
		t.Errorf("Connected() = %d/%d with one engine hung", up, total)
	}
}
