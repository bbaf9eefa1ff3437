package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/testuser"
)

// proxyClientVar runs TestHelperProxyClient as the proxy's client: it
// sends the requests in CALLCONTROL_HELPER_REQUESTS (separated by "|")
// on CALLCONTROL_HELPER_SOCKET and prints each reply's first line.
const proxyClientVar = "CALLCONTROL_HELPER_PROXY_CLIENT"

func TestHelperProxyClient(t *testing.T) {
	if os.Getenv(proxyClientVar) == "" {
		return
	}
	c, err := proxytest.Dial(os.Getenv("CALLCONTROL_HELPER_SOCKET"))
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(2)
	}
	for _, req := range strings.Split(os.Getenv("CALLCONTROL_HELPER_REQUESTS"), "|") {
		reply, err := c.Call(proxytest.Lines(req))
		if err != nil {
			fmt.Println("read:", err)
			os.Exit(2)
		}
		fmt.Println("reply:", reply)
		if !strings.HasPrefix(req, "init") && reply != "" {
			// Operator replies end with an empty line.
			if _, err := c.OperatorReply(); err != nil {
				fmt.Println("read:", err)
				os.Exit(2)
			}
		}
	}
	os.Exit(0)
}

// The proxy's group lets a user talk to the proxy socket, but only the
// control socket's rule (root, the daemon's user, control_group) lets it
// list calls or end them there.
func TestProxySocketOperatorCommandsNeedControlAccess(t *testing.T) {
	u := testuser.Create(t, "nogroup") // in the proxy socket's group only
	e := newEnv(t, "limit = 600", "")
	if got := e.call(initReq("roots-call", "alice")); got != "Limited" {
		t.Fatal(got)
	}
	testuser.OpenPath(t, e.sock)
	cmd := u.Command(t, proxyClientVar, "1", "-test.run=^TestHelperProxyClient$")
	cmd.Env = append(cmd.Env, "CALLCONTROL_HELPER_SOCKET="+e.sock,
		"CALLCONTROL_HELPER_REQUESTS="+initReq("users-call", "bob")+"|debug\nshow: sessions|terminate\ncallid: roots-call|debug\nshow: session\ncallid: roots-call")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as %s: %v\n%s", u.Name, err, out)
	}
	want := []string{
		"reply: Limited",
		"reply: Error: permission denied: uid " + fmt.Sprint(u.UID) + " is not root or the daemon's user (no control group configured)",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || lines[0] != want[0] || lines[1] != want[1] || lines[2] != want[1] || lines[3] != want[1] {
		t.Fatalf("replies to uid %d:\n%s", u.UID, out)
	}
	if _, err := e.ctl().Session("roots-call"); err != nil {
		t.Fatalf("call ended by a refused terminate: %v", err)
	}
	if _, err := e.ctl().Session("users-call"); err != nil {
		t.Fatalf("the proxy user's init not served: %v", err)
	}
	// Root may, on the same socket.
	if got := e.call("debug\nshow: session\ncallid: roots-call"); got != "callid: roots-call" {
		t.Fatalf("root's debug: %q", got)
	}
}

// A member of control_group may use them on the proxy socket too.
func TestProxySocketOperatorCommandsForControlGroup(t *testing.T) {
	u := testuser.Create(t, "nogroup", "adm")
	e := newEnv(t, "limit = 600\ncontrol_group = adm", "")
	e.call(initReq("c1", "alice"))
	testuser.OpenPath(t, e.sock)
	cmd := u.Command(t, proxyClientVar, "1", "-test.run=^TestHelperProxyClient$")
	cmd.Env = append(cmd.Env, "CALLCONTROL_HELPER_SOCKET="+e.sock, "CALLCONTROL_HELPER_REQUESTS=terminate\ncallid: c1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "reply: Ok" {
		t.Fatalf("terminate by a control_group member: %v\n%s", err, out)
	}
}

func TestLegacyCommandsSwitchedOff(t *testing.T) {
	e := newEnv(t, "limit = 600\nlegacy_commands = no", "")
	e.call(initReq("c1", "alice"))
	for _, req := range []string{"debug\nshow: sessions", "terminate\ncallid: c1"} {
		if got := e.call(req); !strings.HasPrefix(got, "Error: ") || !strings.Contains(got, "legacy_commands = no") {
			t.Fatalf("%q as root with legacy_commands = no: %q", req, got)
		}
	}
	if _, err := e.ctl().Session("c1"); err != nil {
		t.Fatal(err)
	}
}

// A proxy socket group that does not exist stops the start (the socket
// was once made 0666 instead), naming the option and the proxy groups
// that do exist.
func TestMissingProxyGroupStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf("[CallControl]\nsocket = %s/run/socket\ngroup = no-such-group-x\nstate_dir = %s/state\n", dir, dir)
	os.WriteFile(filepath.Join(dir, "config.ini"), []byte(cfg), 0o644)
	_, err := Start(Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run")}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.HasPrefix(err.Error(), `[CallControl] group = "no-such-group-x": no such group; `) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "run", "socket")); serr == nil {
		t.Fatal("socket left behind")
	}
	t.Log(err)
}
