// Package harness runs callcontrold and its peers (Kamailio, OpenSIPS,
// sipp) as processes for the end-to-end (test/e2e) and fault (test/fault)
// tests: it builds the binaries once per test binary, starts, stops and
// kills processes in their own process groups, waits for their sockets and
// prints their logs when a test fails.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// StartTimeout bounds how long any process may take to come up; generous
// because the machine is shared and slow at times.
const StartTimeout = 30 * time.Second

// RequireTool finds a binary a test needs. A missing tool skips the test
// locally but fails it in CI (CI set), where the tools must be installed.
func RequireTool(t testing.TB, bin, debianPkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found in PATH: install the Debian package %q (apt-get install %s)", bin, debianPkg, debianPkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// ShortDir makes a private directory with a short path, removed after the
// test: Unix socket paths are limited to 107 bytes and t.TempDir() paths of
// subtests can be long. With $HARNESS_KEEP (or $FAULT_KEEP, its older
// name) set, the directory of a failed test is kept and named in the log.
func ShortDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && (os.Getenv("HARNESS_KEEP") != "" || os.Getenv("FAULT_KEEP") != "") {
			t.Logf("kept %s", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

// WaitFor polls cond until it is true, the deadline passes, or p (if not
// nil) exits; it fails the test with what in the latter two cases.
func WaitFor(t testing.TB, what string, p *Proc, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s: %s exited (%v) before it was ready", what, p.Name(), p.Err())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
