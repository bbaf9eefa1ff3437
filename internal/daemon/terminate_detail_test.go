package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// An operator's terminate that the proxy does not confirm, while the
// proxy's management socket failed its check, names the socket and the
// cause: the request never reached a proxy, and "the proxy has not
// confirmed yet" alone sent the operator looking at the proxy's dialogs.
func TestTerminateNotConfirmedNamesTheFailingManagementSocket(t *testing.T) {
	var logs logBuffer
	// Nothing can confirm: no need to wait the operator's 3 s for it.
	e := newEnvLogged(t, &logs, "", true, func(o *Options) { o.terminateWait = 100 * time.Millisecond })
	if st := e.checked(); st.ManagementSocket.State != control.SocketFailing {
		t.Fatalf("management socket %+v, want failing", st.ManagementSocket)
	}
	if got := e.call(initReq("c1", "alice")); got != "Limited" {
		t.Fatal(got)
	}
	if got := e.call("start\ncallid: c1\ndialogid: 1:2"); got != "Ok" {
		t.Fatal(got)
	}
	ti, err := e.ctl().Terminate("c1")
	if err != nil || ti.Outcome != control.TerminatePending {
		t.Fatalf("terminate: %+v %v, want pending", ti, err)
	}
	for _, want := range []string{e.kam.Path(), "failed its last check", "no such file", "sent again until the proxy confirms"} {
		if !strings.Contains(ti.Detail, want) {
			t.Fatalf("detail %q lacks %q", ti.Detail, want)
		}
	}
}
