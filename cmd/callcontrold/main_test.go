package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/daemon"
)

func runDaemon(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeConfig writes a config.ini with every path in dir and returns dir.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("[CallControl]\nsocket = %s/run/socket\ngroup = nogroup\nstate_dir = %s/state\n%s\n[Kamailio]\nsocket_path = %s/kam.sock\n[CDRTool]\naddress =\n",
		dir, dir, extra, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.ini"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// What an operator types without starting anything: help and version on
// stdout with exit 0, usage errors on stderr with 64, --check-config's
// verdict with 0 or 1.
func TestCommandLine(t *testing.T) {
	good := writeConfig(t, "limit = 60")
	bad := writeConfig(t, "limit = soon")
	tests := []struct {
		name        string
		args        []string
		code        int
		stdout      []string
		stderr      string
		stdoutEmpty bool
		stderrEmpty bool
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: []string{"Usage: callcontrold", "--check-config", "--version", "Exit status:"}, stderrEmpty: true},
		{name: "version", args: []string{"--version"}, code: 0, stdout: []string{"callcontrold " + daemon.Version}, stderrEmpty: true},
		{name: "unknown flag", args: []string{"--frobnicate"}, code: 64, stderr: "frobnicate", stdoutEmpty: true},
		{name: "argument", args: []string{"start"}, code: 64, stderr: `unexpected argument "start"`, stdoutEmpty: true},
		{name: "check a valid file", args: []string{"--check-config", "--config-dir", good}, code: 0,
			stdout: []string{"is valid", "[CallControl] limit = 60"}},
		{name: "check an invalid file", args: []string{"--check-config", "--config-dir", bad}, code: 1,
			stdout: []string{"configuration invalid", `limit = "soon"`}},
		{name: "check a missing file", args: []string{"--check-config", "--config-dir", filepath.Join(good, "nowhere")}, code: 1,
			stdout: []string{"configuration invalid", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runDaemon(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out, want) {
					t.Fatalf("stdout lacks %q:\n%s", want, out)
				}
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.stderr, errOut)
			}
			if (tt.stdoutEmpty && out != "") || (tt.stderrEmpty && errOut != "") {
				t.Fatalf("stdout %q, stderr %q: one should be empty", out, errOut)
			}
		})
	}
}

// A second callcontrold on the files of a running one exits 1 with the
// reason on stderr, and leaves the running one's sockets and pid file.
func TestSecondDaemonExitsOneAndLeavesTheFirst(t *testing.T) {
	dir := writeConfig(t, "")
	runDir, pidFile := filepath.Join(dir, "run"), filepath.Join(dir, "run", "callcontrold.pid")
	first, err := daemon.Start(daemon.Options{ConfigDir: dir, RuntimeDir: runDir, PidFile: pidFile}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}

	code, _, errOut := runDaemon("--no-fork", "--config-dir", dir, "--runtime-dir", runDir, "--pid-file", pidFile)
	if code != 1 || !strings.Contains(errOut, "in use by another running callcontrold") {
		t.Fatalf("second daemon: exit %d, stderr %q; want 1 and the socket in use", code, lastLine(errOut))
	}
	if got, err := os.ReadFile(pidFile); err != nil || !bytes.Equal(got, pid) {
		t.Fatalf("pid file after the second daemon: %q %v, want %q", got, err, pid)
	}
	for _, name := range []string{"socket", "control", "dialog.sock"} {
		if _, err := os.Stat(filepath.Join(runDir, name)); err != nil {
			t.Fatalf("the first daemon's %s: %v", name, err)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
