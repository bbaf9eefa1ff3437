package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// KamailioConfig selects what the test's Kamailio talks to.
type KamailioConfig struct {
	// CCSocket is the daemon's proxy socket (call_control socket_name).
	CCSocket string
	// CCTimeoutMS is call_control's socket_timeout; 0 keeps the module's
	// default (500).
	CCTimeoutMS int
	// RPCSocket is where Kamailio's jsonrpcs listens; "" puts it in
	// Kamailio's own directory. Set it when the daemon must know the path
	// before Kamailio starts.
	RPCSocket string
	// NoDialogFlag leaves out the dialog module's dlg_flag (the modparam,
	// and the setflag before call_control()): the misconfiguration that
	// makes no dialogs, so that no call is limited.
	NoDialogFlag bool
}

// Kamailio is a running Kamailio on 127.0.0.1:Port.
type Kamailio struct {
	*harness.Proc
	Port      int
	Dir       string
	RPCSocket string // jsonrpcs datagram socket: give it to the daemon
}

// Addr is the proxy's SIP address, for sipp's -rsa.
func (k *Kamailio) Addr() string { return "127.0.0.1:" + strconv.Itoa(k.Port) }

// Name is "kamailio", for messages.
func (k *Kamailio) Name() string { return "kamailio" }

// StartKamailio starts Kamailio in the foreground with test/e2e/kamailio.cfg.
// Start the daemon first: a Kamailio process that fails to reach it waits
// 10 s before it tries again.
func StartKamailio(t testing.TB, cfg KamailioConfig) *Kamailio {
	t.Helper()
	bin := harness.RequireTool(t, "kamailio", "kamailio")
	cfgFile, err := filepath.Abs("kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.ShortDir(t, "cce2e-kam")
	k := &Kamailio{Dir: dir, RPCSocket: cfg.RPCSocket}
	if k.RPCSocket == "" {
		k.RPCSocket = filepath.Join(dir, "rpc.sock")
	}
	// A port found free can be taken before Kamailio binds it: try another.
	for attempt := 1; ; attempt++ {
		k.Port = freePortBlock(t, 1)
		if !udpPortFree(k.Port) {
			t.Fatalf("SIP port 127.0.0.1:%d is in use (a Kamailio service?): free it first", k.Port)
		}
		args := []string{
			"-f", cfgFile, "-DD", "-E", "-Y", dir, "-w", dir,
			"-m", "64", "-M", "8",
			"-A", "SIP_PORT=" + strconv.Itoa(k.Port),
			"-A", fmt.Sprintf("CC_SOCKET=%q", cfg.CCSocket),
			"-A", fmt.Sprintf("RPC_SOCKET=%q", k.RPCSocket),
		}
		if cfg.CCTimeoutMS > 0 {
			args = append(args, "-A", "CC_TIMEOUT="+strconv.Itoa(cfg.CCTimeoutMS))
		}
		if cfg.NoDialogFlag {
			args = append(args, "-A", "NO_DLG_FLAG")
		}
		k.Proc = harness.StartProc(t, "kamailio", filepath.Join(dir, fmt.Sprintf("kamailio-%d.log", attempt)), bin, args...)
		// Ready when the SIP port is bound and the RPC process answers.
		deadline := time.Now().Add(harness.StartTimeout)
		for udpPortFree(k.Port) && !k.Exited() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if k.Exited() && attempt < 3 && len(k.LogLines("Address already in use")) > 0 {
			t.Logf("kamailio: port %d taken meanwhile, trying another", k.Port)
			continue
		}
		break
	}
	harness.WaitFor(t, "kamailio SIP port", k.Proc, time.Second, func() bool { return !udpPortFree(k.Port) })
	harness.WaitFor(t, "kamailio RPC socket", k.Proc, harness.StartTimeout, func() bool {
		_, err := k.RPC("core.version", time.Second)
		return err == nil
	})
	return k
}

// RPC sends one JSON-RPC request to Kamailio's datagram socket and returns
// the raw reply.
func (k *Kamailio) RPC(method string, timeout time.Duration, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	return rpcCall(k.RPCSocket, map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1}, timeout)
}

// rpcCall sends req as one datagram to sock from a temporary named socket
// (Kamailio replies to the sender's address) and waits for the reply.
func rpcCall(sock string, req any, timeout time.Duration) (json.RawMessage, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(sock), "cli-*.sock")
	if err != nil {
		return nil, err
	}
	local := f.Name()
	f.Close()
	os.Remove(local)
	defer os.Remove(local)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.WriteToUnix(b, &net.UnixAddr{Name: sock, Net: "unixgram"}); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65536)
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(buf[:n]), nil
}

// RPCRequest is one JSON-RPC request seen by an RPCSpy.
type RPCRequest struct {
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	Raw    string            `json:"-"`
}

// RPCSpy stands between the daemon and Kamailio's JSON-RPC datagram socket:
// the daemon is configured with Socket, the spy relays every request to
// Kamailio and every reply back, and records the requests. It lets tests
// count dialog-end requests without depending on the daemon's log wording.
type RPCSpy struct {
	Socket string
	// EndMethod is the proxy's dialog-end method and CheckEnd says what is
	// wrong with one such request: Kamailio's unless ExpectOpenSIPS.
	EndMethod string
	CheckEnd  func(RPCRequest) error

	down *net.UnixConn // faces the daemon
	up   *net.UnixConn // faces Kamailio
	mu   sync.Mutex
	reqs []RPCRequest
	reps []string      // the proxy's replies, in order
	peer *net.UnixAddr // the last sender's address
	// byID: each request's sender by its JSON-RPC id, as the proxy
	// answers each sender (the daemon's dialog client and its probe send
	// from two sockets).
	byID map[string]*net.UnixAddr
	wg   sync.WaitGroup
}

// rpcID is the JSON-RPC id of a request or reply, "" if none.
func rpcID(b []byte) string {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	return string(m.ID)
}

// NewRPCSpy relays from a new socket in dir to target. It stops at the end
// of the test.
func NewRPCSpy(t testing.TB, dir, target string) *RPCSpy {
	t.Helper()
	s := &RPCSpy{Socket: filepath.Join(dir, "spy.sock"), EndMethod: "dlg.end_dlg", CheckEnd: checkKamailioEnd,
		byID: map[string]*net.UnixAddr{}}
	var err error
	s.down, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.Socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s.up, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "spy-up.sock"), Net: "unixgram"})
	if err != nil {
		s.down.Close()
		t.Fatal(err)
	}
	// Kamailio may have to write to it as another user in other setups.
	_ = os.Chmod(s.Socket, 0o666)
	tgt := &net.UnixAddr{Name: target, Net: "unixgram"}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := s.down.ReadFromUnix(buf)
			if err != nil {
				return
			}
			var r RPCRequest
			_ = json.Unmarshal(buf[:n], &r)
			r.Raw = string(buf[:n])
			s.mu.Lock()
			s.reqs = append(s.reqs, r)
			s.peer = from
			if id := rpcID(buf[:n]); id != "" {
				s.byID[id] = from
			}
			s.mu.Unlock()
			if _, err := s.up.WriteToUnix(buf[:n], tgt); err != nil {
				t.Logf("rpc spy: relay to kamailio: %v", err)
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := s.up.ReadFromUnix(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.reps = append(s.reps, string(buf[:n]))
			peer := s.peer
			if p := s.byID[rpcID(buf[:n])]; p != nil {
				peer = p
			}
			s.mu.Unlock()
			if peer == nil {
				continue
			}
			if _, err := s.down.WriteToUnix(buf[:n], peer); err != nil {
				t.Logf("rpc spy: relay reply to daemon: %v", err)
			}
		}
	}()
	t.Cleanup(func() {
		s.down.Close()
		s.up.Close()
		s.wg.Wait()
	})
	return s
}

// Requests returns the requests seen so far.
func (s *RPCSpy) Requests() []RPCRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RPCRequest(nil), s.reqs...)
}

// Replies returns the proxy's replies seen so far.
func (s *RPCSpy) Replies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reps...)
}

// EndRequests returns the dialog-end requests seen so far.
func (s *RPCSpy) EndRequests() []RPCRequest {
	var ends []RPCRequest
	for _, r := range s.Requests() {
		if r.Method == s.EndMethod {
			ends = append(ends, r)
		}
	}
	return ends
}

// Count returns how many requests of method were seen.
func (s *RPCSpy) Count(method string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}
