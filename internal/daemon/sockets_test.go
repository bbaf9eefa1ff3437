package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/callcontrol/callcontrol/internal/config"
	"time"
)

// A second daemon started with the same runtime directory (and its own
// proxy socket and state) must refuse to start without removing any of
// the running daemon's sockets: it once deleted dialog.sock, and every
// later dialog end of the first daemon timed out.
func TestSecondDaemonSameRuntimeDirLeavesSocketsAlone(t *testing.T) {
	e := newEnv(t, "limit = 600", "")
	if got := e.call(initReq("c1", "alice")); got != "Limited" {
		t.Fatal(got)
	}
	if got := e.call("start\ncallid: c1\ndialogid: 5:6"); got != "Ok" {
		t.Fatal(got)
	}
	dir2 := t.TempDir()
	cfg := fmt.Sprintf("[CallControl]\nsocket = %s/socket\ngroup = nogroup\nstate_dir = %s/state\nsync = no\n[Kamailio]\nsocket_path = %s\n",
		dir2, dir2, e.kam.Path())
	os.WriteFile(filepath.Join(dir2, "config.ini"), []byte(cfg), 0o644)
	d2, err := Start(Options{ConfigDir: dir2, RuntimeDir: e.opts.RuntimeDir}, slog.New(slog.DiscardHandler))
	if err == nil {
		d2.Stop()
		t.Fatal("second daemon started on the same runtime directory")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second daemon: %v", err)
	}
	for _, name := range []string{"dialog.sock", "control", "socket"} {
		if _, err := os.Stat(filepath.Join(e.opts.RuntimeDir, name)); err != nil {
			t.Fatalf("%s of the running daemon: %v", name, err)
		}
	}
	// Every socket still works: the dialog end goes out and its reply
	// comes back to dialog.sock.
	if _, err := e.ctl().Terminate("c1"); err != nil {
		t.Fatal(err)
	}
	e.kam.WaitFor(1, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for e.d.dialogs.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dialog end's reply never reached dialog.sock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.call("stop\ncallid: nothing"); got != "Not found" {
		t.Fatalf("proxy socket: %q", got)
	}
}

// A second daemon started with the first one's --pid-file (as the init
// script starts every daemon) and refused, because the first serves the
// socket, must leave the pid file alone: it once removed it on its way
// out, and the init script then took the running daemon for stopped.
func TestRefusedSecondDaemonLeavesThePidFile(t *testing.T) {
	e := newEnv(t, "limit = 60", "")
	e.opts.PidFile = filepath.Join(e.opts.RuntimeDir, "callcontrold.pid")
	e.restart()
	want := fmt.Sprintf("%d\n", os.Getpid())
	if b, err := os.ReadFile(e.opts.PidFile); err != nil || string(b) != want {
		t.Fatalf("pid file of the first daemon: %q %v, want %q", b, err, want)
	}
	d2, err := Start(e.opts, slog.New(slog.DiscardHandler))
	if err == nil {
		d2.Stop()
		t.Fatal("second daemon started")
	}
	if b, err := os.ReadFile(e.opts.PidFile); err != nil || string(b) != want {
		t.Fatalf("pid file after the refused second daemon: %q %v, want %q", b, err, want)
	}
	if got := e.call("stop\ncallid: x"); got != "Not found" {
		t.Fatalf("first daemon disturbed: %q", got)
	}
	// The daemon that wrote it still removes it when it stops.
	e.d.Stop()
	e.d = nil
	if _, err := os.Stat(e.opts.PidFile); !os.IsNotExist(err) {
		t.Fatalf("pid file after the first daemon stopped: %v", err)
	}
}

func TestUnsafeDirectoriesWarned(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o1777)
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	safe := filepath.Join(dir, "safe")
	os.Mkdir(safe, 0o755)
	if os.Geteuid() == 0 {
		os.Chown(other, 65534, 65534)
	}
	var buf bytes.Buffer
	warnUnsafeDirs(slog.New(slog.NewTextHandler(&buf, nil)), map[string]string{open: "the state", other: "the sockets", safe: "the rest"})
	out := buf.String()
	if !strings.Contains(out, "writable by every local user") || !strings.Contains(out, "dir="+open) || strings.Contains(out, "dir="+safe) {
		t.Fatalf("log:\n%s", out)
	}
	if os.Geteuid() == 0 && !strings.Contains(out, "owned by another user") {
		t.Fatalf("another user's directory not warned about:\n%s", out)
	}
}

// A config.ini that is a FIFO, or a limit past its range, stops the start
// at once with one line.
func TestBadConfigRefusedAtOnce(t *testing.T) {
	fifoDir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "config.ini"), 0o644); err != nil {
		t.Fatal(err)
	}
	limitDir := t.TempDir()
	os.WriteFile(filepath.Join(limitDir, "config.ini"), []byte("[CallControl]\ngroup = nogroup\nlimit = 9300000000\n"), 0o644)
	for dir, want := range map[string]string{fifoDir: "not a regular file (a FIFO)", limitDir: `[CallControl] limit = "9300000000": must be a number of seconds from 0 to 2592000`} {
		done := make(chan error, 1)
		go func() {
			_, err := Start(Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run")}, slog.New(slog.DiscardHandler))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v", dir, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: start still waiting after 10 s", dir)
		}
	}
}

func TestReadableSecretsWarned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.ini")
	for _, tt := range []struct {
		file string
		mode os.FileMode
		warn bool
	}{
		{"[RadiusDatabase]\nuser = r\npassword = p\n", 0o644, true},
		{"[RadiusAccounting]\nlisten = :1813\nsecret = s\n", 0o644, true},
		{"[RadiusDatabase]\nuser = r\npassword = p\n", 0o640, false},
		{"[CallControl]\nlimit = 5\n", 0o644, false},
	} {
		os.WriteFile(path, []byte(tt.file), tt.mode)
		os.Chmod(path, tt.mode)
		cfg, _, err := config.LoadFile(path, dir, false)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		warnReadableSecrets(slog.New(slog.NewTextHandler(&buf, nil)), cfg)
		if got := strings.Contains(buf.String(), "every local user can read it"); got != tt.warn {
			t.Errorf("%q mode %v: warned %t\n%s", tt.file, tt.mode, got, buf.String())
		}
	}
}
