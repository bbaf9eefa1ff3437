package daemon

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// control_read_group applies only at start (AllowReadOnly): a reload that
// changes it must name it among the options that need a restart, not
// answer "every change applied" (callcontrol reload exit 0) while its
// members still cannot connect.
func TestReloadOfControlReadGroupIsTrue(t *testing.T) {
	e := newEnv(t, "", "")
	e.writeConfig("control_read_group = nogroup", "")
	restart, err := e.ctl().Reload()
	if err != nil {
		t.Fatal(err)
	}
	named := strings.Contains(strings.Join(restart, " "), "control_read_group")
	fi, err := os.Stat(e.control)
	if err != nil {
		t.Fatal(err)
	}
	applied := fi.Mode().Perm() == 0o666
	if !named && !applied {
		t.Errorf("reload said every change applied (restart needed %q), but control_read_group is not in force: socket mode %v",
			restart, fi.Mode().Perm())
	}
}

// `debits reroute ENGINE` for the only engine (down): each party's current
// engine is ENGINE itself, so the daemon leaves every debit where it is;
// it must not answer ok with "0 debits ... moved" (exit 0) while the
// debits stay owed to ENGINE, uncounted and unexplained.
func TestDebitsRerouteThatMovesNothingIsNotSuccess(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	e := newEnv(t, "", "[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 300\n")
	if got := e.call(initReq("p1", "alice")); got != "Limited" {
		t.Fatalf("init: %q", got)
	}
	e.call("start\ncallid: p1\ndialogid: 1:1")
	time.Sleep(1100 * time.Millisecond) // a billed second
	eng.Stop()
	if got := e.call("stop\ncallid: p1"); got != "Ok" {
		t.Fatal(got)
	}
	c := e.ctl()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := c.Debits()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].LastError != "" && !list[0].Sending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("debit not owed with its error: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := c.DebitsReroute(eng.Addr())
	list, _ := c.Debits()
	if err == nil && r.Affected == 0 && r.InFlight == 0 && len(list) == 1 {
		t.Errorf("reroute answered ok, %d moved, %d in flight, while the debit stays owed to %s: %+v", r.Affected, r.InFlight, eng.Addr(), list)
	}
}
