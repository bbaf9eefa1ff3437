package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testuser"
)

const impostorVar = "CALLCONTROL_TEST_IMPOSTOR"

// TestHelperImpostor is not a test: run as another user with impostorVar
// set to a path, it serves a fake control socket there that answers every
// request ok.
func TestHelperImpostor(t *testing.T) {
	path := os.Getenv(impostorVar)
	if path == "" {
		return
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.Exit(2)
	}
	os.Chmod(path, 0o666)
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(2)
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				c.Write([]byte(`{"ok":true,"sessions":[{"call_id":"forged@impostor"}]}` + "\n"))
			}
		}()
	}
}

// Another user's socket in place of the control socket (a runtime
// directory others can write): the CLI refuses it and prints none of its
// answers.
func TestImpostorRefusedByCLI(t *testing.T) {
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
	os.Chmod(dir, 0o1777)
	path := filepath.Join(dir, "control")
	nobody := &testuser.User{Name: "nobody", UID: 65534, GID: 65534}
	cmd := nobody.Command(t, impostorVar, path, "-test.run=^TestHelperImpostor$")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("impostor not serving")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errOut := runCLI("--socket", path, "sessions")
	if code != exitUnreachable || strings.Contains(out, "forged") || !strings.Contains(errOut, "served by uid 65534") ||
		!strings.Contains(errOut, "not trusting its answers") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}
