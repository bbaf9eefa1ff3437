package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// The daemon starts before Kamailio here, so its start-time check of the
// management socket fails with one WARNING naming the cause and the
// option; the daemon's rechecks and, once Kamailio runs, a reload check
// again, and the real Kamailio answers core.version.
func TestManagementSocketCheckAgainstKamailio(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "60", Extra: "[CDRTool]\naddress =\n"})
	if s.Daemon == nil {
		t.Fatal("this test needs the real callcontrold")
	}
	d := s.Daemon
	harness.WaitFor(t, "start-time check", d.Proc(), 10*time.Second, func() bool {
		return len(d.LogLines(`msg="proxy management socket check failed`)) > 0 ||
			len(d.LogLines(`msg="proxy management socket answers"`)) > 0
	})
	if w := d.LogLines(`msg="proxy management socket check failed`); len(w) > 1 {
		t.Fatalf("more than one warning for one check: %q", w)
	} else if len(w) == 1 && (!strings.Contains(w[0], "cause=") || !strings.Contains(w[0], "[Kamailio] socket_path")) {
		t.Fatalf("warning without cause or option: %q", w[0])
	}
	if w := d.LogLines("calls the proxy flags prepaid will be refused"); len(w) != 1 {
		t.Fatalf("no-engine warning lines: %q", w)
	}
	// The daemon's own rechecks (check_interval) find Kamailio too, and
	// stop once it answered: only after that does a new answer show
	// that the reload checked again.
	answers := func() []string { return d.LogLines(`msg="proxy management socket answers"`) }
	harness.WaitFor(t, "a check that Kamailio answers", d.Proc(), 15*time.Second, func() bool { return len(answers()) > 0 })
	before := len(answers())
	if err := d.Proc().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "check after reload", d.Proc(), 10*time.Second, func() bool {
		return len(answers()) > before
	})
	ok := answers()
	t.Logf("start: %q; answers: %q", d.LogLines(`msg="proxy management socket check failed`), ok)
	if !strings.Contains(ok[before], `version="kamailio 5.`) {
		t.Fatalf("answer from the real Kamailio: %q", ok[before])
	}
	if n := s.Spy.Count("core.version"); n < 1 {
		t.Fatalf("core.version requests seen by the spy: %d", n)
	}
	if n := s.Spy.Count("dlg.end_dlg"); n != 0 {
		t.Fatalf("the check ended dialogs: %d", n)
	}
}
