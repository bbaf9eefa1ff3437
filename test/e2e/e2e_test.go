package e2e

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// assertKamailioReturned checks the xlog line kamailio.cfg writes after
// call_control().
func assertKamailioReturned(t *testing.T, k *Kamailio, callID, rc string) {
	t.Helper()
	assertReturned(t, k, callID, rc)
}

// assertReturned checks the xlog line kamailio.cfg and opensips.cfg write
// after call_control().
func assertReturned(t *testing.T, p Proxy, callID, rc string) {
	t.Helper()
	want := "call_control returned " + rc + " for " + callID
	if len(p.LogLines(want)) == 0 {
		t.Errorf("%s log has no %q; call_control lines: %q", p.Name(), want, p.LogLines("call_control returned"))
	}
}

// assertDaemonEnded checks, with the real daemon, its log line for the end
// of the call: reason and whether it asked the proxy for a BYE.
func assertDaemonEnded(t *testing.T, s *Stack, callID, reason string, bye bool) {
	t.Helper()
	if s.Daemon == nil {
		return
	}
	var want []string
	if strings.Contains(reason, " ") {
		want = append(want, `reason="`+reason+`"`)
	} else {
		want = append(want, "reason="+reason+" ")
	}
	if bye {
		want = append(want, "bye=true")
	} else {
		want = append(want, "bye=false")
	}
	lines := s.Daemon.Ended(callID)
	if len(lines) != 1 {
		t.Errorf("daemon logged %d \"call ended\" lines for %s, want 1: %q", len(lines), callID, lines)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("daemon's \"call ended\" line lacks %q: %s", w, lines[0])
		}
	}
}

// assertEndRequests checks the dialog-end requests the daemon sent, in the
// form the spy's proxy takes (Kamailio's unless ExpectOpenSIPS was called).
func assertEndRequests(t *testing.T, spy *RPCSpy, want int) {
	t.Helper()
	ends := spy.EndRequests()
	if len(ends) != want {
		t.Errorf("daemon sent %d %s requests, want %d: %+v", len(ends), spy.EndMethod, want, spy.Requests())
	}
	for _, r := range ends {
		if err := spy.CheckEnd(r); err != nil {
			t.Errorf("%s request %s: %v", spy.EndMethod, r.Raw, err)
		}
	}
}

// checkKamailioEnd is the RPCSpy's CheckEnd for Kamailio's dlg.end_dlg.
func checkKamailioEnd(r RPCRequest) error {
	// Kamailio refuses one "h_entry:h_id" string: two numbers it is.
	var n1, n2 uint32
	if len(r.Params) != 2 || json.Unmarshal(r.Params[0], &n1) != nil || json.Unmarshal(r.Params[1], &n2) != nil {
		return errors.New("params are not [h_entry, h_id] numbers")
	}
	return nil
}

// TestLimitedCall: with limit = 3 the daemon ends the dialog through
// Kamailio 3 s after the answer; both ends get a BYE.
func TestLimitedCall(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "3"})
	const callID = "e2e-limited@127.0.0.1"
	caller, callee := s.Call(t, CallConfig{Caller: "caller_wait_bye.xml", Callee: "callee_wait_bye.xml", CallID: callID})
	if t.Failed() {
		return
	}
	// The daemon's clock starts when Kamailio relays the 200 OK, a moment
	// after the callee sent it and before the caller got it: a little
	// slack below 3 s; the upper bound is loose for a busy machine but
	// still tells 3 s from the next whole second.
	assertCutByDaemon(t, s, callID, []*Sipp{caller, callee}, 2900*time.Millisecond, 4500*time.Millisecond, "limit = 3")
}

// TestCallerHangsUp: a limited call the caller ends after 1 s ends through
// stop; the daemon asks Kamailio to end nothing, then or later.
func TestCallerHangsUp(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "2"})
	const callID = "e2e-hangup@127.0.0.1"
	caller, _ := s.Call(t, CallConfig{Caller: "caller_hangup.xml", Callee: "callee_wait_bye.xml", CallID: callID, PauseMS: 1000})
	if t.Failed() {
		return
	}
	assertKamailioReturned(t, s.Kamailio, callID, "1")
	WaitNoSessions(t, s.Socket, 10*time.Second)
	// Past the moment the 2 s limit would have ended the call: a timer
	// left running would show up as a dlg.end_dlg now.
	answered := caller.Events(t)["answered"]
	if answered.IsZero() {
		t.Fatal("the caller logged no answer: cannot tell when the limit would have passed")
	}
	time.Sleep(time.Until(answered.Add(3 * time.Second)))
	assertEndRequests(t, s.Spy, 0)
	assertDaemonEnded(t, s, callID, "stop", false)
}

// TestNoLimit: with limit = None the daemon answers No limit, Kamailio's
// call_control() returns 2 and the call completes normally.
func TestNoLimit(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "None"})
	const callID = "e2e-nolimit@127.0.0.1"
	s.Call(t, CallConfig{Caller: "caller_hangup.xml", Callee: "callee_wait_bye.xml", CallID: callID, PauseMS: 1000})
	assertKamailioReturned(t, s.Kamailio, callID, "2")
	assertEndRequests(t, s.Spy, 0)
	WaitNoSessions(t, s.Socket, 10*time.Second)
}

// TestDaemonDown: with nothing on the proxy socket call_control() fails
// (-5) and the script refuses the call with 500.
func TestDaemonDown(t *testing.T) {
	requirePeers(t)
	dir := harness.ShortDir(t, "cce2e-down")
	k := StartKamailio(t, KamailioConfig{CCSocket: dir + "/nobody.sock"})
	const callID = "e2e-down@127.0.0.1"
	StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_expect_500.xml", Remote: "127.0.0.1:9",
		Proxy: k.Addr(), CallID: callID, Timeout: 20 * time.Second}).Wait(t, 30*time.Second)
	assertKamailioReturned(t, k, callID, "-5")
}

// TestKamailioRequests checks, with the FakeDaemon recording, what a real
// Kamailio sends on the proxy socket for a call ended through dlg.end_dlg:
// the facts of spec/proxy-protocol.md the daemon is built on.
func TestKamailioRequests(t *testing.T) {
	requirePeers(t)
	dir := harness.ShortDir(t, "cce2e-fake")
	kamRPC := dir + "/kam-rpc.sock"
	f := StartFakeDaemon(t, dir, &FakeDaemon{InitReply: "Limited", EndAfter: time.Second, RPCSocket: kamRPC})
	k := StartKamailio(t, KamailioConfig{CCSocket: f.Socket, RPCSocket: kamRPC})
	const callID = "e2e-fake@127.0.0.1"
	callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_wait_bye.xml"})
	caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_wait_bye.xml", Remote: callee.Addr(),
		Proxy: k.Addr(), CallID: callID})
	caller.Wait(t, 30*time.Second)
	callee.Wait(t, 30*time.Second)

	var cmds []string
	for _, r := range f.Requests() {
		if r.Values["callid"] != callID {
			continue
		}
		cmds = append(cmds, r.Command)
		switch r.Command {
		case "init":
			want := []string{"ruri", "diverter", "sourceip", "callid", "from", "fromtag", "sip_application"}
			if !slices.Equal(r.Keys, want) {
				t.Errorf("init keys %q, want %q", r.Keys, want)
			}
			if !strings.HasPrefix(r.Values["ruri"], "sip:e2e@"+callee.Addr()) || r.Values["diverter"] != "None" ||
				r.Values["sourceip"] != "127.0.0.1" || !strings.Contains(r.Values["from"], "<sip:caller@"+caller.Addr()+">") {
				t.Errorf("init values %q", r.Values)
			}
		case "start":
			if !dialogIDRe.MatchString(r.Values["dialogid"]) {
				t.Errorf("start dialogid %q, want h_entry:h_id", r.Values["dialogid"])
			}
		}
	}
	if want := []string{"init", "start", "stop"}; !slices.Equal(cmds, want) {
		t.Errorf("requests for the call: %q, want %q", cmds, want)
	}
}

var dialogIDRe = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// TestRestartMidCall: a limited call survives a clean restart of the
// daemon: the restored session still ends the call on time.
func TestRestartMidCall(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "4"})
	if s.Daemon == nil {
		t.Skip("needs the real callcontrold")
	}
	const callID = "e2e-restart@127.0.0.1"
	callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_wait_bye.xml"})
	caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_wait_bye.xml", Remote: callee.Addr(),
		Proxy: s.Kamailio.Addr(), CallID: callID})
	harness.WaitFor(t, "call answered", caller.Proc, 10*time.Second, func() bool {
		return len(Sessions(t, s.Socket)) == 1 && strings.Contains(Sessions(t, s.Socket)[0], "in-progress")
	})
	s.RestartDaemon(t)
	if got := Sessions(t, s.Socket); len(got) != 1 || !strings.Contains(got[0], callID) {
		t.Errorf("after the restart the daemon holds %q, want the call", got)
	}
	caller.Wait(t, 20*time.Second)
	callee.Wait(t, 20*time.Second)
	if t.Failed() {
		return
	}
	ev := caller.Events(t)
	if d := ev["bye"].Sub(ev["answered"]); d < 3900*time.Millisecond || d > 5500*time.Millisecond {
		t.Errorf("BYE came %v after the answer, want 4 s (limit = 4)", d)
	}
	assertEndRequests(t, s.Spy, 1)
	WaitNoSessions(t, s.Socket, 10*time.Second)
}
