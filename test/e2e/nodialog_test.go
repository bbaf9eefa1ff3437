package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// A Kamailio route that does not set the dialog module's dlg_flag before
// call_control() makes no dialogs: call_control() returns 1, the module
// sends `stop` about 2 ms after `init`, and no call is limited. The daemon
// tells the operator once, with an ERROR naming dlg_flag.
func TestKamailioWithoutDialogsReported(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "60", NoDialogFlag: true})
	if s.Daemon == nil {
		t.Fatal("this test needs the real callcontrold")
	}
	const calls = 25
	callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_wait_bye.xml", Calls: calls, Timeout: 60 * time.Second})
	caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_hangup.xml", Remote: callee.Addr(),
		Proxy: s.Proxy.Addr(), Calls: calls, Rate: 25, PauseMS: 100, Timeout: 60 * time.Second})
	caller.Wait(t, 90*time.Second)
	callee.Wait(t, 90*time.Second)
	if t.Failed() {
		return
	}
	harness.WaitFor(t, "the daemon's word on the missing dialogs", s.Daemon.Proc(), 10*time.Second, func() bool {
		return len(s.Daemon.LogLines("dlg_flag")) > 0
	})
	if got := s.Daemon.LogLines("dlg_flag"); len(got) != 1 || !strings.Contains(got[0], "level=ERROR") {
		t.Fatalf("lines naming dlg_flag: %q, want one ERROR", got)
	}
	if n := len(s.Daemon.LogLines(`msg="call ended"`)); n == 0 {
		t.Fatal("no call ended: the calls did not reach the daemon")
	}
}
