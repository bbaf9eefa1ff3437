package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// opensipsVersions are the OpenSIPS releases every OpenSIPS case runs
// against: the 3.4 long-term release and the newest 3.x. scripts/opensips.sh
// builds them from ../shared/peers.
var opensipsVersions = []string{"3.4.18", "3.6.8"}

// opensipsBuild is one version's build, made at most once per test run.
type opensipsBuild struct {
	once    sync.Once
	dir     string // holds sbin/opensips and modules/
	missing string // why there is nothing to build from
	err     error
}

var opensipsBuilds = struct {
	sync.Mutex
	byVersion map[string]*opensipsBuild
}{byVersion: map[string]*opensipsBuild{}}

// requireOpenSIPS returns the directory of an OpenSIPS build of version,
// building it first with scripts/opensips.sh if the cache has none (one to
// three minutes). Without the source archive the test is skipped with one
// line saying what is missing; CI (which must have it) fails instead.
func requireOpenSIPS(t testing.TB, version string) string {
	t.Helper()
	opensipsBuilds.Lock()
	b := opensipsBuilds.byVersion[version]
	if b == nil {
		b = &opensipsBuild{}
		opensipsBuilds.byVersion[version] = b
	}
	opensipsBuilds.Unlock()
	b.once.Do(func() {
		start := time.Now()
		b.dir, b.missing, b.err = buildOpenSIPS(version)
		if b.err == nil && b.missing == "" {
			t.Logf("OpenSIPS %s in %s (%v)", version, b.dir, time.Since(start).Round(time.Millisecond))
		}
	})
	if b.missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(b.missing)
		}
		t.Skip(b.missing)
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// buildOpenSIPS runs scripts/opensips.sh dir VERSION. Its exit status 3
// means the source archive is missing (missing says which).
func buildOpenSIPS(version string) (dir, missing string, err error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", "", err
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "opensips.sh"), "dir", version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		return "", strings.TrimSpace(lastLine(stderr.String())), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("scripts/opensips.sh dir %s: %v\n%s", version, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), "", nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// OpenSIPSConfig selects the OpenSIPS a test runs and what it talks to.
type OpenSIPSConfig struct {
	Version string // one of opensipsVersions
	// CCSocket is the daemon's proxy socket (call_control socket_name);
	// MISocket is where mi_datagram listens. StartStack sets both.
	CCSocket, MISocket string
	// Workers is udp_workers; 0: one.
	Workers int
	// CCTimeoutMS is call_control's socket_timeout; 0 keeps the module's
	// default (500). Give the daemon the same proxy_timeout.
	CCTimeoutMS int
	// Prepaid sets the call_control prepaid flag for every caller, so
	// call_control() sends "prepaid: true".
	Prepaid bool
	// DialogID is the daemon's [OpenSIPS] dialog_id ("" for the default,
	// callid): StartStack configures the daemon with it and the RPCSpy
	// checks the dlg_end_dlg requests against it.
	DialogID string
}

// OpenSIPS is a running OpenSIPS on 127.0.0.1:Port, with test/e2e/opensips.cfg.
type OpenSIPS struct {
	*harness.Proc
	Config OpenSIPSConfig
	Port   int
	Dir    string
	bin    string
	cfg    string // the cfg file written for this instance
	starts int
}

// Addr is the proxy's SIP address, for sipp's -rsa.
func (o *OpenSIPS) Addr() string { return "127.0.0.1:" + strconv.Itoa(o.Port) }

// Name is "opensips VERSION", for messages.
func (o *OpenSIPS) Name() string { return "opensips " + o.Config.Version }

// StartOpenSIPS writes a copy of opensips.cfg with the test's port, paths,
// worker count and prepaid flag, and starts OpenSIPS in the foreground.
// It returns once the SIP port is bound and the MI answers. Start the
// daemon first: a process that fails to reach it waits 10 s before it
// tries again.
func StartOpenSIPS(t testing.TB, cfg OpenSIPSConfig) *OpenSIPS {
	t.Helper()
	build := requireOpenSIPS(t, cfg.Version)
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.CCTimeoutMS == 0 {
		cfg.CCTimeoutMS = 500
	}
	o := &OpenSIPS{Config: cfg, Dir: harness.ShortDir(t, "cce2e-osips"), bin: filepath.Join(build, "sbin", "opensips")}
	if o.Config.MISocket == "" {
		o.Config.MISocket = filepath.Join(o.Dir, "mi.sock")
	}
	o.cfg = filepath.Join(o.Dir, "opensips.cfg")
	// A port found free can be taken before OpenSIPS binds it (the machine
	// runs other suites): try another then.
	for attempt := 1; ; attempt++ {
		o.Port = freePortBlock(t, 1)
		text, err := opensipsCfg(filepath.Join(build, "modules"), o.Port, o.Config)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(o.cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if o.start(t) || attempt == 3 {
			break
		}
		t.Logf("%s: port %d taken meanwhile, trying another", o.Name(), o.Port)
	}
	o.ready(t)
	return o
}

// start runs the instance on its port. It returns false if OpenSIPS
// exited at once because another process holds the port.
func (o *OpenSIPS) start(t testing.TB) bool {
	t.Helper()
	// OpenSIPS binds a UDP port another OpenSIPS holds without complaint
	// (both set SO_REUSEADDR; spec/opensips-testing.md), and the two then
	// share its traffic: refuse to be the second.
	if !udpPortFree(o.Port) {
		t.Fatalf("SIP port 127.0.0.1:%d is in use: free it first", o.Port)
	}
	o.starts++
	o.Proc = harness.StartProc(t, o.Name(), filepath.Join(o.Dir, fmt.Sprintf("opensips-%d.log", o.starts)),
		o.bin, "-F", "-f", o.cfg, "-w", o.Dir)
	harness.WaitFor(t, o.Name()+" SIP port", nil, harness.StartTimeout, func() bool { return o.Exited() || !udpPortFree(o.Port) })
	return !(o.Exited() && len(o.LogLines("Address already in use")) > 0)
}

// ready waits until OpenSIPS has bound its SIP port and its MI answers.
func (o *OpenSIPS) ready(t testing.TB) {
	t.Helper()
	harness.WaitFor(t, o.Name()+" SIP port", o.Proc, harness.StartTimeout, func() bool { return !udpPortFree(o.Port) })
	harness.WaitFor(t, o.Name()+" MI socket", o.Proc, harness.StartTimeout, func() bool {
		_, err := o.MI("version", time.Second, nil)
		return err == nil
	})
}

// Restart stops OpenSIPS with SIGTERM, waits until it is gone (an exiting
// instance unlinks the MI socket even if a new one made it) and starts it
// again on the same port with the same configuration. Dialogs are lost:
// nothing here persists them.
func (o *OpenSIPS) Restart(t testing.TB) {
	t.Helper()
	if err := o.Proc.Stop(15 * time.Second); err != nil {
		t.Logf("%s exited with %v", o.Name(), err)
	}
	harness.WaitFor(t, o.Name()+" SIP port freed", nil, 10*time.Second, func() bool { return udpPortFree(o.Port) })
	o.start(t)
	o.ready(t)
}

// MI sends one JSON-RPC request to OpenSIPS' mi_datagram socket and
// returns the raw reply.
func (o *OpenSIPS) MI(method string, timeout time.Duration, params map[string]any) (json.RawMessage, error) {
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": "1"}
	if params != nil {
		req["params"] = params
	}
	return rpcCall(o.Config.MISocket, req, timeout)
}

// opensipsCfg is test/e2e/opensips.cfg with the lines marked "# test:
// NAME" set for this instance. A marked line that is missing (or one the
// test does not know) is an error: the cfg and the tests must not drift.
func opensipsCfg(modules string, port int, cfg OpenSIPSConfig) (string, error) {
	src, err := os.ReadFile("opensips.cfg")
	if err != nil {
		return "", err
	}
	set := map[string]string{
		"udp_workers": fmt.Sprintf("udp_workers = %d", cfg.Workers),
		"socket":      fmt.Sprintf("socket = udp:127.0.0.1:%d", port),
		"mpath":       fmt.Sprintf("mpath = %q", modules+"/"),
		"cc_socket":   fmt.Sprintf("modparam(\"call_control\", \"socket_name\", %q)", cfg.CCSocket),
		"mi_socket":   fmt.Sprintf("modparam(\"mi_datagram\", \"socket_name\", %q)", cfg.MISocket),
		"cc_timeout":  fmt.Sprintf("modparam(\"call_control\", \"socket_timeout\", %d)", cfg.CCTimeoutMS),
		"prepaid":     "$var(prepaid) = 0;",
	}
	if cfg.Prepaid {
		set["prepaid"] = "$var(prepaid) = 1;"
	}
	seen := map[string]bool{}
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if m := cfgMarkerRe.FindStringSubmatch(line); m != nil {
			name := m[1]
			v, ok := set[name]
			if !ok {
				return "", fmt.Errorf("opensips.cfg: unknown marker %q", name)
			}
			seen[name] = true
			indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
			line = indent + v + " # test: " + name
		}
		out.WriteString(line + "\n")
	}
	for name := range set {
		if !seen[name] {
			return "", fmt.Errorf("opensips.cfg: no line marked \"# test: %s\"", name)
		}
	}
	return out.String(), nil
}

// cfgMarkerRe finds the "# test: NAME" that ends a line the tests set.
var cfgMarkerRe = regexp.MustCompile(`\S.*# test: ([a-z_]+)$`)

// numericDialogIDRe is the OpenSIPS 3.1+ numeric dialog_id: h_entry and
// h_id in hex, least significant digit first.
var numericDialogIDRe = regexp.MustCompile(`^[0-9a-f]+\.[0-9a-f]+$`)

// ExpectOpenSIPS makes the spy check dialog-end requests as OpenSIPS' MI
// takes them: dlg_end_dlg with dialog_id a JSON string (a number goes
// through a C int), in the form of the daemon's dialog_id setting mode.
func (s *RPCSpy) ExpectOpenSIPS(mode string) {
	s.EndMethod = "dlg_end_dlg"
	s.CheckEnd = func(r RPCRequest) error {
		id, err := openSIPSDialogID(r)
		if err != nil {
			return err
		}
		switch mode {
		case "numeric":
			if !numericDialogIDRe.MatchString(id) {
				return fmt.Errorf("dialog_id %q is not the numeric <h_entry>.<h_id> in hex", id)
			}
		case "", "callid":
			if numericDialogIDRe.MatchString(id) {
				return fmt.Errorf("dialog_id %q is a numeric id, want the Call-ID", id)
			}
		}
		return nil
	}
}

// openSIPSDialogID is the dialog_id a dlg_end_dlg request names.
func openSIPSDialogID(r RPCRequest) (string, error) {
	var req struct {
		Params struct {
			DialogID json.RawMessage `json:"dialog_id"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &req); err != nil {
		return "", fmt.Errorf("params are not {\"dialog_id\": ...}: %v", err)
	}
	var id string
	if err := json.Unmarshal(req.Params.DialogID, &id); err != nil || id == "" {
		return "", fmt.Errorf("dialog_id %s is not a non-empty JSON string", req.Params.DialogID)
	}
	return id, nil
}

// endDialogIDs returns the dialog_ids of the dlg_end_dlg requests the spy
// saw, in order.
func endDialogIDs(t testing.TB, spy *RPCSpy) []string {
	t.Helper()
	var ids []string
	for _, r := range spy.EndRequests() {
		id, err := openSIPSDialogID(r)
		if err != nil {
			t.Errorf("dlg_end_dlg %s: %v", r.Raw, err)
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// assertEndsDone waits until OpenSIPS has answered the n dialog-end
// requests the daemon sent, and fails the test unless every answer is OK
// (a 404 means the dialog_id named nothing: the call was not ended by it).
func assertEndsDone(t testing.TB, spy *RPCSpy, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(endReplies(spy)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	reps := endReplies(spy)
	if len(reps) != n {
		t.Errorf("OpenSIPS answered %d dialog-end requests, want %d: %q", len(reps), n, reps)
	}
	for _, r := range reps {
		if !strings.Contains(r, `"result":"OK"`) {
			t.Errorf("OpenSIPS answered %s to a dialog-end request, want result OK", r)
		}
	}
}

// endReplies are OpenSIPS' answers to dialog-end requests: "OK" or an
// error. The daemon's other MI requests (its check that the socket
// answers) get a JSON object as their result; the ids cannot tell them
// apart, as the daemon numbers each client's requests from 1.
func endReplies(spy *RPCSpy) []string {
	var out []string
	for _, r := range spy.Replies() {
		var rep struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal([]byte(r), &rep) != nil || rep.Error != nil || !strings.HasPrefix(string(rep.Result), "{") {
			out = append(out, r)
		}
	}
	return out
}
