package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/callcontrol/callcontrol/internal/testuser"
)

// otherGID is a group to give sockets that is not the process's own.
func otherGID() int {
	if os.Geteuid() == 0 {
		return 65534 // root may give a file any group
	}
	if gs, _ := os.Getgroups(); len(gs) > 0 {
		return gs[len(gs)-1]
	}
	return os.Getgid()
}

func TestListenModeAndGroup(t *testing.T) {
	// The mode is what was asked, whatever the umask: a umask of 0 would
	// otherwise leave the file open to everyone.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	gid := otherGID()
	for _, tt := range []struct {
		mode os.FileMode
		gid  int
	}{{0o600, -1}, {0o660, gid}, {0o666, -1}} {
		for _, kind := range []string{"stream", "datagram"} {
			path := filepath.Join(t.TempDir(), "s")
			var closeIt func() error
			if kind == "stream" {
				ln, err := Listen(path, tt.mode, tt.gid)
				if err != nil {
					t.Fatal(err)
				}
				closeIt = ln.Close
			} else {
				c, err := ListenPacket(path, tt.mode, tt.gid)
				if err != nil {
					t.Fatal(err)
				}
				closeIt = c.Close
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tt.mode {
				t.Errorf("%s %v: file mode %v", kind, tt.mode, fi.Mode())
			}
			wantGID := tt.gid
			if wantGID < 0 {
				wantGID = os.Getegid()
			}
			if got := int(fi.Sys().(*syscall.Stat_t).Gid); got != wantGID {
				t.Errorf("%s %v: group %d, want %d", kind, tt.mode, got, wantGID)
			}
			closeIt()
		}
	}
}

func TestListenServesAndUnlinksOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := Listen(path, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil || b[0] != 'x' {
		t.Fatalf("read %q %v", b, err)
	}
	c.Close()
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket file outlived its listener: %v", err)
	}
}

func TestListenPacketReceives(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	c, err := ListenPacket(path, 0o666, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "from"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	if _, err := from.WriteToUnix([]byte("hello"), &net.UnixAddr{Name: path, Net: "unixgram"}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	n, _, err := c.ReadFromUnix(b)
	if err != nil || string(b[:n]) != "hello" {
		t.Fatalf("got %q %v", b[:n], err)
	}
}

// Listen takes over a dead server's socket file, never a live server's, and
// never a file that is not a socket.
func TestListenReclaimsOnlyTheDead(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	ln, err := Listen(live, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Listen(live, 0o600, -1); !errors.Is(err, ErrInUse) {
		t.Fatalf("live stream socket: %v", err)
	}
	if _, err := ListenPacket(live, 0o600, -1); !errors.Is(err, ErrInUse) {
		t.Fatalf("live stream socket, as a datagram one: %v", err)
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Fatalf("the live server lost its socket: %v", err)
	} else {
		c.Close()
	}

	livePacket := filepath.Join(dir, "livepacket")
	pc, err := ListenPacket(livePacket, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenPacket(livePacket, 0o600, -1); !errors.Is(err, ErrInUse) {
		t.Fatalf("live datagram socket: %v", err)
	}
	pc.Close() // its file stays: now stale
	if pc, err = ListenPacket(livePacket, 0o600, -1); err != nil {
		t.Fatalf("stale datagram socket: %v", err)
	}
	pc.Close()

	stale := filepath.Join(dir, "stale")
	sl, err := Listen(stale, 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	if sl, err = Listen(stale, 0o600, -1); err != nil {
		t.Fatalf("stale stream socket: %v", err)
	}
	sl.Close()

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, err := Listen(file, 0o600, -1); err == nil {
		t.Fatal("a regular file was replaced")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "x" {
		t.Fatalf("the regular file changed: %q %v", b, err)
	}
}

// A group the process cannot give (not root, not a member) fails with
// ErrGroup and leaves nothing behind.
func TestListenGroupRefused(t *testing.T) {
	if asNonRoot(t, "TestListenGroupRefused") { // root may give any group
		return
	}
	path := filepath.Join(t.TempDir(), "s")
	if _, err := Listen(path, 0o660, 65533); !errors.Is(err, ErrGroup) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("left behind: %v", err)
	}
}

const connectVar = "UNIXSOCK_TEST_CONNECT"

// TestHelperConnect runs as another user (testuser.Command): it connects to
// the socket named in connectVar and fails if it cannot.
func TestHelperConnect(t *testing.T) {
	path := os.Getenv(connectVar)
	if path == "" {
		t.Skip("helper for TestListenGroupLetsItsMembersIn")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// Mode 0660 with a group: a member of the group connects, another user
// cannot; mode 0666 lets that user in too.
func TestListenGroupLetsItsMembersIn(t *testing.T) {
	member := testuser.Create(t)
	other := testuser.Create(t)
	dir, err := os.MkdirTemp("", "unixsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	testuser.OpenPath(t, path)
	os.Chmod(dir, 0o755)
	connects := func(u *testuser.User) bool {
		out, err := u.Command(t, connectVar, path, "-test.run=^TestHelperConnect$").CombinedOutput()
		if err != nil {
			t.Logf("uid %d: %v: %s", u.UID, err, out)
		}
		return err == nil
	}
	ln, err := Listen(path, 0o660, int(member.GID))
	if err != nil {
		t.Fatal(err)
	}
	go acceptAndClose(ln)
	if !connects(member) {
		t.Error("a member of the socket's group (gid " + strconv.Itoa(int(member.GID)) + ") could not connect")
	}
	if connects(other) {
		t.Error("a user outside the socket's group connected to a 0660 socket")
	}
	ln.Close()

	ln, err = Listen(path, 0o666, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAndClose(ln)
	if !connects(other) {
		t.Error("another user could not connect to a 0666 socket")
	}
}

// Until the mode and group are in force nobody gets in: a stream socket
// refuses connections until it listens, and datagrams that arrived before
// are discarded.
func TestNothingGetsInBeforeTheModeIsSet(t *testing.T) {
	old := syscall.Umask(0) // the file is created open to everyone
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	f, err := bind(path, syscall.SOCK_STREAM, 0o600, -1, func(fd int) error {
		if c, err := net.Dial("unix", path); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect before listen: %v, want refused", err)
			if c != nil {
				c.Close()
			}
		}
		return syscall.Listen(fd, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	path = filepath.Join(dir, "d")
	f, err = bind(path, syscall.SOCK_DGRAM, 0o600, -1, func(fd int) error {
		c, err := net.Dial("unixgram", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("early")); err != nil {
			t.Fatal(err)
		}
		return drain(fd)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [16]byte
	if n, _, err := syscall.Recvfrom(int(f.Fd()), b[:], syscall.MSG_DONTWAIT); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("a datagram sent before the mode was set was kept: %q %v", b[:n], err)
	}
}

// acceptAndClose accepts connections on ln and closes each, until ln is
// closed.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
