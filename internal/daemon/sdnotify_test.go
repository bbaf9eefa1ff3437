package daemon

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify runs the daemon as systemd's Type=notify would see it:
// READY once serving, RELOADING then READY around a SIGHUP reload,
// STOPPING on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	e := newEnv(t, "", "")
	e.d.Stop() // the env's daemon; Run starts its own on the same config
	e.d = nil
	notify := filepath.Join(e.dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	opts := e.opts
	opts.NotifySocket = notify
	done := make(chan error, 1)
	go func() { done <- Run(opts, slog.New(slog.DiscardHandler)) }()

	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		ln.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	expect := func(prefix string) {
		t.Helper()
		if got := next(); !strings.HasPrefix(got, prefix) {
			t.Fatalf("notification %q, want %q first", got, prefix)
		}
	}
	expect("READY=1")
	syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	expect("STOPPING=1")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
}
