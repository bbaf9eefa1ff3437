package session_test

import (
	"testing"
	"testing/synctest"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// A disk that stalls must not make the proxy's answer late: the proxy
// reads a late answer as the next call's. The spec's rule is Error in
// time rather than the right answer late.

// answeredWithin runs f in a synctest bubble and fails t unless it returns
// before the proxy's 300 ms timeout, as the bubble's clock counts them: a
// stalled disk never ends on its own.
func answeredWithin(t *testing.T, what string, f func() Reply) Reply {
	t.Helper()
	const proxyTimeout = 300 * time.Millisecond
	start := time.Now()
	done := make(chan Reply, 1)
	go func() { done <- f() }()
	select {
	case got := <-done:
		if took := time.Since(start); took >= proxyTimeout {
			t.Fatalf("%s answered after %v, past the proxy's %v", what, took, proxyTimeout)
		}
		return got
	case <-time.After(proxyTimeout):
		t.Fatalf("%s not answered within the proxy's %v", what, proxyTimeout)
		return ReplyError
	}
}

func TestStalledDiskInitAnswersErrorInTimeAndLetsGo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepaid string
	}{{"postpaid", "false"}, {"prepaid", "true"}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: 600, PrepaidLimit: NoLimit, ProxyTimeout: 300 * time.Millisecond}, limited(60))
				resume := f.j.Stall()
				defer resume()
				got := answeredWithin(t, "init", func() Reply { return f.m.Init(initReq("c1", "alice", tc.prepaid), time.Now()) })
				if got != ReplyError {
					t.Fatalf("init with a stalled disk: %q, want Error", got)
				}
				if _, ok := f.m.Get("c1"); ok {
					t.Fatal("the call answered Error is still tracked")
				}
				if tc.prepaid == "true" {
					if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 0 || d[0].Engine != "engine1" {
						t.Fatalf("the engine's session is not released with 0 s: %+v", d)
					}
				}
				resume()
				// The disk is back: the same Call-ID is set up normally.
				if got := f.m.Init(initReq("c1", "alice", tc.prepaid), time.Now()); got != ReplyLimited {
					t.Fatalf("init after the stall: %q", got)
				}
			})
		})
	}
}

func TestStalledDiskStartAnswersErrorInTimeAndKeepsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 1, PrepaidLimit: NoLimit, ProxyTimeout: 300 * time.Millisecond}, nil)
		if got := f.m.Init(initReq("c1", "alice", "false"), time.Now()); got != ReplyLimited {
			t.Fatal(got)
		}
		resume := f.j.Stall()
		defer resume()
		if got := answeredWithin(t, "start", func() Reply { return f.m.Start("c1", "1:2", time.Now()) }); got != ReplyError {
			t.Fatalf("start with a stalled disk: %q, want Error", got)
		}
		s, ok := f.m.Get("c1")
		if !ok || !s.InProgress() {
			t.Fatalf("the call is no longer tracked as in progress: %+v, %v", s, ok)
		}
		// Its clock runs: the call is still cut at its limit.
		if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "c1" {
			t.Fatalf("ended %+v", tg)
		}
	})
}

func TestStalledDiskStopAnswersOkInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 600, PrepaidLimit: NoLimit, ProxyTimeout: 300 * time.Millisecond}, limited(600))
		f.m.Init(initReq("c1", "alice", "true"), time.Now())
		f.m.Start("c1", "1:2", time.Now())
		resume := f.j.Stall()
		defer resume()
		if got := answeredWithin(t, "stop", func() Reply { return f.m.Stop("c1") }); got != ReplyOk {
			t.Fatalf("stop with a stalled disk: %q", got)
		}
		if d := f.j.Debits(); len(d) != 1 || d[0].Debit.CallID != "c1" {
			t.Fatalf("the debit is not owed: %+v", d)
		}
	})
}
