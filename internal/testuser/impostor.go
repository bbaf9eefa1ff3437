package testuser

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The copy of the test binary StartImpostor runs finds the socket to
// serve and the line to answer in these variables.
const (
	impostorSocketVar = "TESTUSER_IMPOSTOR_SOCKET"
	impostorReplyVar  = "TESTUSER_IMPOSTOR_REPLY"
)

// ServeImpostor must come first in the TestMain of a package that calls
// StartImpostor: in the copy of the test binary StartImpostor runs, it
// serves the impostor's socket and never returns; anywhere else it
// returns at once.
func ServeImpostor() {
	path := os.Getenv(impostorSocketVar)
	if path == "" {
		return
	}
	reply := []byte(os.Getenv(impostorReplyVar) + "\n")
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
				c.Write(reply)
			}
		}()
	}
}

// StartImpostor stands for another user who put its own socket where the
// control socket should be, in a runtime directory others can write: a
// copy of the test binary, run as nobody, serves a Unix socket in a
// world-writable directory and answers reply (one line, without its "\n")
// to every line it reads. It returns the socket's path once it accepts
// connections, and stops at the end of the test. It needs root: elsewhere
// the test is skipped, or fails when CI=true.
func StartImpostor(t testing.TB, reply string) string {
	t.Helper()
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
	nobody := &User{Name: "nobody", UID: 65534, GID: 65534}
	cmd := nobody.Command(t, impostorSocketVar, path, "-test.run=^$")
	cmd.Env = append(cmd.Env, impostorReplyVar+"="+reply)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return path
		}
		if time.Now().After(deadline) {
			t.Fatal("impostor not serving")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
