package daemon

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/config"
)

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		name string
		ini  string
		code int
		want []string // lines of the output, in order
		not  []string
	}{
		{"defaults but the group", "[CallControl]\ngroup = root\n", 0, []string{"is valid (0 warnings)", "Settings that differ from the defaults:",
			"  [CallControl] group = root\n", "  [OpenSIPS] socket_path = "}, []string{"warning:"}},
		{"invalid", "[CallControl]\nlimit = soon\n", 1,
			[]string{`callcontrold: configuration invalid: `, `[CallControl] limit = "soon"`}, []string{"is valid"}},
		{"changed and warned", "[CallControl]\ngroup = root\nlimit = 3600\ncontrol_group = no-such-group-here\ncontrol_read_group = no-such-group-either\n" +
			"[Kamailio]\nsocket_path = /nonexistent/kamailio.sock\n[RadiusAccounting]\nlisten = :1813\nsecret = hush\n", 0,
			[]string{"is valid (3 warnings)",
				"warning: [CallControl] control_group = no-such-group-here: no such group",
				"warning: [CallControl] control_read_group = no-such-group-either: no such group",
				"warning: [Kamailio] socket_path = /nonexistent/kamailio.sock: not there now",
				"Settings that differ from the defaults:",
				"  [CallControl] limit = 3600",
				"  [Kamailio] socket_path = /nonexistent/kamailio.sock",
				"  [RadiusAccounting] secret = (set)"},
			[]string{"hush", "max_connections"}},
		{"unknown option warned", "[CallControl]\ngroup = root\nlimt = 5\n", 0, []string{"(1 warning)", "warning: ", "limt"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "mgmt.sock")
			// The default management socket would not exist here; point
			// the OpenSIPS one at a file that is a socket only where wanted.
			ini := tc.ini
			if !strings.Contains(ini, "[Kamailio]") {
				ini += "\n[OpenSIPS]\nsocket_path = " + sock + "\n"
			}
			ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := os.WriteFile(filepath.Join(dir, "config.ini"), []byte(ini), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run")}
			var out bytes.Buffer
			code := WriteCheck(&out, opts, CheckConfig(opts))
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out.String())
			}
			rest := out.String()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, out.String())
				}
			}
		})
	}
}

// --config-dir with a trailing slash names the default file: missing, it
// means the defaults, as without the slash.
func TestConfigPathOfTheDefaultDir(t *testing.T) {
	for _, dir := range []string{config.DefaultDir, config.DefaultDir + "/", config.DefaultDir + "//"} {
		if got := (Options{ConfigDir: dir}).ConfigPath(); got != config.DefaultPath {
			t.Errorf("--config-dir %s reads %s, want %s", dir, got, config.DefaultPath)
		}
	}
	if _, err := os.Stat(config.DefaultPath); !errors.Is(err, fs.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s exists on this CI machine (%v): cannot check how its absence is taken", config.DefaultPath, err)
		}
		t.Skipf("%s exists here (%v): cannot check how its absence is taken", config.DefaultPath, err)
	}
	var warnings []string
	cfg, err := LoadConfig(Options{ConfigDir: config.DefaultDir + "/", RuntimeDir: t.TempDir()}, slog.New(&warnCollector{out: &warnings}))
	if err != nil || cfg.Path != "" || len(warnings) != 1 || !strings.Contains(warnings[0], "not found, using defaults") {
		t.Fatalf("missing %s: err %v, warnings %q", config.DefaultPath, err, warnings)
	}
}
