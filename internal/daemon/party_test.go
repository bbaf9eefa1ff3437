package daemon

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// A state directory written before the billing party was folded holds
// the party as the From header spelled it. After the upgrade that call
// and a new call of the same account, spelled otherwise, are one party:
// re-timed together.
func TestUpgradeFoldsJournaledParties(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("frank@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10)) // 600 s for 1.00
	e := newEnv(t, "", "[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 300\n")
	if got := e.call(initReq("a", "Frank")); got != "Limited" {
		t.Fatalf("init a: %q (engine saw %q)", got, eng.Requests())
	}
	e.call("start\ncallid: a\ndialogid: 1:1")
	e.d.Stop()
	e.d = nil

	// Write the record as the previous version did: the party unfolded.
	l, live, err := store.Open(filepath.Join(e.dir, "state"), store.Options{NoSync: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.Unmarshal(live["s/a"])
	if err != nil {
		t.Fatal(err)
	}
	s.Party = "sip:Frank@example.com"
	if err := l.Apply(store.Put("s/a", s.Marshal())).Wait(); err != nil {
		t.Fatal(err)
	}
	l.Close()

	e.start()
	list, err := e.ctl().Sessions("Frank@")
	if err != nil || len(list) != 1 || list[0].Party != "sip:frank@example.com" {
		t.Fatalf("restored: %+v %v", list, err)
	}
	if got := e.call(initReq("b", "frank")); got != "Limited" {
		t.Fatalf("init b: %q", got)
	}
	e.call("start\ncallid: b\ndialogid: 1:2") // the engine counts both: about 300 s each
	a, err := e.ctl().Session("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.ctl().Session("b")
	if err != nil {
		t.Fatal(err)
	}
	if a.Remaining > 301 || b.Remaining > 301 || a.Remaining < b.Remaining-2 || b.Remaining < a.Remaining-2 {
		t.Fatalf("not re-timed together: a %d s left, b %d s left (engine saw %q)", a.Remaining, b.Remaining, eng.Requests())
	}
	if st, _ := e.ctl().Stats(); st.Parties != 1 {
		t.Fatalf("parties %d, want 1", st.Parties)
	}
}
