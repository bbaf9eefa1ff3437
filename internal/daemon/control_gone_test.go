package daemon

import (
	"net"
	"strings"
	"testing"
	"time"
)

// An operator's `callcontrol sessions` waiting for the table's one listing
// slot (another listing runs) gives up when the operator goes away
// (Ctrl-C): the control socket notices the hang-up while the listing
// waits, and the daemon does not wait to list the table for nobody.
func TestControlListingStopsWaitingWhenTheOperatorGoes(t *testing.T) {
	logs := &logBuffer{debug: true}
	e := newEnvLogged(t, logs, "", false)
	release := holdListingSlot(t, e)

	conn, err := net.Dial("unix", e.control)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("{\"cmd\":\"sessions\"}\n")); err != nil {
		t.Fatal(err)
	}
	waitLog := func(what string, words ...string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); len(logs.lines("DEBUG", words...)) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not logged after 20 s; debug lines:\n%s", what, strings.Join(logs.lines("DEBUG"), "\n"))
			}
		}
	}
	waitLog("the listing asked for", "control: sessions")
	conn.Close()
	// Logged only once the backend's Sessions returned: the slot is still
	// held, so it gave up waiting.
	waitLog("the listing given up", "sessions listing given up: client went away")

	if !release() {
		t.Error("the listing that held the slot was cut short")
	}
	if got, err := e.ctl().Sessions(""); err != nil || len(got) != 1 {
		t.Errorf("the next listing: %+v, %v", got, err)
	}
}
