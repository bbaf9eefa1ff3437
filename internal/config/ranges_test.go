package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every duration and count is refused outside its documented range, with
// the option and the range in the error.
func TestRanges(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"[CallControl]\nlimit = 9300000000\n", `[CallControl] limit = "9300000000": must be a number of seconds from 0 to 2592000 (30 days), or None`},
		{"[CallControl]\nprepaid_limit = 2592001\n", `[CallControl] prepaid_limit = "2592001": must be a number of seconds from 0 to 2592000`},
		{"[CallControl]\ntimeout = 2592001\n", `[CallControl] timeout = "2592001": must be a number of seconds from 1 to 2592000`},
		{"[CallControl]\ntimeout = 0.5\n", `[CallControl] timeout = "0.5": must be a number of seconds from 1 to 2592000`},
		{"[CallControl]\nsetup_time = 86401\n", `[CallControl] setup_time = "86401": must be a number of seconds from 1 to 86400`},
		{"[CallControl]\ncheck_interval = 3601\n", `[CallControl] check_interval = "3601": must be a number of seconds from 1 to 3600`},
		{"[CallControl]\ncheck_interval = 9300000000\n", `[CallControl] check_interval = "9300000000": must be a number of seconds from 1 to 3600`},
		{"[CallControl]\nproxy_timeout = 60001\n", `[CallControl] proxy_timeout = "60001": must be a number of milliseconds from 1 to 60000`},
		{"[CallControl]\nproxy_timeout = 0.5\n", `[CallControl] proxy_timeout = "0.5": must be a number of milliseconds from 1 to 60000`},
		{"[CDRTool]\ntimeout = 100000\n", `[CDRTool] timeout = "100000": must be a number of milliseconds from 1 to 60000`},
		{"[CDRTool]\ntimeout = 2h\n", `[CDRTool] timeout = "2h": must be a number of milliseconds from 1 to 60000`},
		{"[OpenSIPS]\nmax_connections = 100001\n", `[OpenSIPS] max_connections = "100001": must be a number from 1 to 100000`},
		{"[Kamailio]\nsocket_path = /k\nmax_connections = 0\n", `[Kamailio] max_connections = "0": must be a number from 1 to 100000`},
	}
	for _, tt := range tests {
		_, _, err := Parse("c.ini", []byte(tt.file), "")
		if err == nil || !strings.HasPrefix(err.Error(), "c.ini: "+tt.want) {
			t.Errorf("%q: %v\nwant %s", tt.file, err, tt.want)
		}
	}
	for _, ok := range []string{
		"[CallControl]\nlimit = 2592000\ntimeout = 2592000\nsetup_time = 86400\ncheck_interval = 3600\nproxy_timeout = 60000\n",
		"[CallControl]\nlimit = 0\ntimeout = 1\nsetup_time = 1\ncheck_interval = 1\nproxy_timeout = 1\n[CDRTool]\ntimeout = 1\n",
	} {
		if _, _, err := Parse("c.ini", []byte(ok), ""); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if c, _, err := Parse("c.ini", []byte("[CallControl]\nproxy_timeout = 1m\n"), ""); err != nil || c.CallControl.ProxyTimeout != time.Minute {
		t.Errorf("1m: %v", err)
	}
}

// The file must be a regular file of at most 1 MiB; a FIFO, a device or
// a huge file is refused at once with one line (a FIFO once blocked the
// start forever, /dev/zero grew the daemon to 3 GB).
func TestFileMustBeSmallAndRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.ini")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.ini")
	os.WriteFile(big, []byte("[CallControl]\n;"+strings.Repeat("x", MaxFileSize)+"\n"), 0o644)
	for _, tt := range []struct{ path, want string }{
		{fifo, "not a regular file (a FIFO)"},
		{"/dev/zero", "not a regular file (a character device)"},
		{dir, "not a regular file (a directory)"},
		{big, "larger than the 1048576 a configuration may have"},
	} {
		done := make(chan error, 1)
		go func() { _, _, err := LoadFile(tt.path, "", false); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), tt.path+": ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v", tt.path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still reading after 10 s", tt.path)
		}
	}
}
func TestStateFailureAndLegacyCommands(t *testing.T) {
	c, _, err := Parse("c.ini", []byte("[CallControl]\nstate_failure = refuse\nlegacy_commands = no\n"), "")
	if err != nil || !c.CallControl.RefuseNotDurable || c.CallControl.LegacyCommands {
		t.Fatalf("%+v %v", c, err)
	}
	c, _, err = Parse("c.ini", []byte("[CallControl]\n"), "")
	if err != nil || c.CallControl.RefuseNotDurable || !c.CallControl.LegacyCommands {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	for _, bad := range []string{"state_failure = maybe", "legacy_commands = perhaps"} {
		if _, _, err := Parse("c.ini", []byte("[CallControl]\n"+bad+"\n"), ""); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
