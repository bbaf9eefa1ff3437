package rating

import (
	"context"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// Every answer names the connection that carried it: an engine that
// restarts (and forgets the sessions it counted) is only seen as a
// connection made again, and the session manager holds the calls counted
// before it on that (session/restart.go).
func TestAnswersNameTheirConnection(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("", ratingtest.PerMinute(0.1))
	c := NewConn(eng.Addr(), Options{Timeout: 2 * time.Second}, testLog(t))
	defer c.Close()
	ask := func(req Request) uint64 {
		t.Helper()
		mt, err := c.MaxSessionTime(context.Background(), req)
		if err != nil || mt.Kind != Limited {
			t.Fatalf("MaxSessionTime %s = %+v, %v", req.CallID, mt, err)
		}
		return mt.Generation
	}
	debit := func(callID string, wantOK bool) uint64 {
		t.Helper()
		dr, err := c.DebitBalance(context.Background(), Debit{CallID: callID, From: testReq.From, To: testReq.To,
			Gateway: testReq.Gateway, Application: "audio", Duration: 10})
		if err != nil || dr.OK != wantOK {
			t.Fatalf("DebitBalance %s = %+v, %v; want ok %v", callID, dr, err, wantOK)
		}
		return dr.Generation
	}
	second := testReq
	second.CallID = "call-2@h"
	steps := []struct {
		name    string
		restart bool
		do      func() uint64
		want    uint64
	}{
		{"first answer", false, func() uint64 { return ask(testReq) }, 1},
		{"same connection", false, func() uint64 { return ask(second) }, 1},
		{"a debit on it", false, func() uint64 { return debit(second.CallID, true) }, 1},
		{"after the engine restarted", true, func() uint64 { return ask(second) }, 2},
		{"a debit the restarted engine forgot", false, func() uint64 { return debit(testReq.CallID, false) }, 2},
		{"after a request unanswered in time (this side dropped the connection)", false, func() uint64 {
			eng.SetDelay(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := c.MaxSessionTime(ctx, second)
			cancel()
			if err == nil {
				t.Fatal("answered despite the delay")
			}
			eng.SetDelay(0)
			return ask(second)
		}, 2},
		{"after the engine was down (a connect refused) and is back", false, func() uint64 {
			eng.SetDelay(time.Second) // this side drops its connection first: only the refusal tells
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			c.MaxSessionTime(ctx, second)
			cancel()
			eng.SetDelay(0)
			eng.Stop()
			if _, err := c.MaxSessionTime(context.Background(), second); err == nil {
				t.Fatal("answered while stopped")
			}
			if err := eng.Restart(true); err != nil { // even keeping its sessions: nothing here can tell
				t.Fatal(err)
			}
			c.mu.Lock()
			c.next = time.Time{} // the backoff after the refused connect
			c.mu.Unlock()
			return ask(second)
		}, 3},
	}
	for _, s := range steps {
		if s.restart {
			if err := eng.Restart(false); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.do(); got != s.want {
			t.Errorf("%s: generation %d, want %d", s.name, got, s.want)
		}
	}
}
