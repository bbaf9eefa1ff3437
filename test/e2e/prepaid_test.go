package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestPrepaidCreditRunsOut: a prepaid caller with credit for 4 s is cut
// off by the daemon 4 s after the answer (BYE to both ends through
// Kamailio) and debited exactly 4 s, its whole balance.
func TestPrepaidCreditRunsOut(t *testing.T) {
	const price = 0.25 // per second: 1.00 buys exactly 4 s
	s, eng := StartPrepaidStack(t, func(e *ratingtest.Engine) {
		e.SetAccount(prepaidAccount, ratingtest.Account{Balance: 1})
		e.SetRate("", price)
	})
	const callID = "e2e-prepaid@127.0.0.1"
	caller, callee := s.Call(t, CallConfig{Caller: "caller_wait_bye.xml", Callee: "callee_wait_bye.xml", CallID: callID})
	if t.Failed() {
		return
	}
	// Same slack as TestLimitedCall.
	assertCutByDaemon(t, s, callID, []*Sipp{caller, callee}, 3900*time.Millisecond, 5*time.Second, "credit for 4 s")

	if got := waitDebited(t, eng, callID); !slices.Equal(got, []int{4}) {
		t.Errorf("debited %v s, want [4]", got)
	}
	if b := eng.Balance(prepaidAccount); !near(b, 0, 1e-9) {
		t.Errorf("balance after the call %.4f, want 0", b)
	}
	if left := eng.Sessions(prepaidAccount); len(left) != 0 {
		t.Errorf("engine still counts sessions %q", left)
	}
	// Asked at init and again at the answer, debited once.
	var cmds []string
	for _, r := range engineRequests(eng, callID) {
		cmds = append(cmds, strings.Fields(r)[0])
	}
	if want := []string{"MaxSessionTime", "MaxSessionTime", "DebitBalance"}; !slices.Equal(cmds, want) {
		t.Errorf("engine requests for the call %q, want %q", cmds, want)
	}
}

// TestPrepaidParallelCalls: two calls of one account share its balance.
// When the second is answered the engine gives the common end moment and
// the daemon re-times both: they are cut off together and, between them,
// use up the balance.
func TestPrepaidParallelCalls(t *testing.T) {
	const (
		price   = 0.1 // per second, per call
		balance = 1.0 // 10 s alone; about 1 + 2*4.5 s with a second call after ~1 s
	)
	s, eng := StartPrepaidStack(t, func(e *ratingtest.Engine) {
		e.SetAccount(prepaidAccount, ratingtest.Account{Balance: balance})
		e.SetRate("", price)
	})
	ids := []string{"e2e-parallel-1@127.0.0.1", "e2e-parallel-2@127.0.0.1"}
	caller1, callee1 := startPrepaidCall(t, s, "1", "caller_wait_bye.xml", "callee_wait_bye.xml", ids[0])
	waitAnswered(t, s, caller1.Proc, ids[0])
	// Let the first call use some credit alone, so the common moment is
	// not simply half of the first call's time.
	time.Sleep(time.Second)
	caller2, callee2 := startPrepaidCall(t, s, "2", "caller_wait_bye.xml", "callee_wait_bye.xml", ids[1])
	eps := []*Sipp{caller1, callee1, caller2, callee2}
	for _, ep := range eps {
		ep.Wait(t, 25*time.Second)
	}
	if t.Failed() {
		return
	}

	var byes []time.Time
	for _, ep := range eps {
		if _, bye, ok := byeAfterAnswer(t, ep); ok {
			byes = append(byes, bye)
		}
	}
	if len(byes) == len(eps) {
		first, last := slices.MinFunc(byes, time.Time.Compare), slices.MaxFunc(byes, time.Time.Compare)
		if spread := last.Sub(first); spread > time.Second {
			t.Errorf("the BYEs of the two calls came %v apart, want them together (within 1 s)", spread)
		} else {
			t.Logf("BYEs of both calls within %v", spread)
		}
		a1, _, _ := byeAfterAnswer(t, caller1)
		a2, _, _ := byeAfterAnswer(t, caller2)
		t.Logf("call 1 lasted %v, call 2 lasted %v", first.Sub(a1), first.Sub(a2))
	}
	for _, id := range ids {
		assertKamailioReturned(t, s.Kamailio, id, "1")
	}
	assertEndRequests(t, s.Spy, 2)
	WaitNoSessions(t, s.Socket, 10*time.Second)
	for _, id := range ids {
		assertDaemonEnded(t, s, id, "time limit", true)
	}

	sum := 0
	for _, id := range ids {
		got := waitDebited(t, eng, id)
		if len(got) != 1 {
			t.Errorf("%s debited %v, want one debit", id, got)
		}
		for _, d := range got {
			sum += d
		}
	}
	// The engine floors the common time and the daemon rounds each call's
	// duration: at most one second's price per call either way.
	tol := float64(len(ids)) * price
	if spent := float64(sum) * price; !near(spent, balance, tol+1e-9) {
		t.Errorf("debited %d s in all = %.4f, want the balance %.4f (within %.4f)", sum, spent, balance, tol)
	}
	if b := eng.Balance(prepaidAccount); !near(b, 0, tol+1e-9) {
		t.Errorf("balance after the calls %.4f, want ~0 (within %.4f)", b, tol)
	}
	if left := eng.Sessions(prepaidAccount); len(left) != 0 {
		t.Errorf("engine still counts sessions %q", left)
	}
}

// TestPrepaidNoCredit: a prepaid caller without credit is refused: the
// daemon answers No credit, call_control() returns -1 and the script
// answers 402. Nothing is tracked and nothing is charged.
func TestPrepaidNoCredit(t *testing.T) {
	s, eng := StartPrepaidStack(t, func(e *ratingtest.Engine) {
		e.SetAccount(prepaidAccount, ratingtest.Account{Balance: 0})
		e.SetRate("", 0.1)
	})
	const callID = "e2e-nocredit@127.0.0.1"
	s.Call(t, CallConfig{Caller: "caller_expect_402.xml", CallID: callID})
	assertKamailioReturned(t, s.Kamailio, callID, "-1")
	assertEndRequests(t, s.Spy, 0)
	WaitNoSessions(t, s.Socket, 10*time.Second)
	if reqs := engineRequests(eng, callID); len(reqs) == 0 || !strings.HasPrefix(reqs[0], "MaxSessionTime ") {
		t.Errorf("engine requests for the call %q, want a MaxSessionTime first", reqs)
	}
	for _, d := range eng.Debited(callID) {
		if d != 0 {
			t.Errorf("a refused call was debited %v", eng.Debited(callID))
		}
	}
	if b := eng.Balance(prepaidAccount); b != 0 {
		t.Errorf("balance %.4f, want 0", b)
	}
}

// TestPrepaidLocked: an account at its parallel-call maximum is refused
// with Locked (call_control() -2, 403) while its call in progress goes on
// and ends on its own credit.
func TestPrepaidLocked(t *testing.T) {
	const price = 0.1
	s, eng := StartPrepaidStack(t, func(e *ratingtest.Engine) {
		e.SetAccount(prepaidAccount, ratingtest.Account{Balance: 0.3, MaxParallel: 1}) // 3 s
		e.SetRate("", price)
	})
	const first, second = "e2e-locked-1@127.0.0.1", "e2e-locked-2@127.0.0.1"
	caller, callee := startPrepaidCall(t, s, "1", "caller_wait_bye.xml", "callee_wait_bye.xml", first)
	waitAnswered(t, s, caller.Proc, first)
	StartSipp(t, SippConfig{Name: "caller2", Scenario: "caller_expect_403.xml", Remote: "127.0.0.1:9",
		Proxy: s.Kamailio.Addr(), CallID: second, Timeout: 10 * time.Second}).Wait(t, 20*time.Second)
	if caller.Exited() {
		t.Errorf("the first call ended before the second was refused: the test proves nothing")
	}
	caller.Wait(t, 20*time.Second)
	callee.Wait(t, 20*time.Second)
	if t.Failed() {
		return
	}
	assertKamailioReturned(t, s.Kamailio, first, "1")
	assertKamailioReturned(t, s.Kamailio, second, "-2")
	if answered, bye, ok := byeAfterAnswer(t, caller); ok {
		if d := bye.Sub(answered); d < 2900*time.Millisecond || d > 4*time.Second {
			t.Errorf("first call: BYE %v after the answer, want 3 s (credit for 3 s)", d)
		}
	}
	assertEndRequests(t, s.Spy, 1)
	WaitNoSessions(t, s.Socket, 10*time.Second)
	if got := waitDebited(t, eng, first); !slices.Equal(got, []int{3}) {
		t.Errorf("first call debited %v s, want [3]", got)
	}
	if got := eng.Debited(second); len(got) != 0 {
		t.Errorf("the locked call was debited %v, want nothing (the engine never counted it)", got)
	}
	if left := eng.Sessions(prepaidAccount); len(left) != 0 {
		t.Errorf("engine still counts sessions %q", left)
	}
}
