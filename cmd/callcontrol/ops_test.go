package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// TestOperatorSurface: the original's verbs, filters, owed debits, JSON
// errors and the flag forms.
func TestOperatorSurface(t *testing.T) {
	b := controltest.New(someStats, alice, bob)
	b.SetDebits(owed...)
	sock := startDaemon(t, b)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
		golden string // compare stdout with testdata/NAME.golden
	}{
		{name: "list is sessions", args: []string{"--socket", sock, "list"}, code: exitOK, stdout: "2 sessions (1 in-progress, 1 pending)."},
		{name: "show is session", args: []string{"--socket", sock, "show", "6432622xvv@1"}, code: exitOK, stdout: "Remaining:     42m10s"},
		{name: "state filter", args: []string{"--socket", sock, "sessions", "--state", "pending"}, code: exitOK, stdout: "1 session (1 pending)."},
		{name: "state filter json", args: []string{"--socket", sock, "sessions", "--state", "in-progress", "-j"}, code: exitOK,
			stdout: `"call_id": "6432622xvv@1"`},
		{name: "bad state", args: []string{"--socket", sock, "sessions", "--state", "ringing"}, code: exitUsage, stderr: "use pending or in-progress"},
		{name: "parties", args: []string{"--socket", sock, "parties"}, code: exitOK, stdout: "2 parties, 2 calls."},
		{name: "debits", args: []string{"--socket", sock, "debits"}, code: exitOK, stdout: "10.0.0.9:9024 (removed)"},
		{name: "debits json", args: []string{"--socket", sock, "debits", "--json"}, code: exitOK, stdout: `"engine_configured": false`},
		{name: "debits retry", args: []string{"--socket", sock, "debits", "retry"}, code: exitOK, stdout: "2 owed."},
		{name: "debits drop unconfirmed", args: []string{"--socket", sock, "debits", "drop", "6432622xvv@1"}, code: exitUsage, stderr: "add --yes"},
		{name: "debits drop unconfirmed json", args: []string{"--socket", sock, "-j", "debits", "drop", "6432622xvv@1"}, code: exitUsage,
			golden: "error_usage.json"},
		{name: "debits reroute", args: []string{"--socket", sock, "debits", "reroute", "10.0.0.9:9024"}, code: exitOK,
			stdout: "1 debits owed to 10.0.0.9:9024 moved"},
		{name: "debits drop", args: []string{"--socket", sock, "debits", "drop", "1-4711@127.0.0.1", "--yes"}, code: exitOK,
			stdout: "Dropped 1 debits owed for call 1-4711@127.0.0.1"},
		{name: "debits drop unknown", args: []string{"--socket", sock, "debits", "drop", "nope", "--yes"}, code: exitNotFound,
			stderr: "no debit owed for call id nope"},
		{name: "not found json", args: []string{"--socket", sock, "--json", "session", "nope"}, code: exitNotFound, golden: "error_not_found.json"},
		{name: "unreachable json", args: []string{"--socket", "/nonexistent/control", "--json", "stats"}, code: exitUnreachable,
			stdout: `"code": "unreachable"`},
		{name: "timeout in seconds", args: []string{"--socket", sock, "--timeout", "5", "stats"}, code: exitOK, stdout: "Version:"},
		{name: "timeout with unit", args: []string{"--socket", sock, "--timeout", "500ms", "stats"}, code: exitOK},
		{name: "timeout says its forms", args: []string{"--timeout", "soon", "stats"}, code: exitUsage,
			stderr: `"soon" is not a duration: give seconds (5, 0.5) or a number with a unit (500ms, 5s, 1m)`},
		{name: "help shows -j and double dashes", args: []string{"--help"}, code: exitOK, stdout: "-j, --json"},
		{name: "help names the aliases", args: []string{"--help"}, code: exitOK, stdout: "list and show are the original"},
		{name: "help says a terminate not confirmed exits 3", args: []string{"--help"}, code: exitOK,
			stdout: "3 the daemon reported an error (e.g. reload refused) or the proxy has not confirmed a terminate yet"},
		{name: "command help has its flags", args: []string{"debits", "--help"}, code: exitOK, stdout: "--yes"},
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
			if tc.golden != "" {
				golden(t, tc.golden, []byte(out))
			}
		})
	}
	if d := b.Debits(); len(d) != 1 || d[0].Engine != "new-engine:9024" {
		t.Errorf("debits after reroute and drop: %+v", d)
	}
}

// TestRerouteNotWrittenSaid: debits a reroute moved in memory only (their
// records failed to write) are not reported moved: the reply names them
// apart, with the cause and what a restart would do, and the exit status
// is not 0.
func TestRerouteNotWrittenSaid(t *testing.T) {
	b := controltest.New(someStats)
	b.SetDebits(owed...)
	b.SetRerouteWriteFails(errors.New("write state/00000007.log: no space left on device"))
	sock := startDaemon(t, b)
	for _, json := range []bool{false, true} {
		b.SetDebits(owed...) // the fake moves them in place
		args := []string{"--socket", sock, "debits", "reroute", "10.0.0.9:9024"}
		if json {
			args = append(args, "--json")
		}
		code, out, errOut := runCLI(args...)
		if code != exitPartly {
			t.Errorf("json=%v: exit %d, want %d\nstdout: %s\nstderr: %s", json, code, exitPartly, out, errOut)
		}
		for _, want := range []string{"1 more debits moved in memory only", "no space left on device", "leaves them owed to 10.0.0.9:9024"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("json=%v: stderr %q does not say %q", json, errOut, want)
			}
		}
		if !json && !strings.Contains(out, "0 debits owed to 10.0.0.9:9024 moved") {
			t.Errorf("stdout %q: want 0 moved", out)
		}
		if json && !strings.Contains(out, `"not_written": 1`) {
			t.Errorf("json stdout %q: want not_written 1", out)
		}
	}
}

// debits retry with nothing owed asks no engine (there may be none), and
// says so rather than "asked every engine".
func TestDebitsRetryWithNothingOwed(t *testing.T) {
	sock := startDaemon(t, controltest.New(someStats))
	code, out, errOut := runCLI("--socket", sock, "debits", "retry")
	if code != exitOK || out != "No debits owed: nothing to send.\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
