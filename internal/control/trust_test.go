package control_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/testuser"
)

// impostorEnv makes the test binary serve a fake control socket at the
// path it names, answering every request ok.
const impostorEnv = "CONTROL_TEST_IMPOSTOR_SOCKET"

func impostor(path string) int {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return 2
	}
	os.Chmod(path, 0o666)
	for {
		c, err := ln.Accept()
		if err != nil {
			return 2
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				c.Write([]byte(`{"ok":true,"stats":{"sessions":{"in-progress":0},"version":"impostor"}}` + "\n"))
			}
		}()
	}
}

// In a runtime directory others can write, another user may put its own
// socket where the control socket should be: the client must not show
// that process's answers as the daemon's.
func TestImpostorControlSocketRefused(t *testing.T) {
	nobody := &testuser.User{Name: "nobody", UID: 65534, GID: 65534}
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to run the impostor as another uid")
		}
		t.Skip("needs root to run the impostor as another uid")
	}
	dir, err := os.MkdirTemp("", "impostor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o1777) // world-writable, like a careless runtime dir
	path := filepath.Join(dir, "control")
	cmd := nobody.Command(t, impostorEnv, path, "-test.run=^$")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("impostor not serving")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := control.Dial(path, 5*time.Second)
	var untrusted *control.UntrustedError
	if !errors.As(err, &untrusted) || untrusted.UID != 65534 || !strings.Contains(err.Error(), "served by uid 65534") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial of an impostor's socket: %v", err)
	}
}
