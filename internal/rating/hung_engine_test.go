package rating

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// An engine that accepts connections but never answers (hung) fails
// every request with a timeout, yet the pool keeps sending the new parties
// that hash to it there while the other engine is healthy: each of their
// calls is refused for as long as it hangs. A party without tracked calls
// has nothing on the hung engine to keep it there.
func TestPoolPassesOverAHungEngineForNewParties(t *testing.T) {
	a, b := ratingtest.New(t), ratingtest.New(t)
	p := NewPool([]string{a.Addr(), b.Addr()}, Options{Timeout: 100 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, testLog(t))
	t.Cleanup(p.Close)
	var onA []string
	for i := 0; len(onA) < 5 && i < 200; i++ {
		if party := fmt.Sprintf("sip:user%d@example.com", i); p.Pick(party) == a.Addr() {
			onA = append(onA, party)
		}
	}
	a.Hang(true)
	t.Cleanup(func() { a.Hang(false) })
	for i := 0; i < 3; i++ { // several requests time out on it
		r := testReq
		r.CallID = fmt.Sprintf("hung-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := p.MaxSessionTime(ctx, a.Addr(), r)
		cancel()
		if err == nil || errors.Is(err, ErrNotSent) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung engine: %v", err)
		}
	}
	for _, party := range onA {
		if got := p.Pick(party); got == a.Addr() {
			t.Fatalf("new party %s still sent to the hung engine %s after 3 timeouts in a row (healthy engine %s passed over)", party, got, b.Addr())
		}
	}
}

// Once the hung engine answers again, a probe (an unknown command, which
// the engine answers 0) brings it back for new parties: a connect alone
// would have succeeded all along.
func TestPoolTakesBackAHungEngineThatAnswers(t *testing.T) {
	a, b := ratingtest.New(t), ratingtest.New(t)
	p := NewPool([]string{a.Addr(), b.Addr()}, Options{Timeout: 100 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, testLog(t))
	t.Cleanup(p.Close)
	party := ""
	for i := 0; party == "" && i < 200; i++ {
		if q := fmt.Sprintf("sip:user%d@example.com", i); p.Pick(q) == a.Addr() {
			party = q
		}
	}
	a.Hang(true)
	for i := 0; i < silentLimit; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		p.MaxSessionTime(ctx, a.Addr(), testReq)
		cancel()
	}
	if got := p.Pick(party); got == a.Addr() {
		t.Fatal("hung engine still picked")
	}
	a.Hang(false)
	deadline := time.Now().Add(10 * time.Second)
	for p.Pick(party) != a.Addr() {
		if time.Now().After(deadline) {
			t.Fatal("the engine answers again, yet new parties are not sent back to it")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
