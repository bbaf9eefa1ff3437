package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/test/harness"
)

// prepaidAccount is the engine's account for every caller scenario: their
// From is sip:caller@127.0.0.1:PORT and the daemon bills sip:user@host.
const prepaidAccount = "caller@127.0.0.1"

// StartPrepaidStack starts a fake rating engine, lets setup configure its
// accounts and rates, and starts the daemon (limit = None, so only the
// engine limits calls) and Kamailio with the engine in [CDRTool]. Kamailio
// sends no prepaid key, so the daemon asks the engine for every call.
func StartPrepaidStack(t *testing.T, setup func(e *ratingtest.Engine)) (*Stack, *ratingtest.Engine) {
	t.Helper()
	requirePeers(t)
	return startPrepaidStackWith(t, StackConfig{}, setup)
}

// startPrepaidStackWith is StartPrepaidStack with the proxy of cfg (its
// Limit and Extra are set here).
func startPrepaidStackWith(t *testing.T, cfg StackConfig, setup func(e *ratingtest.Engine)) (*Stack, *ratingtest.Engine) {
	t.Helper()
	harness.DaemonBin(t)
	eng := ratingtest.New(t)
	setup(eng)
	// timeout is well below the proxy's 500 ms so the daemon can still
	// answer Error in time if the engine were slow.
	cfg.Limit, cfg.Extra = "None", fmt.Sprintf("[CDRTool]\naddress = %s\ntimeout = 300\n", eng.Addr())
	return StartStack(t, cfg), eng
}

// startPrepaidCall starts a callee and a caller (named "caller"+name and
// "callee"+name in logs) for one call and returns them running.
func startPrepaidCall(t *testing.T, s *Stack, name, caller, callee, callID string) (*Sipp, *Sipp) {
	t.Helper()
	ce := StartSipp(t, SippConfig{Name: "callee" + name, Scenario: callee, Timeout: 20 * time.Second})
	cr := StartSipp(t, SippConfig{Name: "caller" + name, Scenario: caller, Remote: ce.Addr(),
		Proxy: s.Proxy.Addr(), CallID: callID, Timeout: 20 * time.Second})
	return cr, ce
}

// waitAnswered waits until the daemon lists callID as in progress (its
// start arrived), so that a second call is set up after the first is timed.
func waitAnswered(t *testing.T, s *Stack, p *harness.Proc, callID string) {
	t.Helper()
	harness.WaitFor(t, callID+" answered", p, 10*time.Second, func() bool {
		for _, l := range Sessions(t, s.Socket) {
			if strings.Contains(l, callID) && strings.Contains(l, "in-progress") {
				return true
			}
		}
		return false
	})
}

// waitDebited waits until the engine has applied a debit for callID (the
// daemon delivers debits from its spool, after the session is gone) and
// returns the debited seconds.
func waitDebited(t *testing.T, eng *ratingtest.Engine, callID string) []int {
	t.Helper()
	harness.WaitFor(t, callID+" debited", nil, 10*time.Second, func() bool { return len(eng.Debited(callID)) > 0 })
	return eng.Debited(callID)
}

// byeAfterAnswer returns the time from the endpoint's answer to the BYE it
// got, failing the test if either event is missing.
func byeAfterAnswer(t *testing.T, ep *Sipp) (answered, bye time.Time, ok bool) {
	t.Helper()
	ev := ep.Events(t)
	answered, bye = ev["answered"], ev["bye"]
	if answered.IsZero() || bye.IsZero() {
		t.Errorf("%s: events %v, want answered and bye", ep.Name(), ev)
		return answered, bye, false
	}
	return answered, bye, true
}

// assertCutByDaemon checks a call the daemon ended at its limit: each
// endpoint got its BYE between lo and hi after the answer, the proxy's
// call_control() returned 1, the daemon asked it once to end the dialog, logged the time
// limit, and holds no session any more.
func assertCutByDaemon(t *testing.T, s *Stack, callID string, eps []*Sipp, lo, hi time.Duration, why string) {
	t.Helper()
	for _, ep := range eps {
		answered, bye, ok := byeAfterAnswer(t, ep)
		if !ok {
			continue
		}
		if d := bye.Sub(answered); d < lo || d > hi {
			t.Errorf("%s: BYE came %v after the answer, want %v to %v (%s)", ep.Name(), d, lo, hi, why)
		} else {
			t.Logf("%s: BYE %v after the answer", ep.Name(), d)
		}
	}
	assertReturned(t, s.Proxy, callID, "1")
	assertEndRequests(t, s.Spy, 1)
	WaitNoSessions(t, s.Socket, 10*time.Second)
	assertDaemonEnded(t, s, callID, "time limit", true)
}

// near reports whether a and b differ by at most tol.
func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// engineRequests returns the engine's requests that mention callID.
func engineRequests(eng *ratingtest.Engine, callID string) []string {
	var out []string
	for _, r := range eng.Requests() {
		if strings.Contains(r, "CallId="+callID+" ") || strings.HasSuffix(r, "CallId="+callID) {
			out = append(out, r)
		}
	}
	return out
}
