// Package e2e runs callcontrold against a real Kamailio and real sipp
// endpoints on loopback. The helpers here (processes, ports, logs) are shared
// by every end-to-end test; kamailio_test.go, daemon_test.go and
// sipp_test.go start the three kinds of peers.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long any peer may take to come up; generous
// because the machine is shared and slow at times.
const startTimeout = 20 * time.Second

// requireTool finds a binary the suite needs. Missing tools skip the test
// locally but fail it in CI, where .ci/run must have installed them.
func requireTool(t testing.TB, bin, debianPkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found in PATH: install the Debian package %q (apt-get install %s)", bin, debianPkg, debianPkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// requirePeers is called first by every test that needs Kamailio and sipp.
func requirePeers(t testing.TB) {
	t.Helper()
	requireTool(t, "kamailio", "kamailio")
	requireTool(t, "sipp", "sip-tester")
}

// shortDir makes a private directory with a short path: Unix socket paths
// are limited to 107 bytes and t.TempDir() paths of subtests can be long.
func shortDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cce2e-"+prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// udpPortFree reports whether 127.0.0.1:port can be bound now.
func udpPortFree(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// freePortBlock returns a base port such that base..base+n-1 are all free on
// 127.0.0.1 (UDP). Random bases keep parallel runs of the suite (other
// engineers, CI) apart; the range stays below Linux's ephemeral ports
// (32768 and up), which any process may be given at any moment.
func freePortBlock(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(12000)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = udpPortFree(p)
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no block of %d free UDP ports found on 127.0.0.1", n)
	return 0
}

// proc is a child process in its own process group, with its output in a
// log file that is printed when the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// startProc starts bin in its own process group. The process (and all its
// children: Kamailio forks workers) is killed at the end of the test, and
// its log printed if the test failed.
func startProc(t testing.TB, name, logPath string, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Dir = filepath.Dir(logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	// Registered first so that it runs after the kill below (LIFO).
	t.Cleanup(func() {
		if t.Failed() {
			dumpLog(t, name, logPath)
		}
	})
	t.Logf("start %s: %s %s", name, bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its exit status.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.name, d)
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
// It returns the exit status of the leader. Calling it twice is harmless.
func (p *proc) stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	if !p.exited() {
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

// logText returns the process's output so far.
func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// logLines returns the lines of the process's output that contain sub.
func (p *proc) logLines(sub string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(p.logText())))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// dumpLog prints the tail of a log file into the test output.
func dumpLog(t testing.TB, name, path string) {
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

// waitFor polls cond until it is true, the deadline passes, or p (if not
// nil) exits; it fails the test with what in the latter two cases.
func waitFor(t testing.TB, what string, p *proc, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if p != nil && p.exited() {
			t.Fatalf("%s: %s exited (%v) before it was ready", what, p.name, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
