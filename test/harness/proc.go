package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process in its own process group, with its output
// appended to a log file.
type Proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// startProcess starts bin in its own process group (Kamailio forks
// workers: they are signalled with it), in the log file's directory, with
// its output appended to the log file.
func startProcess(name, logPath, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = filepath.Dir(logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// StartProc starts bin in its own process group with its output in
// logPath. The process (and all its children) is stopped at the end of the
// test, and its log printed if the test failed.
func StartProc(t testing.TB, name, logPath, bin string, args ...string) *Proc {
	t.Helper()
	// Registered first so that it runs after the stop below (LIFO).
	t.Cleanup(func() {
		if t.Failed() {
			DumpLog(t, name, logPath)
		}
	})
	t.Logf("start %s: %s %s", name, bin, strings.Join(args, " "))
	p, err := startProcess(name, logPath, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	return p
}

// Name is the name the process was started under.
func (p *Proc) Name() string { return p.name }

// Err is the exit status, valid once Exited.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to exit and returns its exit status.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.name, d)
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
// It returns the exit status of the leader. Calling it twice is harmless.
func (p *Proc) Stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	if !p.Exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Children of the leader (Kamailio's workers) may outlive it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return p.err
}

// Kill ends the process group with SIGKILL, as a crash would, and waits
// for the leader to exit.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// LogPath is the file the process writes its output to.
func (p *Proc) LogPath() string { return p.log }

// LogText returns the log so far.
func (p *Proc) LogText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// LogLines returns the lines of the log that contain sub.
func (p *Proc) LogLines(sub string) []string { return grepLines(p.LogText(), sub) }

func grepLines(text, sub string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(text)))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// DumpLog prints the tail of a log file into the test output.
func DumpLog(t testing.TB, name, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("--- %s log %s: %v", name, path, err)
		return
	}
	const max = 64 * 1024
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	t.Logf("--- %s log (%s):\n%s--- end of %s log", name, path, b, name)
}
