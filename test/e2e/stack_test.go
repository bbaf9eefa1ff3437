package e2e

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// StackConfig configures a daemon + proxy pair.
type StackConfig struct {
	Limit string // [CallControl] limit
	Extra string // appended to config.ini
	// OpenSIPS, if set, puts OpenSIPS in front of the daemon instead of
	// Kamailio.
	OpenSIPS *OpenSIPSConfig
	// NoDialogFlag: Kamailio's route does not set the dialog module's
	// dlg_flag (KamailioConfig.NoDialogFlag).
	NoDialogFlag bool
}

// Stack is callcontrold with a proxy (Kamailio or OpenSIPS) in front of it, and an
// RPCSpy between the daemon and the proxy's management socket.
type Stack struct {
	Dir      string
	Socket   string // the daemon's proxy socket
	Daemon   *Daemon
	Spy      *RPCSpy
	Proxy    Proxy     // Kamailio or OpenSIPS, whichever runs
	Kamailio *Kamailio // nil with OpenSIPS
	OpenSIPS *OpenSIPS // nil with Kamailio
	KamRPC   string    // the proxy's own management socket (Kamailio's JSON-RPC or OpenSIPS' MI)
}

// StartStack starts the daemon first, then the proxy (a Kamailio process
// waits 10 s after failing to reach the daemon).
func StartStack(t testing.TB, cfg StackConfig) *Stack {
	t.Helper()
	if cfg.OpenSIPS != nil {
		harness.RequireTool(t, "sipp", "sip-tester")
		requireOpenSIPS(t, cfg.OpenSIPS.Version)
	} else {
		requirePeers(t)
	}
	s := &Stack{Dir: harness.ShortDir(t, "cce2e-stack")}
	s.KamRPC = s.Dir + "/kam-rpc.sock"
	s.Spy = NewRPCSpy(t, s.Dir, s.KamRPC)
	daemonCfg := DaemonConfig{Limit: cfg.Limit, RPCSocket: s.Spy.Socket, Extra: cfg.Extra}
	if cfg.OpenSIPS != nil {
		s.Spy.ExpectOpenSIPS(cfg.OpenSIPS.DialogID)
		daemonCfg.ProxySection, daemonCfg.DialogID = "OpenSIPS", cfg.OpenSIPS.DialogID
	}
	s.Daemon = StartDaemon(t, daemonCfg)
	s.Socket = s.Daemon.Socket
	if cfg.OpenSIPS != nil {
		o := *cfg.OpenSIPS
		o.CCSocket, o.MISocket = s.Socket, s.KamRPC
		s.OpenSIPS = StartOpenSIPS(t, o)
		s.Proxy = s.OpenSIPS
	} else {
		s.Kamailio = StartKamailio(t, KamailioConfig{CCSocket: s.Socket, RPCSocket: s.KamRPC, NoDialogFlag: cfg.NoDialogFlag})
		s.Proxy = s.Kamailio
	}
	return s
}

// RestartDaemon stops the daemon cleanly and starts it again with the same
// configuration and state. Kamailio loses its connection: its processes
// wait 10 s after a failure to reach the daemon before trying again.
func (s *Stack) RestartDaemon(t testing.TB) {
	t.Helper()
	if s.Daemon == nil {
		t.Fatal("RestartDaemon needs the real callcontrold")
	}
	s.Daemon.Stop()
	s.Daemon = StartDaemon(t, s.Daemon.Config)
}

// CallConfig is one call from a sipp caller through the proxy to a sipp
// callee.
type CallConfig struct {
	Caller, Callee string // scenario files; Callee "" for calls the proxy refuses
	CallID         string
	PauseMS        int // the caller's <pause/>
	Timeout        time.Duration
}

// Call runs one call and waits for both endpoints; it fails the test unless
// both scenarios complete.
func (s *Stack) Call(t testing.TB, cfg CallConfig) (caller, callee *Sipp) {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	remote := "127.0.0.1:9" // nobody: the proxy refuses the call first
	if cfg.Callee != "" {
		callee = StartSipp(t, SippConfig{Name: "callee", Scenario: cfg.Callee, Timeout: cfg.Timeout})
		remote = callee.Addr()
	}
	caller = StartSipp(t, SippConfig{Name: "caller", Scenario: cfg.Caller, Remote: remote,
		Proxy: s.Proxy.Addr(), CallID: cfg.CallID, PauseMS: cfg.PauseMS, Timeout: cfg.Timeout})
	caller.Wait(t, cfg.Timeout+10*time.Second)
	if callee != nil {
		callee.Wait(t, cfg.Timeout+10*time.Second)
	}
	return caller, callee
}
