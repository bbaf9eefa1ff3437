package daemon

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
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
	var logs logBuffer
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	e.kam = dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	e.writeConfig("check_interval = 1\nlimit = 600", fmt.Sprintf(
		"[CDRTool]\naddress = %s\n[RadiusDatabase]\nhost = %s\nuser = root\ndatabase = radius\ntable = radacct%%Y%%m\n"+
			"[RadiusAccounting]\nlisten = %s\nsecret = s3cret\n", eng.Addr(), db.Addr(), radiusAddr))
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost}
	e.startLogged(&logs)

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
	// Both go from one socket: once the listener's read loop has logged
	// the first dropped (nothing answers a dropped datagram), the first
	// answer on the socket must be the second's.
	stop := func(secret string) []byte {
		p := radius.New(radius.CodeAccountingRequest, []byte(secret))
		p.Identifier = uint8(len(secret))
		rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Stop)
		rfc2866.AcctSessionID_AddString(p, "radius")
		rfc2866.AcctSessionTime_Add(p, 5)
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	conn, err := net.Dial("udp", radiusAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(stop("wrong")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(logs.lines("WARN", "radius: dropped a datagram")) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the wrong secret's request was not dropped:\n%s", logs.b.String())
		}
	}
	if gone("radius") {
		t.Fatal("a request with the wrong secret ended the call")
	}
	right := stop("s3cret")
	if _, err := conn.Write(right); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer := make([]byte, 4096)
	n, err := conn.Read(answer)
	if err != nil {
		t.Fatalf("the right secret's request was not answered: %v", err)
	}
	if !radius.IsAuthenticResponse(answer[:n], right, []byte("s3cret")) {
		t.Fatalf("the first answer is not to the right secret's request (identifier %d)", answer[1])
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
