package config

import (
	"strings"
	"testing"
)

// A bad value is refused with one line naming the option: these were
// accepted, or refused without the option's name.
func TestRefusedNamingTheOption(t *testing.T) {
	tests := []struct {
		name, ini, want string
	}{
		// Three colons and no brackets is no IPv6 address: a port typo.
		{"engine port typo", "[CDRTool]\naddress = cdrtool.example.com:9024:1\n", `[CDRTool] address = "cdrtool.example.com:9024:1"`},
		{"engine port typo ipv4", "[CDRTool]\naddress = 10.0.0.1:90:24\n", `[CDRTool] address = "10.0.0.1:90:24"`},
		// A hash without a user: the error must name the missing option.
		{"hash without user", "[HTTP]\npassword_hash = $2y$10$abcdefghijklmnopqrstuuJ6Q8H9dZ6p1cW4h8w0F1qk3b9mYb5e2\n", `[HTTP] user = ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("f", []byte(tc.ini), "")
			if err == nil {
				t.Fatalf("accepted, want an error naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
		})
	}
	// Real IPv6 addresses, bare or bracketed, stay accepted.
	for _, ok := range []string{"2001:db8::1", "[2001:db8::1]:9024", "[::1]", "fe80::1:9024"} {
		if _, _, err := Parse("f", []byte("[CDRTool]\naddress = "+ok+"\n"), ""); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

// --check-config prints Settings as they would be written in the file: a
// value written back must mean what the file said (check_interval = 1.5
// was printed as 1, proxy_timeout = 2.5 as 2).
func TestSettingsRoundTrip(t *testing.T) {
	ini := "[CallControl]\ntimeout = 90.5\nsetup_time = 1.5\ncheck_interval = 1.5\nproxy_timeout = 2.5\nsync_interval = 1.5\n" +
		"[CDRTool]\naddress = 127.0.0.1\ntimeout = 1.5\nrecheck_interval = 2.5\n"
	c, _, err := Parse("f", []byte(ini), "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	section := ""
	for _, s := range c.Settings() {
		if s.Section != section {
			section = s.Section
			b.WriteString("[" + section + "]\n")
		}
		if s.Value != "(set)" {
			b.WriteString(s.Option + " = " + s.Value + "\n")
		}
	}
	back, _, err := Parse("f", []byte(b.String()), "")
	if err != nil {
		t.Fatalf("settings do not parse back: %v\n%s", err, b.String())
	}
	back.CallControl.GroupDefault = c.CallControl.GroupDefault // group is written out
	if back.CallControl != c.CallControl || back.CDRTool.Timeout != c.CDRTool.Timeout || back.CDRTool.RecheckInterval != c.CDRTool.RecheckInterval {
		t.Errorf("settings printed:\n%s\nmean %+v %v %v,\nthe file said %+v %v %v", b.String(),
			back.CallControl, back.CDRTool.Timeout, back.CDRTool.RecheckInterval, c.CallControl, c.CDRTool.Timeout, c.CDRTool.RecheckInterval)
	}
}
