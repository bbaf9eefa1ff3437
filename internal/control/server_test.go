package control_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
	"github.com/callcontrol/callcontrol/internal/testuser"
)

var (
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sessionA = control.SessionInfo{CallID: "a@1", Party: "sip:alice@example.com", Destination: "sip:123@example.com",
		State: "in-progress", DialogID: "1:2", Prepaid: true, Created: t0, Answered: t0.Add(5 * time.Second), Limit: 3600, Remaining: 1200}
	sessionB = control.SessionInfo{CallID: "b@1", Party: "sip:bob@example.com", Destination: "sip:456@example.com",
		State: "pending", Created: t0, Limit: -1, Remaining: -1}
	stats = control.Stats{Sessions: map[string]int{"pending": 1, "in-progress": 1}, Parties: 2, EnginesUp: 1, EnginesTotal: 2,
		Uptime: 90 * time.Minute, Requests: 42, Version: "1.2.3"}
)

// childEnv makes the test binary act as a control client (run under another
// uid by TestRealPeerCredentials).
const childEnv = "CONTROL_TEST_CHILD_SOCKET"

func TestMain(m *testing.M) {
	testuser.ServeImpostor()
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(childClient(path))
	}
	os.Exit(m.Run())
}

// childClient asks for stats and prints the outcome as one JSON line.
func childClient(path string) int {
	out := struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Code  string `json:"code"`
	}{}
	c, err := control.Dial(path, 30*time.Second)
	if err == nil {
		_, err = c.Stats()
		c.Close()
	}
	out.OK = err == nil
	if err != nil {
		out.Error = err.Error()
		var re *control.RemoteError
		if errors.As(err, &re) {
			out.Code = re.Code
		}
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

func startServer(t *testing.T, dir, group string, b control.Backend) *control.Server {
	t.Helper()
	return startServerLog(t, dir, group, b, io.Discard)
}

// lockedBuffer collects log output written from server goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startServerLog(t *testing.T, dir, group string, b control.Backend, logTo io.Writer) *control.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := control.NewServer(filepath.Join(dir, "control"), group, b, slog.New(slog.NewTextHandler(logTo, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s
}

func dial(t *testing.T, s *control.Server) *control.Client {
	t.Helper()
	c, err := control.Dial(s.Path(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCommands(t *testing.T) {
	b := controltest.New(stats, sessionA, sessionB)
	s := startServer(t, "", "", b)
	c := dial(t, s) // one connection for all: several requests per connection

	tests := []struct {
		name    string
		req     control.Request
		wantErr error // matched with errors.Is
		check   func(t *testing.T, r control.Response)
	}{
		{"all sessions", control.Request{Cmd: control.CmdSessions}, nil, func(t *testing.T, r control.Response) {
			if !reflect.DeepEqual(r.Sessions, []control.SessionInfo{sessionA, sessionB}) {
				t.Errorf("sessions = %+v", r.Sessions)
			}
		}},
		{"sessions by prefix", control.Request{Cmd: control.CmdSessions, Prefix: "sip:bob"}, nil, func(t *testing.T, r control.Response) {
			if !reflect.DeepEqual(r.Sessions, []control.SessionInfo{sessionB}) {
				t.Errorf("sessions = %+v", r.Sessions)
			}
		}},
		{"sessions none", control.Request{Cmd: control.CmdSessions, Prefix: "sip:nobody"}, nil, func(t *testing.T, r control.Response) {
			if r.Sessions == nil || len(r.Sessions) != 0 {
				t.Errorf("sessions = %#v, want empty non-nil", r.Sessions)
			}
		}},
		{"session", control.Request{Cmd: control.CmdSession, CallID: "a@1"}, nil, func(t *testing.T, r control.Response) {
			if r.Session == nil || !reflect.DeepEqual(*r.Session, sessionA) {
				t.Errorf("session = %+v", r.Session)
			}
		}},
		{"session unknown", control.Request{Cmd: control.CmdSession, CallID: "zz"}, control.ErrNotFound, nil},
		{"session no id", control.Request{Cmd: control.CmdSession}, nil, nil},
		{"stats", control.Request{Cmd: control.CmdStats}, nil, func(t *testing.T, r control.Response) {
			if r.Stats == nil || !reflect.DeepEqual(*r.Stats, stats) {
				t.Errorf("stats = %+v", r.Stats)
			}
		}},
		{"reload", control.Request{Cmd: control.CmdReload}, nil, nil},
		{"terminate", control.Request{Cmd: control.CmdTerminate, CallID: "b@1"}, nil, nil},
		{"terminate again", control.Request{Cmd: control.CmdTerminate, CallID: "b@1"}, control.ErrNotFound, nil},
		{"unknown command", control.Request{Cmd: "dance"}, nil, nil},
		{"future version", control.Request{V: 99, Cmd: control.CmdStats}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Do(tc.req)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case strings.Contains(tc.name, "unknown") || strings.Contains(tc.name, "no id") || strings.Contains(tc.name, "version"):
				var re *control.RemoteError
				if !errors.As(err, &re) || re.Code != control.CodeBadRequest {
					t.Fatalf("err = %v, want bad_request", err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	if got := b.Terminated(); !reflect.DeepEqual(got, []string{"b@1"}) {
		t.Errorf("terminated = %v", got)
	}
	if b.Reloads() != 1 {
		t.Errorf("reloads = %d", b.Reloads())
	}
}

func TestReloadError(t *testing.T) {
	b := controltest.New(stats)
	b.SetReloadError(errors.New("bad limit in config.ini"))
	c := dial(t, startServer(t, "", "", b))
	_, err := c.Reload()
	var re *control.RemoteError
	if !errors.As(err, &re) || re.Code != control.CodeFailed || !strings.Contains(re.Message, "bad limit") {
		t.Fatalf("err = %v", err)
	}
}

// TestRawProtocol speaks the wire format by hand, as a script would.
func TestRawProtocol(t *testing.T) {
	s := startServer(t, "", "", controltest.New(stats, sessionA))
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	tests := []struct{ send, wantPrefix string }{
		{`{"cmd":"session","call_id":"a@1"}`, `{"ok":true,"session":{"call_id":"a@1",`},
		{`not json`, `{"ok":false,"code":"bad_request","error":"malformed request`},
		{`{"v":1,"cmd":"stats"}`, `{"ok":true,"stats":{"sessions":{"in-progress":1,"pending":1},"parties":2,`},
		{`{"cmd":"terminate","call_id":"x"}`, `{"ok":false,"code":"not_found","error":"call id x does not exist"}`},
	}
	for _, tc := range tests {
		fmt.Fprintf(conn, "%s\n", tc.send)
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(line, tc.wantPrefix) {
			t.Errorf("%s -> %s, want prefix %s", tc.send, line, tc.wantPrefix)
		}
	}
	// A line over the limit is answered, then the connection is closed.
	fmt.Fprintf(conn, "%s\n", strings.Repeat("x", 70<<10))
	line, _ := r.ReadString('\n')
	if !strings.Contains(line, "too long") {
		t.Errorf("long line -> %q", line)
	}
	// EOF or a reset (the server drops unread input): either way, closed.
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("connection still open after a too long line")
	}
}

func TestStatsJSONUptimeSeconds(t *testing.T) {
	b, err := json.Marshal(stats)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"uptime_seconds":5400`) {
		t.Errorf("stats JSON = %s", b)
	}
	var back control.Stats
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, stats) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func TestSocketMode(t *testing.T) {
	rootGroup, err := user.LookupGroupId("0")
	if err != nil {
		t.Skip("no group 0:", err)
	}
	tests := []struct {
		group    string
		wantMode os.FileMode
		wantGID  int
	}{
		{"", 0o600, os.Getgid()},
		{"no-such-group-callcontrol", 0o600, os.Getgid()},
		{rootGroup.Name, 0o660, 0},
	}
	for _, tc := range tests {
		t.Run(tc.group, func(t *testing.T) {
			if tc.wantMode == 0o660 && os.Getuid() != 0 && os.Getgid() != 0 {
				t.Skip("needs root to chown to group 0")
			}
			s := startServer(t, "", tc.group, controltest.New(stats))
			fi, err := os.Stat(s.Path())
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.wantMode || fi.Mode()&os.ModeSocket == 0 {
				t.Errorf("mode = %v, want socket %v", fi.Mode(), tc.wantMode)
			}
			if gid := int(fi.Sys().(*syscall.Stat_t).Gid); gid != tc.wantGID {
				t.Errorf("gid = %d, want %d", gid, tc.wantGID)
			}
		})
	}
}

func TestCloseRemovesSocketAndConnections(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control")
	s, err := control.NewServer(path, "", controltest.New(stats), nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	c, err := control.Dial(path, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if _, err := c.Stats(); err == nil {
		t.Error("request on a closed server succeeded")
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control")
	// A socket file left behind by a dead process.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s := startServer(t, dir, "", controltest.New(stats))
	// Now a live daemon holds it: a second one must not steal it.
	if _, err := control.NewServer(path, "", controltest.New(stats), nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on a live socket: err = %v", err)
	}
	if _, err := dial(t, s).Stats(); err != nil {
		t.Fatalf("first server broken by the attempt: %v", err)
	}
	// A regular file is not ours to delete.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := control.NewServer(file, "", controltest.New(stats), nil); err == nil {
		t.Fatal("NewServer over a regular file succeeded")
	}
}

func TestInjectedRefusal(t *testing.T) {
	b := controltest.New(stats, sessionA)
	logs := &lockedBuffer{}
	s := startServerLog(t, "", "", b, logs)
	seen := make(chan uint32, 1)
	s.SetAuthorize(func(uid, gid uint32) error {
		seen <- uid
		return errors.New("permission denied: test says no")
	})
	c := dial(t, s)
	_, err := c.Terminate("a@1")
	if !errors.Is(err, control.ErrDenied) || !strings.Contains(err.Error(), "test says no") {
		t.Fatalf("err = %v, want denial", err)
	}
	if seenUID := <-seen; seenUID != uint32(os.Getuid()) {
		t.Errorf("authorize saw uid %d, want %d", seenUID, os.Getuid())
	}
	if len(b.Terminated()) != 0 {
		t.Error("refused client terminated a call")
	}
	if _, err := c.Stats(); err == nil {
		t.Error("connection still usable after refusal")
	}
	if l := logs.String(); !strings.Contains(l, "refused connection") || !strings.Contains(l, "uid="+strconv.Itoa(os.Getuid())) {
		t.Errorf("no refusal log line with the uid: %q", l)
	}
}

func TestAllowed(t *testing.T) {
	s := startServer(t, "", "", controltest.New(stats))
	me := uint32(os.Getuid())
	tests := []struct {
		name       string
		uid, gid   uint32
		controlGID int
		ok         bool
	}{
		{"root", 0, 0, -1, true},
		{"daemon's own user", me, 777, -1, true},
		{"stranger, no group", 4242, 4242, -1, false},
		{"stranger, primary gid is control group", 4242, 4343, 4343, true},
		{"stranger, other gid", 4242, 4242, 4343, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if me == 4242 {
				t.Skip("test uid collides")
			}
			err := s.Allowed(tc.uid, tc.gid, tc.controlGID)
			if (err == nil) != tc.ok {
				t.Errorf("Allowed(%d,%d,%d) = %v, want ok=%v", tc.uid, tc.gid, tc.controlGID, err, tc.ok)
			}
		})
	}
	// Supplementary groups come from the user database: as root (CI),
	// make a user listed as a member of another user's group; otherwise
	// find such a user. A fresh machine may list none: CI must not skip
	// the case for that.
	uid, gid, ok := supplementaryMember()
	if os.Geteuid() == 0 {
		owner := testuser.Create(t)
		g, err := user.LookupGroupId(strconv.Itoa(int(owner.GID)))
		if err != nil {
			t.Fatal(err)
		}
		member := testuser.Create(t, g.Name)
		uid, gid, ok = member.UID, int(owner.GID), true
	}
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("no user with a supplementary group here, and not root to make one")
		}
		t.Log("no user with a supplementary group here; skipping that case")
		return
	}
	if err := s.Allowed(uid, 99999, gid); err != nil {
		t.Errorf("member of group %d via /etc/group refused: %v", gid, err)
	}
}

// supplementaryMember finds (uid, gid) with uid a listed member of gid.
func supplementaryMember() (uint32, int, bool) {
	data, err := os.ReadFile("/etc/group")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || f[3] == "" {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		for _, name := range strings.Split(f[3], ",") {
			u, err := user.Lookup(name)
			if err != nil || u.Uid == "0" || u.Uid == strconv.Itoa(os.Getuid()) {
				continue
			}
			uid, _ := strconv.Atoi(u.Uid)
			return uint32(uid), gid, true
		}
	}
	return 0, 0, false
}

// TestRealPeerCredentials runs a client as uid/gid 65534 and checks what
// SO_PEERCRED lets through. The socket is made world-writable so that the
// credential check, not the file mode, is what refuses.
func TestRealPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to run a child as another uid")
		}
		t.Skip("needs root to run a child as another uid")
	}
	nogroup, err := user.LookupGroupId("65534")
	if err != nil {
		t.Fatal("no group 65534 (Debian's nogroup):", err)
	}
	// t.TempDir's parents are 0700: the child could not reach the socket.
	dir, err := os.MkdirTemp("", "controltest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		group    string
		wantOK   bool
		wantCode string
	}{
		{"no control group: refused", "", false, control.CodeDenied},
		{"peer's gid is the control group: allowed", nogroup.Name, true, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := filepath.Join(dir, strconv.Itoa(i))
			os.Mkdir(sub, 0o755)
			s := startServer(t, sub, tc.group, controltest.New(stats))
			os.Chmod(s.Path(), 0o666)

			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+s.Path())
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v: %s", err, out)
			}
			var got struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if got.OK != tc.wantOK || got.Code != tc.wantCode {
				t.Fatalf("child got %+v, want ok=%v code=%q", got, tc.wantOK, tc.wantCode)
			}
			if !tc.wantOK && !strings.Contains(got.Error, "uid 65534") {
				t.Errorf("refusal does not say who was refused: %q", got.Error)
			}
		})
	}
}

func TestManyConnections(t *testing.T) {
	s := startServer(t, "", "", controltest.New(stats, sessionA))
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			c, err := control.Dial(s.Path(), 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for range 10 {
				if _, err := c.Session("a@1"); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// panicky panics in every call: the server must survive it.
type panicky struct{ control.Backend }

func (panicky) Stats() control.Stats { panic("boom") }

func TestBackendPanic(t *testing.T) {
	s := startServer(t, "", "", panicky{controltest.New(stats, sessionA)})
	c := dial(t, s)
	var re *control.RemoteError
	if _, err := c.Stats(); !errors.As(err, &re) || re.Code != control.CodeFailed {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Session("a@1"); err != nil {
		t.Fatalf("connection unusable after a panic: %v", err)
	}
}
