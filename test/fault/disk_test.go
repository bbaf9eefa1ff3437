package fault

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/callcontrol/callcontrol/test/harness"
)

// diskWorld is a daemon whose calls are set up and answered, and never
// ended: each one answered must be tracked after any restart.
type diskWorld struct {
	t        *testing.T
	d        *daemon
	px       *proxytest.Pool
	answered []string
}

func newDiskWorld(t *testing.T, beforeStart func(state string)) *diskWorld {
	eng := ratingtest.New(t)
	eng.SetRate("", ratingtest.PerMinute(perMinute))
	for i := range 20 {
		eng.SetAccount(account(i), ratingtest.Account{Balance: initialBalance})
	}
	dlg := dialogtest.NewKamailio(t, filepath.Join(dialogtest.SocketDir(t), "kamailio.sock"))
	d := newDaemon(t, daemonConfig{PrepaidLimit: 3600, Engine: eng.Addr(), RPCSocket: dlg.Path()})
	if beforeStart != nil {
		beforeStart(d.StateDir())
	}
	d.Start()
	return &diskWorld{t: t, d: d, px: newProxyPool(t, d.Socket, 4)}
}

// calls sets up and answers n calls, each of which must be answered.
func (w *diskWorld) calls(prefix string, n int) {
	w.t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d@disk", prefix, i)
		acc := account(i % 20)
		reply, err := w.px.Call(proxytest.Request("init", "ruri", "sip:0031650123456@example.com", "diverter", "None",
			"sourceip", "10.0.0.1", "callid", id, "from", "<sip:"+acc+">;tag=t", "fromtag", "t",
			"prepaid", "true", "call_limit", "0", "call_token", "None"))
		if err != nil || reply != "Limited" {
			w.t.Fatalf("init %s: %q %v", id, reply, err)
		}
		if reply, err := w.px.Call(proxytest.Request("start", "callid", id, "dialogid", fmt.Sprintf("%d:%d", 1+i%4000, i))); err != nil || reply != "Ok" {
			w.t.Fatalf("start %s: %q %v", id, reply, err)
		}
		w.answered = append(w.answered, id)
	}
}

// callsUntilNotDurable makes calls on a full disk until the segment
// reserved before it filled is used up too and writes fail: every call
// is answered meanwhile, and then stats says since when the state is not
// durable.
func (w *diskWorld) callsUntilNotDurable() string {
	w.t.Helper()
	for i := 0; i < 100; i++ {
		w.calls(fmt.Sprintf("full%d", i), 100)
		since, err := w.d.notDurableSince()
		if err != nil {
			w.t.Fatal(err)
		}
		if since != "" {
			return since
		}
	}
	w.t.Fatal("stats says durable after 10,000 calls on a full disk")
	return ""
}

// checkAllTracked asks the daemon for its sessions: every answered call
// must be there.
func (w *diskWorld) checkAllTracked() {
	w.t.Helper()
	// A new connection: those of w.px went with the daemon before.
	out, err := newProxyPool(w.t, w.d.Socket, 1).Operator(proxytest.Request("debug", "show", "sessions"))
	if err != nil {
		w.t.Fatal(err)
	}
	missing := 0
	for _, id := range w.answered {
		if !strings.Contains(out, "Call id "+id+" of ") {
			missing++
		}
	}
	if missing > 0 {
		w.t.Fatalf("%d of %d answered calls lost", missing, len(w.answered))
	}
	w.t.Logf("all %d answered calls restored", len(w.answered))
}

// notDurableSince reads the state_not_durable_since of stats ("" when
// durable).
func (d *daemon) notDurableSince() (string, error) {
	var resp struct {
		Stats struct {
			Since string `json:"state_not_durable_since"`
			Fault string `json:"state_fault"`
		} `json:"stats"`
	}
	if err := d.stats(&resp); err != nil {
		return "", err
	}
	if resp.Stats.Since == "" {
		return "", nil
	}
	return resp.Stats.Since + " (" + resp.Stats.Fault + ")", nil
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount a tmpfs")
		}
		t.Skip("needs root to mount a tmpfs")
	}
}

// A state directory on a small file system that fills while calls are
// set up: every call is still answered (served from memory), stats says
// since when the state is not durable, the ERROR is logged once; when
// space comes back, a snapshot makes everything durable at once: kill -9
// then, and the restart has every answered call.
func TestFullStateDiskThenFreed(t *testing.T) {
	needRoot(t)
	var state string
	w := newDiskWorld(t, func(dir string) { state = dir; mountTmpfs(t, dir) })
	w.calls("before", 50)
	filler := fill(t, state)
	since := w.callsUntilNotDurable()
	t.Logf("stats: not durable since %s", since)

	os.Remove(filler)
	freed := time.Now()
	for {
		since, err := w.d.notDurableSince()
		if err != nil {
			t.Fatal(err)
		}
		if since == "" {
			break
		}
		if time.Since(freed) > 30*time.Second {
			t.Fatalf("still not durable 30 s after space came back: %s", since)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("durable %v after space came back (retried every 200 ms)", time.Since(freed).Round(time.Millisecond))
	w.d.Kill()
	w.d.Start()
	w.checkAllTracked()
	if n := strings.Count(w.d.LogText(), "store: state not durable"); n != 1 {
		t.Errorf("the episode's ERROR logged %d times, want once", n)
	}
}

// The state directory removed while calls are set up (an operator's
// rm -rf), then SIGTERM: the daemon makes it again and writes everything,
// stops cleanly, and the restart has every answered call.
func TestStateDirRemovedThenStop(t *testing.T) {
	w := newDiskWorld(t, nil)
	w.calls("before", 100)
	if err := os.RemoveAll(filepath.Join(w.d.StateDir())); err != nil {
		t.Fatal(err)
	}
	w.calls("after", 200)
	w.d.Stop()
	if _, err := os.Stat(filepath.Join(w.d.StateDir(), "snapshot")); err != nil {
		t.Fatalf("no snapshot after the stop: %v", err)
	}
	w.d.Start()
	w.checkAllTracked()
	if !strings.Contains(w.d.LogText(), "state directory or its current segment was removed") {
		t.Error("the removed state directory was not reported")
	}
}

func mountTmpfs(t *testing.T, dir string) {
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file in dir until its file system is full.
func fill(t *testing.T, dir string) string {
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return filler
		}
	}
}

// A clean stop whose final snapshot cannot be written (the disk is still
// full) exits non-zero and says what was not saved.
func TestStopOnFullDiskSaysWhatIsLost(t *testing.T) {
	needRoot(t)
	var state string
	w := newDiskWorld(t, func(dir string) { state = dir; mountTmpfs(t, dir) })
	w.calls("before", 20)
	fill(t, state)
	w.callsUntilNotDurable()
	w.calls("more", 50)
	err := w.d.Terminate(30 * time.Second)
	if errors.Is(err, harness.ErrNoExit) {
		t.Fatal(err)
	}
	if err == nil {
		t.Fatal("exit 0 although the final snapshot failed on a full disk")
	}
	want := fmt.Sprintf("the final snapshot failed; %d calls (%d answered)", len(w.answered), len(w.answered))
	if log := w.d.LogText(); !strings.Contains(log, want) || !strings.Contains(log, "are not saved") {
		t.Errorf("what was not saved is not said; log:\n%s", grepLines(log, "store:", "state:"))
	}
}

func grepLines(text string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// One byte flipped in the snapshot a clean stop wrote: one call is lost,
// every other is restored, and the loss is logged with its count.
func TestSnapshotByteFlipped(t *testing.T) {
	w := newDiskWorld(t, nil)
	w.calls("c", 300)
	w.d.Stop()
	snap := filepath.Join(w.d.StateDir(), "snapshot")
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(snap, b, 0o600); err != nil {
		t.Fatal(err)
	}
	w.d.Start()
	out, err := newProxyPool(t, w.d.Socket, 1).Operator(proxytest.Request("debug", "show", "sessions"))
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range w.answered {
		if !strings.Contains(out, "Call id "+id+" of ") {
			lost++
		}
	}
	if lost > 1 {
		t.Fatalf("%d calls lost to one flipped byte", lost)
	}
	if log := w.d.LogText(); !strings.Contains(log, "snapshot damaged") || !strings.Contains(log, "lost_records=") {
		t.Errorf("the loss is not logged:\n%s", grepLines(log, "store:"))
	}
	t.Logf("%d of %d calls lost: %s", lost, len(w.answered), grepLines(w.d.LogText(), "snapshot damaged"))
}

// With state_failure = refuse, init is answered Error while the state
// cannot be written, and Limited again once it can: no call is answered
// that a crash could forget.
func TestFullDiskRefuseMode(t *testing.T) {
	needRoot(t)
	var state string
	w := newDiskWorld(t, func(dir string) {
		state = dir
		mountTmpfs(t, dir)
		ini := filepath.Join(filepath.Dir(dir), "etc", "config.ini")
		b, err := os.ReadFile(ini)
		if err != nil {
			t.Fatal(err)
		}
		refuse := strings.Replace(string(b), "sync = yes\n", "sync = yes\nstate_failure = refuse\n", 1)
		if refuse == string(b) {
			t.Fatalf("config.ini has no \"sync = yes\" line to put state_failure = refuse after:\n%s", b)
		}
		if err := os.WriteFile(ini, []byte(refuse), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	w.calls("before", 20)
	filler := fill(t, state)
	refused := 0
	for i := 0; i < 10000 && refused == 0; i++ {
		id := fmt.Sprintf("full-%d@disk", i)
		reply, err := w.px.Call(proxytest.Request("init", "ruri", "sip:0031650123456@example.com", "diverter", "None",
			"sourceip", "10.0.0.1", "callid", id, "from", "<sip:"+account(i%20)+">;tag=t", "fromtag", "t",
			"prepaid", "true", "call_limit", "0", "call_token", "None"))
		switch {
		case err != nil:
			t.Fatal(err)
		case reply == "Error":
			refused++
		case reply == "Limited":
			if reply, err := w.px.Call(proxytest.Request("start", "callid", id, "dialogid", fmt.Sprintf("1:%d", i))); err != nil || reply != "Ok" {
				t.Fatalf("start %s: %q %v", id, reply, err)
			}
			w.answered = append(w.answered, id)
		default:
			t.Fatalf("init %s: %q", id, reply)
		}
	}
	if refused == 0 {
		t.Fatal("no init refused on a full disk")
	}
	os.Remove(filler)
	deadline := time.Now().Add(30 * time.Second)
	for {
		since, err := w.d.notDurableSince()
		if err != nil {
			t.Fatal(err)
		}
		if since == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still not durable 30 s after space came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.calls("after", 20)
	w.d.Kill()
	w.d.Start()
	w.checkAllTracked()
}
