package daemon

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

func pendingEnds(t *testing.T, e *env) control.Stats {
	t.Helper()
	st, err := e.ctl().Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDialogEndSurvivesRestart: a limit runs out while the proxy answers
// nothing. The request to end the dialog stays recorded, is shown to
// operators, is sent again after a restart, and goes once the proxy
// confirms it.
func TestDialogEndSurvivesRestart(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	e.kam = dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	e.writeConfig("limit = 1", "")
	// Resent after 50 ms, doubling, not after 5 s: the test waits for
	// resends. A terminate waits 100 ms, not 3 s, for a proxy that is mute.
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost,
		dialogTimeout: 50 * time.Millisecond, terminateWait: 100 * time.Millisecond}
	e.start()
	e.kam.SetAnswer(dialogtest.AnswerNone)
	if got := e.call(initReq("mute", "alice")); got != "Limited" {
		t.Fatal(got)
	}
	if got := e.call("start\ncallid: mute\ndialogid: 3:4"); got != "Ok" {
		t.Fatal(got)
	}
	e.kam.WaitFor(1, 10*time.Second)

	st := pendingEnds(t, e)
	if st.DialogEndsPending != 1 || len(st.DialogEnds) != 1 || st.DialogEnds[0].CallID != "mute" || st.DialogEnds[0].DialogID != "3:4" {
		t.Fatalf("stats: %d pending, %+v", st.DialogEndsPending, st.DialogEnds)
	}
	s, err := e.ctl().Session("mute")
	if err != nil || s.State != "ending" || s.EndRequested.IsZero() {
		t.Fatalf("session of a call whose end is unconfirmed: %+v %v", s, err)
	}
	// An operator asking again is told the truth: asked, not confirmed.
	if ti, err := e.ctl().Terminate("mute"); err != nil || ti.Outcome != control.TerminatePending {
		t.Fatalf("terminate: %+v %v, want pending", ti, err)
	}

	e.restart()
	before := e.kam.Len()
	e.kam.WaitFor(before+1, 10*time.Second) // sent again by the new daemon
	if r := e.kam.Requests()[before]; r.Entry != 3 || r.HID != 4 {
		t.Fatalf("re-sent %+v", r)
	}
	if st := pendingEnds(t, e); st.DialogEndsPending != 1 {
		t.Fatalf("after restart: %d pending", st.DialogEndsPending)
	}

	e.kam.SetAnswer(dialogtest.AnswerOK)
	deadline := time.Now().Add(30 * time.Second)
	c := e.ctl()
	for {
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.DialogEndsPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy's OK did not settle the dialog end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := e.kam.Len()
	e.restart()
	// Start hands every recorded end to the dialog client before it
	// returns, and an end stays pending until the proxy has answered it.
	// So none pending now means none was sent again, or the fake has it.
	if p := pendingEnds(t, e).DialogEndsPending; p != 0 || e.kam.Len() != n {
		t.Fatalf("a confirmed dialog end came back after a restart: %d pending, %d requests, then %d", p, n, e.kam.Len())
	}
}

// TestRingingTerminateSurvivesRestart: Kamailio cannot end a ringing
// call; the order to end it at answer is journaled, kept across a restart,
// and carried out when `start` comes.
func TestRingingTerminateSurvivesRestart(t *testing.T) {
	e := newEnv(t, "limit = 600", "")
	if got := e.call(initReq("ringing", "alice")); got != "Limited" {
		t.Fatal(got)
	}
	if ti, err := e.ctl().Terminate("ringing"); err != nil || ti.Outcome != control.TerminateAtAnswer {
		t.Fatalf("terminate: %+v %v, want at answer", ti, err)
	}
	if e.kam.Len() != 0 {
		t.Fatal("a request was sent for a dialog Kamailio cannot know yet")
	}
	// Still ringing on the proxy: the restarted daemon asks (a call gone
	// from the proxy meanwhile would be forgotten).
	e.kam.SetDialog("ringing", dialogtest.Dialog{State: 2, Entry: 11, ID: 12})
	e.restart()
	s, err := e.ctl().Session("ringing")
	if err != nil || s.EndAtAnswer == "" || !strings.Contains(s.State, "ends at answer") {
		t.Fatalf("after restart: %+v %v", s, err)
	}
	if got := e.call("start\ncallid: ringing\ndialogid: 11:12"); got != "Ok" {
		t.Fatalf("start: %q", got)
	}
	r := e.kam.WaitFor(1, 10*time.Second)[0]
	if r.Entry != 11 || r.HID != 12 {
		t.Fatalf("ended %+v", r)
	}
	// The fake confirms it: once the daemon has read that, the call is
	// gone, and a restart does not bring it back.
	gone := func() bool { _, err := e.ctl().Session("ringing"); return err != nil }
	for deadline := time.Now().Add(10 * time.Second); !gone(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still known 10 s after the proxy confirmed its end")
		}
	}
	e.restart()
	if !gone() {
		t.Fatal("known again after a restart, although its end was confirmed")
	}
}
