package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/test/harness"
)

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
	*harness.Daemon
	Config DaemonConfig // with Dir filled in
}

// StartDaemon writes config.ini and starts callcontrold --no-fork --debug,
// and returns once its proxy socket accepts connections. Each Daemon has
// its own log: a restarted one (StartDaemon(t, d.Config)) logs afresh.
func StartDaemon(t testing.TB, cfg DaemonConfig) *Daemon {
	t.Helper()
	hd := harness.NewDaemon(t, cfg.Dir)
	cfg.Dir = hd.Dir
	if cfg.Limit == "" {
		cfg.Limit = "None"
	}
	d := &Daemon{Daemon: hd, Config: cfg}
	section := cfg.ProxySection
	if section == "" {
		section = "Kamailio"
	}
	proxy := "socket_path = " + cfg.RPCSocket + "\n"
	if cfg.DialogID != "" {
		proxy += "dialog_id = " + cfg.DialogID + "\n"
	}
	ini := fmt.Sprintf("[CallControl]\nsocket = %s\nlimit = %s\nstate_dir = %s\ncheck_interval = 1\n\n[%s]\n%s\n%s\n",
		d.Socket, cfg.Limit, d.StateDir(), section, proxy, cfg.Extra)
	d.WriteConfig(ini)
	t.Logf("daemon config.ini:\n%s", ini)
	d.Start()
	return d
}

// Ended returns the daemon's "call ended" log lines for callID.
func (d *Daemon) Ended(callID string) []string {
	var out []string
	for _, l := range d.LogLines(`msg="call ended"`) {
		if strings.Contains(l, "callid="+callID+" ") {
			out = append(out, l)
		}
	}
	return out
}

// Sessions lists the sessions a daemon listening on sock holds: its
// "Call id ..." lines.
func Sessions(t testing.TB, sock string) []string {
	t.Helper()
	reply, err := proxytest.Operator(sock, proxytest.Request("debug", "show", "sessions"))
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
