package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// TestAnsweredWhileDaemonDown (Kamailio; the OpenSIPS case runs the same
// check): a call rings when the daemon dies (kill -9) and is answered
// before it is back. The proxy's `start` finds no daemon and is dropped,
// so the restored call would wait for a start that never comes: no timer,
// unlimited on Kamailio. The restarted daemon asks the proxy about it and
// cuts it at its limit from the proxy's answer time.
func TestAnsweredWhileDaemonDown(t *testing.T) {
	testAnsweredWhileDown(t, StartStack(t, StackConfig{Limit: "6"}))
}

func testAnsweredWhileDown(t *testing.T, s *Stack) {
	if s.Daemon == nil {
		t.Skip("needs the real callcontrold")
	}
	const (
		limit = 6 * time.Second
		ring  = 3 * time.Second
	)
	id := callID(t)
	callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_ring_wait_bye.xml", PauseMS: int(ring / time.Millisecond),
		Timeout: 40 * time.Second})
	caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_wait_bye.xml", Remote: callee.Addr(),
		Proxy: s.Proxy.Addr(), CallID: id, Timeout: 40 * time.Second})
	harness.WaitFor(t, id+" ringing", caller.Proc, 10*time.Second, func() bool {
		for _, l := range Sessions(t, s.Socket) {
			if strings.Contains(l, id) && strings.Contains(l, "pending") {
				return true
			}
		}
		return false
	})
	s.Daemon.Kill()
	// The callee answers meanwhile; the proxy's start finds no daemon.
	// (Waiting here orders the events; no time is asserted on it.)
	time.Sleep(ring + 2*time.Second)
	s.Daemon = StartDaemon(t, s.Daemon.Config)
	caller.Wait(t, 40*time.Second)
	callee.Wait(t, 40*time.Second)
	if t.Failed() {
		t.Logf("daemon log:\n%s", s.Daemon.LogText())
		return
	}
	// Timed from the proxy's answer time, which is in whole seconds: the
	// cut may come up to a second before the limit, never after it.
	if answered, bye, ok := byeAfterAnswer(t, callee); ok {
		if d := bye.Sub(answered); d < limit-time.Second-10*time.Millisecond || d > limit+time.Second {
			t.Errorf("callee: BYE %v after it answered, want the limit (%v), up to a second early", d, limit)
		}
	}
	if answered, bye, ok := byeAfterAnswer(t, caller); ok {
		if d := bye.Sub(answered); d > limit+time.Second {
			t.Errorf("caller: BYE %v after it got the answer: over a second after the limit (%v)", d, limit)
		}
	}
	if log := s.Daemon.LogText(); !strings.Contains(log, "call answered while the daemon was down") {
		t.Errorf("the daemon did not log the call answered while it was down:\n%s", log)
	}
	assertEndRequests(t, s.Spy, 1)
	WaitNoSessions(t, s.Socket, 10*time.Second)
}
