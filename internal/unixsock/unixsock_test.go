package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestReclaim(t *testing.T) {
	dir := t.TempDir()

	if err := Reclaim(filepath.Join(dir, "absent")); err != nil {
		t.Fatalf("absent: %v", err)
	}

	live := filepath.Join(dir, "live")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := Reclaim(live); !errors.Is(err, ErrInUse) {
		t.Fatalf("live: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatal("a live server's socket was removed")
	}

	stale := filepath.Join(dir, "stale")
	sl, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	sl.Close()
	if err := Reclaim(stale); err != nil {
		t.Fatalf("stale: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the stale socket is still there")
	}

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if err := Reclaim(file); err == nil || errors.Is(err, ErrInUse) {
		t.Fatalf("regular file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal("a regular file was removed")
	}
}

// A datagram socket (the dialog client's reply socket) is in use while
// something has it bound, and stale once nobody has.
func TestReclaimDatagram(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: live, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Reclaim(live); !errors.Is(err, ErrInUse) {
		t.Fatalf("live datagram socket: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatal("a live datagram socket was removed")
	}
	c.Close() // a datagram socket's file stays behind
	if err := Reclaim(live); err != nil {
		t.Fatalf("stale datagram socket: %v", err)
	}
	if _, err := os.Stat(live); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the stale datagram socket is still there")
	}
}

// A process that cannot tell whether the socket is served (here: not
// allowed to connect) leaves it alone.
func TestReclaimLeavesWhatItCannotJudge(t *testing.T) {
	if asNonRoot(t, "TestReclaimLeavesWhatItCannotJudge") { // root may connect to any socket
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(path, 0)
	if err := Reclaim(path); err == nil || errors.Is(err, ErrInUse) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatal("removed")
	}
}

func TestPeerCred(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := PeerCred(c.(*net.UnixConn))
	if err != nil || int(cred.UID) != os.Getuid() || int(cred.PID) != os.Getpid() {
		t.Fatalf("server's credentials %+v %v", cred, err)
	}
}
