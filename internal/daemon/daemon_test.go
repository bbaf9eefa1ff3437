package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/internal/store"
)

type env struct {
	t       *testing.T
	dir     string
	opts    Options
	kam     *dialogtest.Fake
	d       *Daemon
	sock    string
	control string
}

// newEnv writes a config (extra lines appended to [CallControl]) and
// starts the daemon in-process.
func newEnv(t *testing.T, callControl string, sections string) *env {
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	e.kam = dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	e.writeConfig(callControl, sections)
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost}
	e.start()
	return e
}

func (e *env) writeConfig(callControl, sections string) {
	cfg := fmt.Sprintf("[CallControl]\nsocket = %s\ngroup = nogroup\nstate_dir = %s\nsync = no\n%s\n[Kamailio]\nsocket_path = %s\n%s\n",
		e.sock, filepath.Join(e.dir, "state"), callControl, e.kam.Path(), sections)
	if err := os.WriteFile(filepath.Join(e.dir, "config.ini"), []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start() {
	d, err := Start(e.opts, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	e.d = d
	e.t.Cleanup(func() {
		if e.d != nil {
			e.d.Stop()
		}
	})
}

func (e *env) restart() {
	e.d.Stop()
	e.d = nil
	e.start()
}

// call sends one request on a new connection and returns the reply line.
func (e *env) call(req string) string {
	e.t.Helper()
	line, err := proxytest.Call(e.sock, proxytest.Lines(req))
	if err != nil {
		e.t.Fatalf("%q: %v", req, err)
	}
	return line
}

func initReq(id, user string) string {
	return "init\nruri: sip:0031650@example.com\ndiverter: None\nsourceip: 10.0.0.1\ncallid: " + id +
		"\nfrom: <sip:" + user + "@example.com>;tag=x\nfromtag: ft\nsip_application: audio"
}

func (e *env) ctl() *control.Client {
	e.t.Helper()
	c, err := control.Dial(e.control, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func TestReloadKeepsCallsAndRefusesBadFile(t *testing.T) {
	e := newEnv(t, "limit = 600", "")
	if got := e.call(initReq("old", "alice")); got != "Limited" {
		t.Fatal(got)
	}
	if got := e.call("start\ncallid: old\ndialogid: 1:2"); got != "Ok" {
		t.Fatal(got)
	}

	e.writeConfig("limit = 5", "")
	if restart, err := e.ctl().Reload(); err != nil || len(restart) != 0 {
		t.Fatalf("good reload: %v, restart needed %q", err, restart)
	}
	e.call(initReq("new", "bob"))
	s, err := e.ctl().Session("new")
	if err != nil || s.Limit != 5 {
		t.Fatalf("new call after reload: %+v %v", s, err)
	}
	s, err = e.ctl().Session("old")
	if err != nil || s.Limit != 600 || s.State != "in-progress" {
		t.Fatalf("call in progress changed by reload: %+v %v", s, err)
	}

	e.writeConfig("limit = 5\ncheck_interval = 7", "")
	if restart, err := e.ctl().Reload(); err != nil || len(restart) != 1 || !strings.Contains(restart[0], "check_interval") {
		t.Fatalf("reload of a restart-only option: %v, restart needed %q", err, restart)
	}

	e.writeConfig("limit = -5", "")
	if _, err := e.ctl().Reload(); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("bad reload accepted: %v", err)
	}
	e.call(initReq("after-bad", "carol"))
	if s, err := e.ctl().Session("after-bad"); err != nil || s.Limit != 5 {
		t.Fatalf("configuration in force lost after a bad reload: %+v %v", s, err)
	}
	if list, err := e.ctl().Sessions(""); err != nil || len(list) != 3 {
		t.Fatalf("sessions after reloads: %d %v", len(list), err)
	}
}

func TestRestartRestoresCalls(t *testing.T) {
	e := newEnv(t, "limit = 600", "")
	e.call(initReq("c1", "alice"))
	e.call("start\ncallid: c1\ndialogid: 7:8")
	e.call(initReq("c2", "alice"))
	e.kam.SetDialog("c2", dialogtest.Dialog{State: 2, Entry: 9, ID: 10}) // ringing on the proxy: the restarted daemon asks
	e.restart()
	s, err := e.ctl().Session("c1")
	if err != nil || s.State != "in-progress" || s.DialogID != "7:8" || s.Remaining <= 0 || s.Remaining > 600 {
		t.Fatalf("c1 after restart: %+v %v", s, err)
	}
	if s, err := e.ctl().Session("c2"); err != nil || s.State != "pending" {
		t.Fatalf("c2 after restart: %+v %v", s, err)
	}
	if ti, err := e.ctl().Terminate("c1"); err != nil || ti.Outcome != control.TerminateEnded {
		t.Fatalf("terminate: %+v %v, want ended", ti, err)
	}
	e.kam.WaitFor(1, 10*time.Second)
	if r := e.kam.Requests()[0]; r.Entry != 7 || r.HID != 8 {
		t.Fatalf("ended %+v", r)
	}
	if _, err := e.ctl().Session("c1"); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("terminated call still there: %v", err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	e := newEnv(t, "limit = 60", "")
	_, err := Start(e.opts, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "in use by another running callcontrold") {
		t.Fatalf("second daemon: %v", err)
	}
	if got := e.call("stop\ncallid: x"); got != "Not found" {
		t.Fatalf("first daemon disturbed: %q", got)
	}
}

func TestPrepaidCallDebitedOnce(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10)) // 600 s for 1.00
	e := newEnv(t, "", "[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 300\n")
	if got := e.call(initReq("p1", "alice")); got != "Limited" {
		t.Fatalf("init: %q (engine saw %q)", got, eng.Requests())
	}
	s, err := e.ctl().Session("p1")
	if err != nil || !s.Prepaid || s.Limit < 590 || s.Limit > 600 {
		t.Fatalf("prepaid session: %+v %v", s, err)
	}
	e.call("start\ncallid: p1\ndialogid: 1:1")
	time.Sleep(1100 * time.Millisecond)
	if got := e.call("stop\ncallid: p1"); got != "Ok" {
		t.Fatal(got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(eng.Debited("p1")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d := eng.Debited("p1"); len(d) != 1 || d[0] != 1 {
		t.Fatalf("debited %v, want [1]", d)
	}
	// A second stop finds no call, so it owes nothing; once nothing is
	// owed any more, no debit can follow.
	if got := e.call("stop\ncallid: p1"); got != "Not found" {
		t.Fatalf("second stop: %q", got)
	}
	e.waitNoDebitOwed()
	if d := eng.Debited("p1"); len(d) != 1 {
		t.Fatalf("debited twice: %v", d)
	}
	var connected, debit int
	for _, r := range eng.Requests() {
		if strings.Contains(r, "State=Connected") {
			connected++
		}
		if strings.HasPrefix(r, "DebitBalance") {
			debit++
		}
	}
	if connected != 1 || debit != 1 {
		t.Fatalf("requests %q", eng.Requests())
	}
}

func TestUnusableSocketPathNamesTheOption(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	cfg := fmt.Sprintf("[CallControl]\nsocket = %s/sub/socket\nstate_dir = %s/state\n", blocker, dir)
	os.WriteFile(filepath.Join(dir, "config.ini"), []byte(cfg), 0o644)
	_, err := Start(Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run")}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "[CallControl] socket = ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v", err)
	}
}

// A daemon killed between asking the engine and answering the proxy left
// an asked mark: the next start releases the engine's session (0 s).
func TestAskedMarkReleasedAtStart(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	e := newEnv(t, "", "[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 300\n")
	// The engine counts a session for "lost" (asked before the crash).
	c := e.call(initReq("lost", "alice"))
	if c != "Limited" {
		t.Fatal(c)
	}
	e.d.Stop()
	e.d = nil
	// Turn the saved session back into the mark the crash would have left.
	l, live, err := store.Open(filepath.Join(e.dir, "state"), store.Options{NoSync: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := live["s/lost"]
	if rec == nil {
		t.Fatal("no saved session")
	}
	if err := l.Apply(store.Delete("s/lost"), store.Put("a/lost", rec)).Wait(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	e.start()
	deadline := time.Now().Add(10 * time.Second)
	for len(eng.Debited("lost")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if d := eng.Debited("lost"); len(d) != 1 || d[0] != 0 {
		t.Fatalf("debited %v, want one 0 s release (engine saw %q)", d, eng.Requests())
	}
	if _, err := e.ctl().Session("lost"); err == nil {
		t.Fatal("the mark became a session")
	}
	// Released once: a restart does not release it again.
	// Start turns asked marks into owed debits before it returns: once
	// nothing is owed, a second release cannot come.
	e.restart()
	e.waitNoDebitOwed()
	if d := eng.Debited("lost"); len(d) != 1 {
		t.Fatalf("released twice: %v", d)
	}
}

// waitNoDebitOwed waits until the daemon owes no debit: every debit owed
// so far has been delivered (or given up) and none is on its way.
func (e *env) waitNoDebitOwed() {
	e.t.Helper()
	c := e.ctl() // one connection: the server limits them
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.Stats()
		if err != nil {
			e.t.Fatal(err)
		}
		if st.DebitsWaiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d debits still owed", st.DebitsWaiting)
		}
	}
}
