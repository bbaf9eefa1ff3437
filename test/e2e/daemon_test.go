package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// daemonBuild is the callcontrold binary built once by TestMain, or the
// reason there is none (bin == "" and err == nil: no source yet). Set before any test runs, read-only afterwards.
var daemonBuild struct {
	bin string
	err error
}

// buildDaemon builds ./cmd/callcontrold, and the callcontrol CLI beside it
// (cliBin), into dir. $CALLCONTROLD names a prebuilt binary instead (with
// the CLI beside it, as make build leaves them).
func buildDaemon(dir string) (string, error) {
	if p := os.Getenv("CALLCONTROLD"); p != "" {
		return p, nil
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if src, _ := filepath.Glob(filepath.Join(root, "cmd", "callcontrold", "*.go")); len(src) == 0 {
		// Not written yet: StartStack falls back to the FakeDaemon.
		return "", nil
	}
	bin := filepath.Join(dir, "callcontrold")
	cmd := exec.Command("go", "build", "-race", "-o", dir+"/", "./cmd/callcontrold", "./cmd/callcontrol")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/callcontrold ./cmd/callcontrol: %v\n%s", err, out)
	}
	return bin, nil
}

// cliBin is the callcontrol CLI built with the daemon.
func cliBin() string { return filepath.Join(filepath.Dir(daemonBuild.bin), "callcontrol") }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cce2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBuild.bin, daemonBuild.err = buildDaemon(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// DaemonConfig is what a test sets in the daemon's config.ini.
type DaemonConfig struct {
	// Dir holds etc/ (config.ini), run/ (sockets) and state/. Empty: a new
	// directory. Give a stopped daemon's Dir to restart it with its state.
	Dir   string
	Limit string // [CallControl] limit: seconds or "None"
	// RPCSocket is [Kamailio] socket_path: Kamailio's JSON-RPC socket, or
	// an RPCSpy's. With ProxySection "OpenSIPS" it is [OpenSIPS]
	// socket_path: OpenSIPS' MI datagram socket.
	RPCSocket    string
	ProxySection string // "Kamailio" (default) or "OpenSIPS"
	DialogID     string // [OpenSIPS] dialog_id; "" leaves the default
	// Extra is appended to config.ini verbatim (e.g. a [CDRTool] section).
	Extra string
}

// Daemon is a running callcontrold.
type Daemon struct {
	*proc
	Config DaemonConfig // with Dir filled in
	Socket string       // the proxy socket
}

// StartDaemon writes config.ini and starts callcontrold --no-fork --debug,
// and returns once its proxy socket accepts connections.
func StartDaemon(t testing.TB, cfg DaemonConfig) *Daemon {
	t.Helper()
	if daemonBuild.err != nil {
		t.Fatalf("no callcontrold: %v", daemonBuild.err)
	}
	if cfg.Dir == "" {
		cfg.Dir = shortDir(t, "cc")
	}
	etc, run, state := filepath.Join(cfg.Dir, "etc"), filepath.Join(cfg.Dir, "run"), filepath.Join(cfg.Dir, "state")
	for _, d := range []string{etc, run, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Limit == "" {
		cfg.Limit = "None"
	}
	d := &Daemon{Config: cfg, Socket: filepath.Join(run, "socket")}
	section := cfg.ProxySection
	if section == "" {
		section = "Kamailio"
	}
	proxy := "socket_path = " + cfg.RPCSocket + "\n"
	if cfg.DialogID != "" {
		proxy += "dialog_id = " + cfg.DialogID + "\n"
	}
	ini := fmt.Sprintf("[CallControl]\nsocket = %s\nlimit = %s\nstate_dir = %s\ncheck_interval = 1\n\n[%s]\n%s\n%s\n",
		d.Socket, cfg.Limit, state, section, proxy, cfg.Extra)
	if err := os.WriteFile(filepath.Join(etc, "config.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon config.ini:\n%s", ini)
	d.proc = startProc(t, "callcontrold", filepath.Join(cfg.Dir, fmt.Sprintf("daemon-%d.log", time.Now().UnixNano())),
		daemonBuild.bin, "--no-fork", "--config-dir", etc, "--runtime-dir", run, "--debug")
	waitFor(t, "callcontrold proxy socket", d.proc, startTimeout, func() bool {
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return d
}

// Stop ends the daemon with SIGTERM (a clean shutdown) and fails the test
// if it does not exit cleanly. Start it again with StartDaemon(t, d.Config).
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(15 * time.Second); err != nil {
		t.Errorf("callcontrold did not stop cleanly: %v", err)
	}
}

// Ended returns the daemon's "call ended" log lines for callID.
func (d *Daemon) Ended(callID string) []string {
	var out []string
	for _, l := range d.logLines(`msg="call ended"`) {
		if strings.Contains(l, "callid="+callID+" ") {
			out = append(out, l)
		}
	}
	return out
}

// ProxyCommand sends one request (lines without line ends; the empty line
// is added) on a proxy socket and returns the reply. Replies to call
// requests are one line; operator commands end with an empty line.
func ProxyCommand(sock string, lines ...string) (string, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n")); err != nil {
		return "", err
	}
	operator := lines[0] == "debug"
	var buf bytes.Buffer
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		buf.Write(b[:n])
		s := buf.String()
		if !operator && strings.HasSuffix(s, "\r\n") {
			return s, nil
		}
		if operator && (s == "\r\n" || strings.HasSuffix(s, "\r\n\r\n")) {
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("reading reply to %q: %w (got %q)", lines[0], err, s)
		}
	}
}

// Sessions lists the sessions a daemon listening on sock holds: its
// "Call id ..." lines.
func Sessions(t testing.TB, sock string) []string {
	t.Helper()
	reply, err := ProxyCommand(sock, "debug", "show: sessions")
	if err != nil {
		t.Fatalf("show sessions: %v", err)
	}
	var out []string
	for _, l := range strings.Split(reply, "\r\n") {
		if strings.HasPrefix(l, "Call id") {
			out = append(out, l)
		}
	}
	return out
}

// WaitNoSessions waits until the daemon on sock holds no session.
func WaitNoSessions(t testing.TB, sock string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := Sessions(t, sock)
		if len(s) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("daemon still holds sessions after %v: %q", d, s)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
