package e2e

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// terminateCLI runs the real `callcontrol terminate callID` against the
// stack's daemon and returns what it printed and its error (exit status).
func terminateCLI(t testing.TB, s *Stack, callID string) (string, error) {
	cmd := exec.Command(harness.CLIBin(t), "--runtime-dir", filepath.Join(s.Daemon.Config.Dir, "run"), "terminate", callID)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// testOpenSIPSRinging: `callcontrol terminate` of a call still ringing (the
// callee would answer after 2 s). OpenSIPS ends an early dialog named by
// its Call-ID: it answers the daemon's dlg_end_dlg OK and CANCELs the
// callee, whose INVITE then fails with 487 to the caller. The call never
// starts, the CLI says it ended, and the daemon holds nothing of it.
func testOpenSIPSRinging(t *testing.T, version string) {
	s := startOpenSIPSStack(t, "60", OpenSIPSConfig{Version: version})
	id := callID(t)
	callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_ring_2s_or_cancel.xml", Timeout: 30 * time.Second})
	caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_wait_bye_or_487.xml", Remote: callee.Addr(),
		Proxy: s.Proxy.Addr(), CallID: id, Timeout: 30 * time.Second})
	waitSession(t, s, caller.Proc, id, "pending")
	out, err := terminateCLI(t, s, id)
	if err != nil {
		t.Errorf("callcontrol terminate of a ringing call: %v: %s", err, out)
	}
	if want := "Call " + id + " ended: the proxy confirmed and sends BYE (or CANCEL) to both ends.\n"; out != want {
		t.Errorf("callcontrol terminate printed %q, want %q", out, want)
	}
	caller.Wait(t, 40*time.Second)
	callee.Wait(t, 40*time.Second)
	if t.Failed() {
		return
	}
	ce, ee := caller.Events(t), callee.Events(t)
	if ee["cancel"].IsZero() || !ee["answered"].IsZero() {
		t.Errorf("callee events %v: want a CANCEL and no answer", ee)
	}
	if ce["rejected"].IsZero() || !ce["answered"].IsZero() {
		t.Errorf("caller events %v: want the INVITE failed (487) and no answer", ce)
	}
	assertReturned(t, s.Proxy, id, "1")
	assertEndRequests(t, s.Spy, 1)
	assertEndsDone(t, s.Spy, 1)
	if ids := endDialogIDs(t, s.Spy); !slices.Equal(ids, []string{id}) {
		t.Errorf("dlg_end_dlg named %q, want the Call-ID %q", ids, id)
	}
	WaitNoSessions(t, s.Socket, 10*time.Second)
	assertDaemonEnded(t, s, id, "operator", true)
	// No start ever comes for it: the call never ran.
	if len(wireRequests(s.Daemon, "init", id)) != 1 {
		t.Errorf("daemon log has %d init requests for the call, want 1", len(wireRequests(s.Daemon, "init", id)))
	}
	for _, l := range wireRequests(s.Daemon, "start", id) {
		t.Errorf("OpenSIPS sent start for the CANCELed call: %s", l)
	}
}

// testOpenSIPSPassthroughFallback: with [OpenSIPS] dialog_id = passthrough
// (the original's way: the dialogid of start sent back unchanged, which
// only OpenSIPS 3.0 reads) OpenSIPS 3.1+ answers 404 to the decimal id;
// the daemon asks once more by Call-ID, the call is cut at its 3 s limit
// all the same, and the log has one WARNING naming the settings to use.
func testOpenSIPSPassthroughFallback(t *testing.T, version string) {
	const limit = 3 * time.Second
	s := startOpenSIPSStack(t, "3", OpenSIPSConfig{Version: version, DialogID: "passthrough"})
	id := callID(t)
	caller, callee := s.Call(t, CallConfig{Caller: "caller_wait_bye.xml", Callee: "callee_wait_bye.xml", CallID: id})
	if t.Failed() {
		return
	}
	// The retry costs one MI round trip: both BYEs still come 3-4 s after
	// the answer.
	checkCutTimes(t, caller, callee, limit)
	for _, ep := range []*Sipp{caller, callee} {
		if answered, bye, ok := byeAfterAnswer(t, ep); ok {
			if d := bye.Sub(answered); d < limit-10*time.Millisecond || d > limit+time.Second {
				t.Errorf("%s: BYE %v after the answer, want 3 to 4 s", ep.Name(), d)
			} else {
				t.Logf("%s: BYE %v after the answer", ep.Name(), d)
			}
		}
	}
	assertReturned(t, s.Proxy, id, "1")
	start := startDialogID(t, s.Daemon, id)
	if ids, want := endDialogIDs(t, s.Spy), []string{strconv.FormatUint(start, 10), id}; !slices.Equal(ids, want) {
		t.Errorf("dlg_end_dlg named %q, want %q: the start's dialogid, then the Call-ID", ids, want)
	}
	harness.WaitFor(t, "OpenSIPS' two answers", s.Daemon.Proc(), 10*time.Second, func() bool { return len(endReplies(s.Spy)) >= 2 })
	reps := endReplies(s.Spy)
	if len(reps) != 2 || !strings.Contains(reps[0], `"code":404`) || !strings.Contains(reps[1], `"result":"OK"`) {
		t.Errorf("OpenSIPS answered %q, want 404 to the passthrough id, then OK to the Call-ID", reps)
	}
	warns := s.Daemon.LogLines("passthrough works only on OpenSIPS 3.0")
	if len(warns) != 1 {
		t.Errorf("daemon logged %d passthrough warnings, want 1: %q", len(warns), warns)
	}
	for _, w := range warns {
		for _, sub := range []string{"level=WARN", "callid=" + id, "[OpenSIPS] dialog_id = callid"} {
			if !strings.Contains(w, sub) {
				t.Errorf("passthrough warning lacks %q: %s", sub, w)
			}
		}
	}
	WaitNoSessions(t, s.Socket, 10*time.Second)
	assertDaemonEnded(t, s, id, "time limit", true)
	// Retried once, and only once: nothing more after a few retry periods.
	time.Sleep(2 * time.Second)
	if n := len(s.Spy.EndRequests()); n != 2 {
		t.Errorf("daemon sent %d dlg_end_dlg requests, want 2", n)
	}
}
