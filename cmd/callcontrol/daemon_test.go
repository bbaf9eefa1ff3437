package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/daemon"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
)

// normalize replaces what changes from run to run (times, the seconds
// left, uptime) so the output can be compared with a golden file.
func normalize(s string) string {
	for _, r := range []struct{ re, with string }{
		{`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?`, "<TIME>"},
		{`\b59m5\ds\b`, "1h00m00s"}, // a second may pass: the limit is an hour
		{`(?m)^Duration:( +)\d+s$`, "Duration:${1}<N>s"},
		{`"(remaining|uptime_seconds)": \d+`, `"$1": <N>`},
		{`(?m)^(Uptime|Version):( +).*$`, "$1:$2<X>"},
		{`"version": "[^"]*"`, `"version": "<X>"`},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// TestAgainstRunningDaemon runs the CLI against a real callcontrold with
// calls set up through its proxy socket: output (table and JSON) against
// golden files, and every exit status.
func TestAgainstRunningDaemon(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	runDir := filepath.Join(dir, "run")
	kam := dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	writeConfig := func(limit string) {
		cfg := fmt.Sprintf("[CallControl]\nsocket = %s/socket\ngroup = nogroup\nstate_dir = %s/state\nsync = no\nlimit = %s\n[Kamailio]\nsocket_path = %s\n[CDRTool]\naddress =\n",
			runDir, dir, limit, kam.Path())
		if err := os.WriteFile(filepath.Join(dir, "config.ini"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("3600")
	d, err := daemon.Start(daemon.Options{ConfigDir: dir, RuntimeDir: runDir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			d.Stop()
		}
	}()
	proxy := func(req string) {
		if _, err := proxytest.Call(filepath.Join(runDir, "socket"), proxytest.Lines(req)); err != nil {
			t.Fatal(err)
		}
	}
	proxy("init\nruri: sip:0031650222333@example.com\ndiverter: None\nsourceip: 10.0.0.1\ncallid: 6432622xvv@1\nfrom: \"Alice\" <sip:alice@example.com>;tag=a\nfromtag: a")
	proxy("start\ncallid: 6432622xvv@1\ndialogid: 1079:6296")
	proxy("init\nruri: sip:limited@127.0.0.1:5060\ndiverter: None\nsourceip: 127.0.0.1\ncallid: 1-4711@127.0.0.1\nfrom: <sip:bob@example.org>\nfromtag: b")

	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"--runtime-dir", runDir}, args...), env{stdout: &out, stderr: &errOut, now: time.Now, loc: time.UTC})
		return code, out.String(), errOut.String()
	}
	// The management socket check runs beside the start: wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, out, _ := cli("--json", "stats")
		if strings.Contains(out, `"state": "answering"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("management socket check not done: %s", out)
		}
	}
	for _, g := range []struct {
		name string
		args []string
	}{
		{"daemon_sessions", []string{"sessions"}},
		{"daemon_sessions.json", []string{"--json", "sessions"}},
		{"daemon_sessions_prefix", []string{"sessions", "bob@"}},
		{"daemon_session", []string{"session", "6432622xvv@1"}},
		{"daemon_session.json", []string{"--json", "session", "6432622xvv@1"}},
		{"daemon_stats", []string{"stats"}},
		{"daemon_stats.json", []string{"--json", "stats"}},
	} {
		code, out, errOut := cli(g.args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", g.args, code, errOut)
		}
		golden(t, g.name, []byte(normalize(strings.ReplaceAll(out, dir, "<DIR>"))))
	}

	for _, tt := range []struct {
		name   string
		prep   func()
		args   []string
		code   int
		stderr string
	}{
		{"session not found", nil, []string{"session", "nope"}, exitNotFound, "does not exist"},
		{"terminate", nil, []string{"terminate", "6432622xvv@1"}, exitOK, ""},
		{"terminate again", nil, []string{"terminate", "6432622xvv@1"}, exitNotFound, "does not exist"},
		{"reload good", func() { writeConfig("60") }, []string{"reload"}, exitOK, ""},
		{"reload bad", func() { writeConfig("-5") }, []string{"reload"}, 3, "limit"},
		{"usage", nil, []string{"frobnicate"}, 64, "unknown command"},
		{"daemon stopped", func() { d.Stop(); stopped = true }, []string{"sessions"}, exitUnreachable, filepath.Join(runDir, "control")},
	} {
		if tt.prep != nil {
			tt.prep()
		}
		code, _, errOut := cli(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, errOut, tt.code, tt.stderr)
		}
	}
	if n := len(kam.Requests()); n != 1 {
		t.Errorf("terminate sent %d dialog ends, want 1", n)
	}
}
