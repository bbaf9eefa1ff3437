package daemon

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --check-config must not pass a file the daemon then refuses: a [CallControl]
// group that does not exist stops the start (listenProxySocket), so the check
// must exit 1 naming it, not 0 with a warning that the socket "would be
// world-writable" (it never is).
func TestCheckConfigMissingProxyGroup(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "mgmt.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ini := "[CallControl]\ngroup = no-such-group-here\n[OpenSIPS]\nsocket_path = " + sock + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run")}

	// What the daemon does with this file.
	log := NewStderrLogger(io.Discard, false)
	defer log.Close()
	d, startErr := Start(opts, log.Logger)
	if d != nil {
		d.Stop()
	}
	if startErr == nil {
		t.Fatal("the daemon started with a group that does not exist")
	}

	var out bytes.Buffer
	code := WriteCheck(&out, opts, CheckConfig(opts))
	if code != 1 {
		t.Errorf("--check-config exit %d, want 1: the daemon refuses this file (%v)\n%s", code, startErr, out.String())
	}
	if strings.Contains(out.String(), "world-writable") {
		t.Errorf("--check-config says the socket would be world-writable; it never is:\n%s", out.String())
	}
}
