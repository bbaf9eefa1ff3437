package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is callcontrold run as a process over one directory: etc/
// (config.ini), run/ (its sockets) and state/. It may be started again
// after Stop or Kill, with the same state; every run appends to one log
// file. At the end of the test it is killed, and its log printed if the
// test failed.
type Daemon struct {
	Dir     string
	Socket  string // the proxy socket: run/socket
	Control string // the control socket: run/control

	t   testing.TB
	log string

	mu   sync.Mutex
	proc *Proc // the current run; nil when stopped
	runs int
}

// NewDaemon prepares a daemon in dir ("" makes a new directory); write
// its configuration with WriteConfig, then Start it.
func NewDaemon(t testing.TB, dir string) *Daemon {
	t.Helper()
	if dir == "" {
		dir = ShortDir(t, "cc")
	}
	d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "run", "socket"), Control: filepath.Join(dir, "run", "control"),
		t: t, log: filepath.Join(dir, fmt.Sprintf("daemon-%d.log", time.Now().UnixNano()))}
	for _, sub := range []string{"etc", "run", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		d.Kill()
		// A race-enabled daemon reports a data race on its stderr (the
		// log) and runs on; its exit status would say so only at a clean
		// exit, and most tests end it with SIGKILL.
		if b, _ := os.ReadFile(d.log); bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Error("callcontrold reported a data race (its log below)")
		}
		if t.Failed() {
			DumpLog(t, "callcontrold", d.log)
		}
	})
	return d
}

// ConfigDir is the daemon's --config-dir; RunDir its --runtime-dir;
// StateDir the state_dir to put in its config.
func (d *Daemon) ConfigDir() string { return filepath.Join(d.Dir, "etc") }
func (d *Daemon) RunDir() string    { return filepath.Join(d.Dir, "run") }
func (d *Daemon) StateDir() string  { return filepath.Join(d.Dir, "state") }

// WriteConfig writes etc/config.ini.
func (d *Daemon) WriteConfig(ini string) {
	d.t.Helper()
	if err := os.WriteFile(filepath.Join(d.ConfigDir(), "config.ini"), []byte(ini), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// Start runs callcontrold --no-fork --debug and returns once its proxy
// socket accepts connections.
func (d *Daemon) Start() {
	d.t.Helper()
	bin := DaemonBin(d.t)
	d.mu.Lock()
	if d.proc != nil {
		d.mu.Unlock()
		d.t.Fatal("callcontrold started twice")
	}
	d.runs++
	err := appendLine(d.log, fmt.Sprintf("==== run %d at %s\n", d.runs, time.Now().Format(time.StampMicro)))
	var p *Proc
	if err == nil {
		p, err = startProcess("callcontrold", d.log, bin,
			"--no-fork", "--debug", "--config-dir", d.ConfigDir(), "--runtime-dir", d.RunDir())
	}
	d.proc = p
	d.mu.Unlock()
	if err != nil {
		d.t.Fatal(err)
	}
	WaitFor(d.t, "callcontrold proxy socket", p, StartTimeout, func() bool {
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// take returns the current run and forgets it.
func (d *Daemon) take() *Proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.proc
	d.proc = nil
	return p
}

// ErrNoExit is Terminate's error for a daemon that ignored SIGTERM.
var ErrNoExit = errors.New("callcontrold did not exit after SIGTERM: killed")

// Terminate sends the daemon SIGTERM and returns its exit status (nil:
// exit 0), or ErrNoExit if it had to be killed after grace.
func (d *Daemon) Terminate(grace time.Duration) error {
	p := d.take()
	if p == nil {
		return errors.New("callcontrold is not running")
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	if err := p.Wait(grace); err != nil && !p.Exited() {
		p.Kill()
		return ErrNoExit
	}
	return p.Err()
}

// Stop ends the daemon with SIGTERM (a clean shutdown) and fails the test
// unless it exits 0 within 30 s. Start runs it again.
func (d *Daemon) Stop() {
	d.t.Helper()
	if d.Proc() == nil {
		return
	}
	if err := d.Terminate(30 * time.Second); err != nil {
		d.t.Errorf("callcontrold did not stop cleanly: %v", err)
	}
}

// Kill ends the daemon with SIGKILL, as a crash would. Start runs it
// again.
func (d *Daemon) Kill() {
	if p := d.take(); p != nil {
		p.Kill()
	}
}

// Proc is the current run (nil when stopped), for WaitFor and Wait.
func (d *Daemon) Proc() *Proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proc
}

// Runs is how many times the daemon was started so far.
func (d *Daemon) Runs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs
}

// LogPath is the daemon's log file (all runs).
func (d *Daemon) LogPath() string { return d.log }

// logLag is how late a running daemon writes the lines it logged: its
// log sink writes every 100 ms while lines keep coming (logTickBusy in
// internal/daemon/logging.go), 5 ms after a quiet spell. A stopped daemon
// has written everything.
const logLag = 150 * time.Millisecond

// LogText returns the log of every run so far, with every line a running
// daemon logged before the call.
func (d *Daemon) LogText() string {
	d.mu.Lock()
	running := d.proc != nil
	d.mu.Unlock()
	if running {
		time.Sleep(logLag)
	}
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// LogLines returns the lines of the log that contain sub.
func (d *Daemon) LogLines(sub string) []string { return grepLines(d.LogText(), sub) }

// ControlRequest sends one request (a JSON object, without the line end)
// on the control socket and returns the reply line.
func (d *Daemon) ControlRequest(req string) ([]byte, error) {
	c, err := net.DialTimeout("unix", d.Control, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req + "\n")); err != nil {
		return nil, err
	}
	return bufio.NewReader(c).ReadBytes('\n')
}
