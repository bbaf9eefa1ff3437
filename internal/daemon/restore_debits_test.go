package daemon

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/journal"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// TestRestoredDebitRetimesRestoredCalls: a prepaid call ends while the
// engine is down, so its debit is owed across a restart; the party's
// other call is restored. The debit's reply carries the party's new
// common end (behaviour.md: "re-time the party's other calls from the
// reply"), so the restored call must be re-timed from it, whatever the
// size of the table being restored when that reply comes.
func TestRestoredDebitRetimesRestoredCalls(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1}) // 600 s alone, ~300 s each for two calls
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	cdrtool := "[CDRTool]\naddress = " + eng.Addr() + "\ntimeout = 300\nrecheck_interval = 0\n"
	e := newEnv(t, "", cdrtool)
	for _, id := range []string{"a", "b"} {
		if got := e.call(initReq(id, "alice")); got != "Limited" {
			t.Fatalf("init %s: %q", id, got)
		}
		if got := e.call("start\ncallid: " + id + "\ndialogid: 1:1"); got != "Ok" {
			t.Fatalf("start %s: %q", id, got)
		}
	}
	before, err := e.ctl().Session("b")
	if err != nil {
		t.Fatal(err)
	}
	if before.Limit > 400 {
		t.Fatalf("b's limit with two calls running: %d, want about 300", before.Limit)
	}
	eng.Stop() // a's debit is owed across the restart
	if got := e.call("stop\ncallid: a"); got != "Ok" {
		t.Fatal(got)
	}
	e.d.Stop()
	e.d = nil

	// Other parties' calls: a table of the size a restart must handle.
	dir := filepath.Join(e.dir, "state")
	j, err := journal.Open(dir, journal.Options{Store: store.Options{NoSync: true}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 20000 {
		j.Save(&session.Session{CallID: fmt.Sprintf("other%d", i), Party: fmt.Sprintf("sip:u%d@example.com", i),
			RURI: "sip:1@example.com", Token: "None", Application: "audio", Cap: session.NoLimit, Limit: 3600,
			Created: now, Answered: now, EndAt: now.Add(time.Hour)})
	}
	if err := j.Close(nil); err != nil {
		t.Fatal(err)
	}

	if err := eng.Restart(true); err != nil {
		t.Fatal(err)
	}
	e.start()
	deadline := time.Now().Add(20 * time.Second)
	for len(eng.Debited("a")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a's debit not delivered after the restart: %q", eng.Requests())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := e.ctl() // one connection: the server limits them
	for {
		after, err := c.Session("b")
		if err != nil {
			t.Fatal(err)
		}
		if after.Limit > 500 {
			return // re-timed from the debit's reply: b alone on the balance
		}
		if time.Now().After(deadline) {
			t.Fatalf("b keeps its limit of %d s from before a ended: the reply to a's debit (engine's common end now ~590 s) re-timed nothing",
				after.Limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
