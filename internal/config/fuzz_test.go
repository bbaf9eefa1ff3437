package config

import (
	"strings"
	"testing"
)

// FuzzParse: any file gives a config or a one-line error, never a panic,
// and an accepted config keeps its invariants.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"[CallControl]\nsocket = /run/callcontrol/socket\ngroup = opensips\nlimit = None\ntimeout_detection = dialog\nsetupTime = 90\n",
		"[CDRTool]\naddress = a b:1 [::1]:2 ::3\ntimeout = 250\n",
		"[RadiusDatabase]\nhost = h\ntable = radacct%%Y%%m\nsessionIdField = AcctSessionId\n",
		"[OpenSIPS]\nsocket_path = /o\n[Kamailio]\nsocket_path = /k\n",
		"[RadiusAccounting]\nlisten = :1813\nsecret = s\n",
		"x=1\n[Foo]\n[callcontrol]\nLIMIT = 0 ; c\naddress = a\n  b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, warnings, err := Parse("f.ini", data, rt)
		for _, w := range warnings {
			if strings.ContainsAny(w, "\r\n") {
				t.Fatalf("multi-line warning %q", w)
			}
		}
		if err != nil {
			if c != nil || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("bad error %q (config %v)", err, c)
			}
			return
		}
		cc := c.CallControl
		if cc.SetupTime <= 0 || cc.CheckInterval <= 0 || cc.StaleTimeout <= 0 || cc.ProxyTimeout <= 0 || c.CDRTool.Timeout <= 0 {
			t.Fatalf("non-positive duration in %+v", c)
		}
		if cc.Limit.Seconds < 0 || cc.PrepaidLimit.Seconds < 0 || c.Proxy.MaxConnections < 1 {
			t.Fatalf("bad limit in %+v", c)
		}
		for _, p := range []string{cc.Socket, cc.ControlSocket, c.Proxy.SocketPath} {
			if p == "" || len(p) > MaxSocketPath {
				t.Fatalf("bad socket path %q", p)
			}
		}
		if _, err := ParseTablePattern(c.RadiusDatabase.Table); err != nil {
			t.Fatalf("accepted table %q: %v", c.RadiusDatabase.Table, err)
		}
		_ = c.Summary()
	})
}
