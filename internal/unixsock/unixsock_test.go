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
