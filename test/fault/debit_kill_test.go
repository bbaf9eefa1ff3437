package fault

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestKill9AroundADebit: callcontrold is killed with SIGKILL at two
// moments of one debit's delivery, and started again on its state:
//
//   - in flight: the engine got the DebitBalance and applies it, but its
//     reply never reaches the daemon (fate unknown);
//   - answered: the daemon logged the debit delivered, its "done" record
//     staged and (with sync = interval) most likely not written yet.
//
// Either way the restarted daemon sends it again without Force=1
// (rating-protocol.md: a Failed then means it was applied), and the call
// is debited exactly once.
func TestKill9AroundADebit(t *testing.T) {
	for _, when := range []string{"in flight", "answered"} {
		t.Run(strings.ReplaceAll(when, " ", "_"), func(t *testing.T) {
			eng := ratingtest.New(t)
			eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
			eng.SetRate("", ratingtest.PerMinute(0.10))
			dlg := dialogtest.NewKamailio(t, filepath.Join(dialogtest.SocketDir(t), "kamailio.sock"))
			d := newDaemon(t, daemonConfig{PrepaidLimit: 600, Engine: eng.Addr(), RPCSocket: dlg.Path(), Sync: "interval"})
			d.Start()
			call := func(req string) string {
				t.Helper()
				reply, err := proxytest.Call(d.Socket, proxytest.Lines(req))
				if err != nil {
					t.Fatalf("%q: %v", req, err)
				}
				return reply
			}
			init := "init\nruri: sip:0031650@example.com\ndiverter: None\nsourceip: 10.0.0.1\ncallid: k1" +
				"\nfrom: <sip:alice@example.com>;tag=x\nfromtag: ft\nsip_application: audio"
			if got := call(init); got != "Limited" {
				t.Fatalf("init: %q", got)
			}
			if got := call("start\ncallid: k1\ndialogid: 1:1"); got != "Ok" {
				t.Fatalf("start: %q", got)
			}
			time.Sleep(1100 * time.Millisecond) // a billed second
			if when == "in flight" {
				eng.SetDelay(time.Second) // the engine applies it a second later, its reply lost with the daemon
			}
			if got := call("stop\ncallid: k1"); got != "Ok" {
				t.Fatalf("stop: %q", got)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				var ready bool
				if when == "in flight" {
					ready = strings.Contains(strings.Join(eng.Requests(), "\n"), "DebitBalance CallId=k1")
				} else {
					ready = len(d.LogLines("debit: delivered")) > 0
				}
				if ready {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the debit never reached that point; engine saw %q", eng.Requests())
				}
				time.Sleep(2 * time.Millisecond)
			}
			d.Kill()
			for deadline := time.Now().Add(10 * time.Second); len(eng.Debited("k1")) == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the engine never applied the debit; it saw %q", eng.Requests())
				}
			}
			eng.SetDelay(0)
			d.Start()
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				n, err := d.debitsWaiting()
				if err == nil && n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("debits still owed after the restart: %d (%v)", n, err)
				}
			}
			if got := eng.Debited("k1"); len(got) != 1 || got[0] != 1 {
				t.Fatalf("k1 debited %v, want 1 s once; engine saw %q", got, eng.Requests())
			}
			for _, r := range eng.Requests() {
				if strings.HasPrefix(r, "DebitBalance") && strings.Contains(r, "Force=1") {
					t.Fatalf("a debit of unknown fate was forced: %q", r)
				}
			}
			resent := resentUnforced(eng.Requests(), "k1")
			if when == "in flight" && !resent {
				t.Fatalf("a debit whose reply was lost was not sent again: engine saw %q", eng.Requests())
			}
			// Answered: resent only if its done record had not been
			// written yet, which the timing decides.
			t.Logf("resent after the restart: %v", resent)
		})
	}
}
