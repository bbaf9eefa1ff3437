package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestAccountingThroughTheDaemon: radacct rows in a real MariaDB and a
// RADIUS Stop close the sessions the running daemon tracks, and debit them.
func TestAccountingThroughTheDaemon(t *testing.T) {
	accttest.Require(t, accttest.Available())
	db, err := accttest.StartMariaDB(t.TempDir())
	if err != nil {
		accttest.Require(t, err)
	}
	t.Cleanup(func() { db.Stop() })
	sqlDB, err := db.CreateDatabase("radius")
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	table := "radacct" + time.Now().Format("200601")
	if err := accttest.CreateRadacct(sqlDB, table); err != nil {
		t.Fatal(err)
	}

	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 100})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	radiusAddr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	e := newEnv(t, "check_interval = 1\nlimit = 600", fmt.Sprintf(
		"[CDRTool]\naddress = %s\n[RadiusDatabase]\nhost = %s\nuser = root\ndatabase = radius\ntable = radacct%%Y%%m\n"+
			"[RadiusAccounting]\nlisten = %s\nsecret = s3cret\n", eng.Addr(), db.Addr(), radiusAddr))

	// Space-free SQL: a Call-ID with white space cannot reach the engine
	// (its framing folds white space), so init refuses it with Error.
	hostile := "x');DROP/**/TABLE/**/" + table + ";--"
	for _, id := range []string{"term", "tout", "other-tag", "radius", hostile} {
		req := strings.Replace(initReq(id, "alice"), "fromtag: ft", "fromtag: ft-"+id, 1)
		if got := e.call(req); got != "Limited" {
			t.Fatalf("%s: %q", id, got)
		}
		e.call("start\ncallid: " + id + "\ndialogid: 3:4")
	}
	if err := accttest.Insert(sqlDB, table,
		accttest.Row{CallID: "term", FromTag: "ft-term", Stopped: true, SessionTime: 7, ConnectInfoStop: "BYE"},
		accttest.Row{CallID: "tout", FromTag: "ft-tout", MediaInfo: "timeout"},
		accttest.Row{CallID: "other-tag", FromTag: "somebody-else", Stopped: true, SessionTime: 3, ConnectInfoStop: "BYE"},
	); err != nil {
		t.Fatal(err)
	}

	ctl := e.ctl() // one connection for every poll: the server caps them
	gone := func(id string) bool {
		_, err := ctl.Session(id)
		return errors.Is(err, control.ErrNotFound)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !(gone("term") && gone("tout")) {
		if time.Now().After(deadline) {
			t.Fatal("accounting did not close the terminated and timed-out calls")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if gone("other-tag") {
		t.Fatal("a row with another From tag closed the call")
	}
	if gone(hostile) {
		t.Fatal("the hostile Call-ID's call was closed")
	}
	if _, err := sqlDB.Exec("SELECT COUNT(*) FROM `" + table + "`"); err != nil {
		t.Fatalf("radacct table damaged: %v", err)
	}
	// Terminated: no BYE. Timed out: BYE both ways. So one dialog end.
	// A call's dialog end is recorded with its removal, and stays pending
	// until the proxy answered it: once both calls are gone and nothing is
	// pending, every end they owed has reached the fake.
	e.kam.WaitFor(1, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := ctl.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.DialogEndsPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dialog ends still unconfirmed", st.DialogEndsPending)
		}
	}
	if n := e.kam.Len(); n != 1 {
		t.Fatalf("%d dialog ends, want 1 (the timed-out call)", n)
	}

	// RADIUS: a wrong secret ends nothing, the right one ends the call.
	stop := func(secret string) error {
		p := radius.New(radius.CodeAccountingRequest, []byte(secret))
		rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Stop)
		rfc2866.AcctSessionID_AddString(p, "radius")
		rfc2866.AcctSessionTime_Add(p, 5)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := radius.Exchange(ctx, p, radiusAddr)
		return err
	}
	if err := stop("wrong"); err == nil {
		t.Fatal("a request with the wrong secret was answered")
	}
	if gone("radius") {
		t.Fatal("a request with the wrong secret ended the call")
	}
	if err := stop("s3cret"); err != nil {
		t.Fatal(err)
	}
	// The listener answers first (a late answer is retransmitted), then
	// ends the call.
	for deadline := time.Now().Add(5 * time.Second); !gone("radius"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("RADIUS Stop did not end the call")
		}
	}

	deadline = time.Now().Add(10 * time.Second)
	for len(eng.Debited("term")) == 0 || len(eng.Debited("radius")) == 0 || len(eng.Debited("tout")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("debits missing: %q", eng.Requests())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := eng.Debited("term"); len(d) != 1 || d[0] != 7 {
		t.Fatalf("term debited %v, want [7]", d)
	}
	if d := eng.Debited("radius"); len(d) != 1 || d[0] != 5 {
		t.Fatalf("radius debited %v, want [5]", d)
	}
}
