package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

func startDaemon(t *testing.T, b control.Backend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control")
	s, err := control.NewServer(path, "", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return path
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, env{stdout: &out, stderr: &errOut, now: func() time.Time { return now }, loc: time.UTC})
	return code, out.String(), errOut.String()
}

func TestExitStatus(t *testing.T) {
	b := controltest.New(someStats, alice, bob)
	failing := controltest.New(someStats)
	failing.SetReloadError(errors.New("limit: not a number"))
	partly := controltest.New(someStats)
	partly.SetRestartNeeded("[CallControl] check_interval")
	partlySock := startDaemon(t, partly)
	sock := startDaemon(t, b)
	failSock := startDaemon(t, failing)
	missing := filepath.Join(t.TempDir(), "nothing-here")
	dir := filepath.Dir(sock)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring expected
		stderr string // substring expected
	}{
		{"sessions", []string{"--socket", sock, "sessions"}, exitOK, "CALL-ID", ""},
		{"sessions by runtime dir", []string{"--runtime-dir", dir, "sessions"}, exitOK, "6432622xvv@1", ""},
		{"sessions prefix", []string{"--socket", sock, "sessions", "sip:bob"}, exitOK, "1-4711@127.0.0.1", ""},
		{"sessions none", []string{"--socket", sock, "sessions", "sip:zed"}, exitOK, "No sessions.", ""},
		{"sessions json after command", []string{"sessions", "--socket", sock, "--json"}, exitOK, `"call_id": "6432622xvv@1"`, ""},
		{"session", []string{"--socket", sock, "session", "6432622xvv@1"}, exitOK, "Remaining:     42m10s", ""},
		{"session json", []string{"--json", "--socket", sock, "session", "6432622xvv@1"}, exitOK, `"remaining": 2530`, ""},
		{"session not found", []string{"--socket", sock, "session", "nope"}, exitNotFound, "", "call id nope does not exist"},
		{"terminate not found", []string{"--socket", sock, "terminate", "nope"}, exitNotFound, "", "does not exist"},
		{"stats", []string{"--socket", sock, "stats"}, exitOK, "Rating engines up:   1 of 2", ""},
		{"stats json", []string{"--socket", sock, "--json", "stats"}, exitOK, `"uptime_seconds": 93784`, ""},
		{"reload", []string{"--socket", sock, "reload"}, exitOK, "Configuration reloaded: every change applied.", ""},
		{"reload applied except", []string{"--socket", partlySock, "reload"}, exitPartly, "", "except options that apply only at a restart: [CallControl] check_interval"},
		{"reload applied except, json", []string{"--socket", partlySock, "--json", "reload"}, exitPartly, `"restart_needed": [`, "check_interval"},
		{"flag after the argument", []string{"--socket", sock, "session", "6432622xvv@1", "--json"}, exitOK, `"remaining": 2530`, ""},
		{"reload fails", []string{"--socket", failSock, "reload"}, exitFailed, "", "limit: not a number"},
		{"terminate", []string{"--socket", sock, "terminate", "1-4711@127.0.0.1"}, exitOK, "Call 1-4711@127.0.0.1 ended: the proxy confirmed", ""},
		{"terminated is gone", []string{"--socket", sock, "session", "1-4711@127.0.0.1"}, exitNotFound, "", "does not exist"},
		{"unreachable", []string{"--socket", missing, "stats"}, exitUnreachable, "", missing},
		{"unreachable says what to check", []string{"--runtime-dir", filepath.Dir(missing), "sessions"}, exitUnreachable, "",
			"Check that callcontrold is running"},
		{"no command", nil, exitUsage, "", "no command given"},
		{"unknown command", []string{"dance"}, exitUsage, "", `unknown command "dance"`},
		{"missing argument", []string{"--socket", sock, "session"}, exitUsage, "", "wrong number of arguments"},
		{"extra argument", []string{"--socket", sock, "stats", "x"}, exitUsage, "", "wrong number of arguments"},
		{"empty argument", []string{"--socket", sock, "terminate", ""}, exitUsage, "", "empty argument"},
		{"bad flag", []string{"--frobnicate", "stats"}, exitUsage, "", "frobnicate"},
		{"bad command flag", []string{"stats", "--frobnicate"}, exitUsage, "", "frobnicate"},
		{"help", []string{"--help"}, exitOK, "Exit status:", ""},
		{"help command", []string{"help", "terminate"}, exitOK, "Usage: callcontrol [OPTIONS] terminate CALLID", ""},
		{"command help", []string{"sessions", "--help"}, exitOK, "Usage: callcontrol [OPTIONS] sessions [USER-PREFIX]", ""},
		{"version", []string{"--version"}, exitOK, "callcontrol ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if !strings.Contains(out, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out, tc.stdout)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut, tc.stderr)
			}
		})
	}
	if got := b.Terminated(); len(got) != 1 || got[0] != "1-4711@127.0.0.1" {
		t.Errorf("backend terminated %v", got)
	}
}

// TestRefused checks the exit status and message when the daemon refuses
// the caller (the real SO_PEERCRED refusal is tested in internal/control).
func TestRefused(t *testing.T) {
	path := fakeDaemon(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		fmt.Fprintln(c, `{"ok":false,"code":"denied","error":"permission denied: uid 1000 is not root"}`)
	})
	code, _, errOut := runCLI("--socket", path, "sessions")
	if code != exitUnreachable || !strings.Contains(errOut, "refused access") || !strings.Contains(errOut, "uid 1000") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// fakeDaemon listens on a control socket of its own and serves each
// connection with serve, then closes it. It returns the socket's path.
func fakeDaemon(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
	return path
}

// TestDaemonHangsUp: a daemon that dies mid-request is unreachable too.
func TestDaemonHangsUp(t *testing.T) {
	path := fakeDaemon(t, func(net.Conn) {}) // closes every connection at once
	code, _, errOut := runCLI("--socket", path, "stats")
	if code != exitUnreachable || !strings.Contains(errOut, path) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// A control socket whose mode keeps the caller out (connect: EACCES) is
// not a daemon that is down: the message says who may connect, not to
// check that callcontrold runs. As root (the tests) connect never gets
// EACCES, so the error is the one net.Dial returns for it.
func TestSocketPermissionDeniedSaysWhoMayConnect(t *testing.T) {
	path := "/run/callcontrol/control"
	dialErr := &control.DialError{Path: path, Err: &net.OpError{Op: "dial", Net: "unix",
		Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: os.NewSyscallError("connect", syscall.EACCES)}}
	for _, json := range []bool{false, true} {
		var out, errOut bytes.Buffer
		code := report(env{stdout: &out, stderr: &errOut}, &options{json: json}, path, dialErr)
		if code != exitUnreachable {
			t.Fatalf("json %v: exit %d, want %d", json, code, exitUnreachable)
		}
		got := errOut.String()
		if json {
			got = out.String()
			if !strings.Contains(got, `"code": "denied"`) {
				t.Fatalf("json: %s", got)
			}
		}
		if !strings.Contains(got, "cannot talk to callcontrold at "+path+": permission denied") || strings.Contains(got, "Check that callcontrold is running") {
			t.Fatalf("json %v: %s", json, got)
		}
		if !json && !strings.Contains(got, "control_group") {
			t.Fatalf("does not say who may connect: %s", got)
		}
	}
}
