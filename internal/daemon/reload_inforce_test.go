package daemon

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

// A restart-only change is not in force until a restart, however many
// reloads come between: a second reload of the same file must still name
// it, not answer "every change applied" (callcontrol reload and the init
// script exit 0) while check_interval 7 is still not in force.
func TestSecondReloadStillNamesRestartOnly(t *testing.T) {
	e := newEnv(t, "", "")
	e.writeConfig("check_interval = 7", "")
	for i := 1; i <= 2; i++ {
		restart, err := e.ctl().Reload()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(restart, " "), "check_interval") {
			t.Fatalf("reload %d: restart needed %q, want check_interval (housekeeping still runs every 60 s)", i, restart)
		}
	}
}

// A reload that changes [CallControl] socket (restart-only) must not make
// /readyz report the proxy socket in use as gone: the daemon still
// serves the old one, and that is what readiness is about.
func TestReadyAfterReloadOfSocket(t *testing.T) {
	e := newEnv(t, "", "")
	if p := e.d.notReady(); len(p) != 0 {
		t.Fatalf("not ready at start: %q", p)
	}
	inUse := e.sock
	e.sock = filepath.Join(e.dir, "run", "socket2")
	e.writeConfig("", "")
	e.sock = inUse
	restart, err := e.ctl().Reload()
	if err != nil || !strings.Contains(strings.Join(restart, " "), "socket") {
		t.Fatalf("reload: %v, restart needed %q", err, restart)
	}
	if got := e.call(initReq("c1", "alice")); got == "" || got == "Error" {
		t.Fatalf("the socket in use no longer serves: %q", got)
	}
	if p := e.d.notReady(); len(p) != 0 {
		t.Errorf("/readyz after a restart-only socket change: %q, yet %s serves", p, inUse)
	}
}

// A reload that changes [Kamailio] socket_path (restart-only: dialogs are
// still ended through the old one) must not make stats report the new,
// unused socket as the management socket.
func TestStatsManagementSocketAfterReload(t *testing.T) {
	e := newEnv(t, "", "")
	inUse := e.kam.Path()
	if st := e.checked(); st.ManagementSocket.Path != inUse {
		t.Fatalf("at start: %+v", st.ManagementSocket)
	}
	other := dialogtest.NewKamailio(t, filepath.Join(e.dir, "kam2.sock"))
	old := e.kam
	e.kam = other
	e.writeConfig("", "")
	e.kam = old
	restart, err := e.ctl().Reload()
	if err != nil || !strings.Contains(strings.Join(restart, " "), "Kamailio") {
		t.Fatalf("reload: %v, restart needed %q", err, restart)
	}
	// Wait for the checks the reload started.
	deadline := time.Now().Add(15 * time.Second)
	for e.d.checks.running.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st, err := e.ctl().Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.ManagementSocket.Path != inUse {
		t.Errorf("stats management socket %s, but dialogs are still ended through %s", st.ManagementSocket.Path, inUse)
	}
}

// During a clean stop /readyz says the daemon is stopping, not that its
// socket is gone and it needs a restart.
func TestNotReadyWhileStoppingSaysSo(t *testing.T) {
	e := newEnv(t, "", "")
	e.d.stopping.Store(true) // as Stop sets it first
	if p := e.d.notReady(); len(p) != 1 || !strings.Contains(p[0], "stopping") {
		t.Fatalf("not ready while stopping: %q, want that it stops", p)
	}
}
