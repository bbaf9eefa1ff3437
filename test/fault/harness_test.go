package fault

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// daemonBin is the callcontrold built once by TestMain; read-only after.
var daemonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ccfault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if p := os.Getenv("CALLCONTROLD"); p != "" {
			daemonBin = p
		} else {
			daemonBin = filepath.Join(dir, "callcontrold")
			cmd := exec.Command("go", "build", "-o", daemonBin, "./cmd/callcontrold")
			cmd.Dir = filepath.Join("..", "..")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go build ./cmd/callcontrold: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// seed returns the random seed of a test: $FAULT_SEED to replay a run,
// else a fresh one, logged either way.
func seed(t *testing.T) *rand.Rand {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED: %v", err)
		}
		s = n
	}
	t.Logf("random seed %d (replay with FAULT_SEED=%d)", s, s)
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

// shortDir is a private directory with a short path (Unix socket paths are
// limited to 107 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ccf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("FAULT_KEEP") != "" {
			t.Logf("kept %s", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

// daemonConfig is what a test puts in config.ini.
type daemonConfig struct {
	PrepaidLimit int    // seconds
	Engine       string // [CDRTool] address
	RPCSocket    string // [Kamailio] socket_path
	Sync         string // [CallControl] sync; "" is yes
}

// daemon is callcontrold run as a process; it is started again (same
// directories, same state) after stop or kill.
type daemon struct {
	t       *testing.T
	dir     string
	sock    string // proxy socket
	control string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	runs int
}

func newDaemon(t *testing.T, cfg daemonConfig) *daemon {
	t.Helper()
	dir := shortDir(t)
	d := &daemon{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"),
		control: filepath.Join(dir, "run", "control"), logPath: filepath.Join(dir, "daemon.log")}
	for _, sub := range []string{"etc", "run", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Generous deadlines: the machine is shared and noisy. check_interval
	// 1 and setup_time 8 let calls whose init reply was lost (the daemon
	// went down) be dropped quickly, as the proxy never starts them.
	ini := fmt.Sprintf(`[CallControl]
socket = %s
control_socket = %s
state_dir = %s
limit = None
prepaid_limit = %d
check_interval = 1
setup_time = 8
proxy_timeout = 2000
sync = %s

[CDRTool]
address = %s
timeout = 1000

[Kamailio]
socket_path = %s
`, d.sock, d.control, filepath.Join(dir, "state"), cfg.PrepaidLimit, cmp.Or(cfg.Sync, "yes"), cfg.Engine, cfg.RPCSocket)
	if err := os.WriteFile(filepath.Join(dir, "etc", "config.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			d.dumpLog(60)
		}
	})
	return d
}

// start runs the daemon and waits until its proxy socket answers.
func (d *daemon) start() {
	d.t.Helper()
	lf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	d.runs++
	fmt.Fprintf(lf, "==== run %d at %s\n", d.runs, time.Now().Format(time.StampMicro))
	cmd := exec.Command(daemonBin, "--no-fork", "--debug", "--config-dir", filepath.Join(d.dir, "etc"),
		"--runtime-dir", filepath.Join(d.dir, "run"))
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		d.mu.Unlock()
		lf.Close()
		d.t.Fatalf("start callcontrold: %v", err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	go func() { cmd.Wait(); lf.Close(); close(done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			d.dumpLog(50)
			d.t.Fatalf("callcontrold exited at start: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			d.dumpLog(50)
			d.t.Fatal("callcontrold: proxy socket not up after 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM (a clean shutdown) and requires a
// clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		d.t.Errorf("callcontrold did not stop within 30 s of SIGTERM")
		return
	}
	if !cmd.ProcessState.Success() {
		d.t.Errorf("callcontrold exited with %v after SIGTERM", cmd.ProcessState)
	}
}

// kill ends the daemon with SIGKILL, as a crash would.
func (d *daemon) kill() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

func (d *daemon) dumpLog(n int) {
	lines := strings.Split(strings.TrimRight(d.logText(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	d.t.Logf("last %d lines of the daemon's log (%s):\n%s", len(lines), d.logPath, strings.Join(lines, "\n"))
}

// debitsWaiting asks the control socket (one JSON object per line) how
// many debits the daemon still owes.
func (d *daemon) debitsWaiting() (int, error) {
	c, err := net.DialTimeout("unix", d.control, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(`{"v":1,"cmd":"stats"}` + "\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return 0, err
	}
	var resp struct {
		OK    bool `json:"ok"`
		Stats *struct {
			DebitsWaiting int `json:"debits_waiting"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(line, &resp); err != nil || !resp.OK || resp.Stats == nil {
		return 0, fmt.Errorf("stats: %q (%v)", line, err)
	}
	return resp.Stats.DebitsWaiting, nil
}

// proxyConn is one connection of the fake proxy: strictly one request,
// then its reply, like the call_control module. A broken connection is
// dropped and dialled again on the next request.
type proxyConn struct {
	path string
	mu   sync.Mutex
	c    net.Conn
	r    *bufio.Reader
}

// proxyClient spreads requests over several connections, as a proxy whose
// workers each connected on their own.
type proxyClient struct {
	conns []*proxyConn
	next  atomic.Uint64
}

func newProxyClient(t *testing.T, path string, n int) *proxyClient {
	p := &proxyClient{}
	for range n {
		p.conns = append(p.conns, &proxyConn{path: path})
	}
	t.Cleanup(func() {
		for _, c := range p.conns {
			c.mu.Lock()
			if c.c != nil {
				c.c.Close()
			}
			c.mu.Unlock()
		}
	})
	return p
}

// request formats a request as the module writes it.
func request(cmd string, kv ...string) string {
	var b strings.Builder
	b.WriteString(cmd + "\r\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + ": " + kv[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// call sends a call request and returns its one reply line, without "\r\n".
func (p *proxyClient) call(req string) (string, error) {
	return p.conns[p.next.Add(1)%uint64(len(p.conns))].do(req, false)
}

// debug sends an operator request and returns its lines up to the empty
// line that ends the reply.
func (p *proxyClient) debug(req string) (string, error) {
	return p.conns[p.next.Add(1)%uint64(len(p.conns))].do(req, true)
}

func (pc *proxyConn) do(req string, multi bool) (string, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.c == nil {
		c, err := net.DialTimeout("unix", pc.path, 2*time.Second)
		if err != nil {
			return "", err
		}
		pc.c, pc.r = c, bufio.NewReader(c)
	}
	pc.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := pc.c.Write([]byte(req)); err != nil {
		pc.drop()
		return "", err
	}
	var out bytes.Buffer
	for {
		line, err := pc.r.ReadString('\n')
		if err != nil {
			pc.drop()
			return "", fmt.Errorf("reading reply: %w (got %q)", err, out.String()+line)
		}
		if !strings.HasSuffix(line, "\r\n") {
			pc.drop()
			return "", fmt.Errorf("reply line without \\r\\n: %q", line)
		}
		if !multi {
			return strings.TrimSuffix(line, "\r\n"), nil
		}
		if line == "\r\n" {
			return out.String(), nil
		}
		out.WriteString(line)
	}
}

func (pc *proxyConn) drop() {
	pc.c.Close()
	pc.c, pc.r = nil, nil
}

// runCount is how many times the daemon was started so far.
func (d *daemon) runCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs
}
