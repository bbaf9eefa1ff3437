package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const rt = "/run/callcontrol"

func TestOriginalFileLoads(t *testing.T) {
	c, warnings, err := Load("testdata/original.ini", rt)
	if err != nil {
		t.Fatal(err)
	}
	want := Default(rt)
	want.Path = "testdata/original.ini"
	want.CallControl.Socket = "/var/run/callcontrol/socket"
	want.CallControl.GroupDefault = false // group = opensips in the file
	want.CallControl.PrepaidLimit = Limit{Set: true, Seconds: 7200}
	want.CallControl.StaleTimeout = 12 * time.Hour
	want.CallControl.SetupTime = 120 * time.Second
	want.CallControl.CheckInterval = 30 * time.Second
	want.CDRTool = CDRTool{Addresses: []string{"cdrtool.example.com:9024", "10.0.0.2:9025"}, AddressSet: true, Timeout: 500 * time.Millisecond,
		RecheckInterval: DefaultRecheckInterval} // a new option: its default
	want.RadiusDatabase.Enabled = true
	want.RadiusDatabase.User = "radius"
	want.RadiusDatabase.Password = "p#ss;word"
	want.RadiusDatabase.Host = "db.example.com"
	want.Proxy.SocketPath = "/var/run/opensips/socket"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if c.RadiusDatabase.Table != "radacct%Y%m" {
		t.Errorf("table %q", c.RadiusDatabase.Table)
	}
	wantWarn := []string{"timeout_detection", "[CDRTool] timeout"}
	if len(warnings) != len(wantWarn) {
		t.Fatalf("warnings %q, want %d", warnings, len(wantWarn))
	}
	for i, w := range wantWarn {
		if !strings.Contains(warnings[i], w) || !strings.HasPrefix(warnings[i], "testdata/original.ini: ") {
			t.Errorf("warning %d = %q, want it to mention %q", i, warnings[i], w)
		}
	}
}

func TestSampleLoadsWithoutWarnings(t *testing.T) {
	c, warnings, err := Load("../../config.ini.sample", rt)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	want := Default(rt)
	want.Path = "../../config.ini.sample"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("sample is not all defaults:\ngot  %+v\nwant %+v", c, want)
	}
}

// TestSampleExamplesParse uncomments the sample's example lines: every
// option shown must be known, and its shown value the real default.
func TestSampleExamplesParse(t *testing.T) {
	data, err := os.ReadFile("../../config.ini.sample")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	section := ""
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "[") {
			section = l
		}
		if strings.HasPrefix(l, ";") && strings.Contains(l, " =") && !strings.HasPrefix(l, "; ") {
			switch section {
			case "[Kamailio]": // the alternative to [OpenSIPS]; tested elsewhere
			case "[RadiusAccounting]": // empty listen and secret: nothing to show
			default:
				l = strings.TrimPrefix(l, ";")
			}
		}
		out = append(out, l)
	}
	c, warnings, err := Parse("sample", []byte(strings.Join(out, "\n")), rt)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	// The shown values are the defaults, except the examples for
	// account data and engine addresses.
	want := Default(rt)
	want.Path = "sample"
	want.CallControl.GroupDefault = false // group = opensips uncommented
	want.CDRTool.Addresses = []string{"cdrtool.example.com:9024", "cdrtool2.example.com:9024"}
	want.CDRTool.AddressSet = true
	want.RadiusDatabase.Enabled = true
	want.RadiusDatabase.User = "radius"
	want.RadiusDatabase.Password = "secret"
	want.HTTP.Listen = "127.0.0.1:9080" // the example; off by default
	if !reflect.DeepEqual(c, want) {
		t.Errorf("uncommented sample:\ngot  %+v\nwant %+v", c, want)
	}
}

func TestDefault(t *testing.T) {
	c := Default("")
	if c.CallControl.Socket != "/run/callcontrol/socket" || c.CallControl.ControlSocket != "/run/callcontrol/control" {
		t.Errorf("sockets %q %q", c.CallControl.Socket, c.CallControl.ControlSocket)
	}
	c = Default("/tmp/x")
	if c.CallControl.Socket != "/tmp/x/socket" || c.CallControl.ControlSocket != "/tmp/x/control" {
		t.Errorf("sockets %q %q", c.CallControl.Socket, c.CallControl.ControlSocket)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"group", c.CallControl.Group, "opensips"},
		{"limit", c.CallControl.Limit, Limit{}},
		{"prepaid_limit", c.CallControl.PrepaidLimit, Limit{}},
		{"timeout", c.CallControl.StaleTimeout, 86400 * time.Second},
		{"setup_time", c.CallControl.SetupTime, 90 * time.Second},
		{"check_interval", c.CallControl.CheckInterval, 60 * time.Second},
		{"proxy_timeout", c.CallControl.ProxyTimeout, 500 * time.Millisecond},
		{"state_dir", c.CallControl.StateDir, "/var/lib/callcontrol"},
		{"control_group", c.CallControl.ControlGroup, ""},
		{"sync", c.CallControl.Sync, SyncInterval},
		{"sync_interval", c.CallControl.SyncInterval, 100 * time.Millisecond},
		{"cdrtool", c.CDRTool.Enabled(), false},
		{"cdrtool timeout", c.CDRTool.Timeout, 300 * time.Millisecond},
		{"recheck_interval", c.CDRTool.RecheckInterval, 30 * time.Second},
		{"radius db", c.RadiusDatabase.Enabled, false},
		{"radius host", c.RadiusDatabase.Host, "localhost"},
		{"radius database", c.RadiusDatabase.Database, "radius"},
		{"radius table", c.RadiusDatabase.Table, "radacct%Y%m"},
		{"proxy", c.Proxy.Kind, OpenSIPS},
		{"proxy socket", c.Proxy.SocketPath, "/run/opensips/socket"},
		{"dialog_id", c.Proxy.DialogID, DialogIDCallID},
		{"radius accounting", c.RadiusAccounting.Enabled(), false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// An empty file is the defaults, with no warnings.
	got, w, err := Parse("empty", nil, "/tmp/x")
	if err != nil || len(w) != 0 {
		t.Fatal(err, w)
	}
	c.Path = "empty"
	if !reflect.DeepEqual(got, c) {
		t.Errorf("empty file:\ngot  %+v\nwant %+v", got, c)
	}
}

func TestLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    Limit
		wantErr bool
	}{
		{"None", Limit{}, false},
		{"none", Limit{}, false},
		{"NONE", Limit{}, false},
		{"0", Limit{Set: true, Seconds: 0}, false},
		{"3600", Limit{Set: true, Seconds: 3600}, false},
		{"-5", Limit{}, true},
		{"abc", Limit{}, true},
		{"1.5", Limit{}, true},
		{"2592000", Limit{Set: true, Seconds: 2592000}, false},
		{"2592001", Limit{}, true},
		{"9300000000", Limit{}, true}, // once overflowed a time.Duration
		{"", Limit{}, true},
	}
	for _, tt := range tests {
		for _, opt := range []string{"limit", "prepaid_limit"} {
			c, _, err := Parse("config.ini", []byte("[CallControl]\n"+opt+" = "+tt.in+"\n"), rt)
			if tt.wantErr {
				want := `config.ini: [CallControl] ` + opt + ` = "` + tt.in + `": must be a number of seconds from 0 to 2592000 (30 days), or None`
				if err == nil || err.Error() != want {
					t.Errorf("%s = %q: err %v, want %s", opt, tt.in, err, want)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s = %q: %v", opt, tt.in, err)
				continue
			}
			got := c.CallControl.Limit
			if opt == "prepaid_limit" {
				got = c.CallControl.PrepaidLimit
			}
			if got != tt.want {
				t.Errorf("%s = %q: got %+v want %+v", opt, tt.in, got, tt.want)
			}
		}
	}
	if s := (Limit{}).String(); s != "None" {
		t.Errorf("None renders %q", s)
	}
	if d, ok := (Limit{Set: true, Seconds: 2}).Duration(); !ok || d != 2*time.Second {
		t.Errorf("Duration %v %v", d, ok)
	}
}

func TestErrors(t *testing.T) {
	long := "/" + strings.Repeat("x", MaxSocketPath)
	tests := []struct {
		name, file, want string
	}{
		{"both proxies", "[OpenSIPS]\nsocket_path=/run/o\n[Kamailio]\nsocket_path=/run/k\n", `[OpenSIPS] socket_path = "/run/o" and [Kamailio] socket_path = "/run/k"`},
		{"long socket", "[CallControl]\nsocket=" + long + "\n", "[CallControl] socket = "},
		{"long control", "[CallControl]\ncontrol_socket=" + long + "\n", "[CallControl] control_socket = "},
		{"long kamailio", "[Kamailio]\nsocket_path=" + long + "\n", "[Kamailio] socket_path = "},
		{"empty socket", "[CallControl]\nsocket=\n", `[CallControl] socket = "": must be a path`},
		{"setup zero", "[CallControl]\nsetup_time=0\n", `[CallControl] setup_time = "0": must be a number of seconds from 1 to 86400`},
		{"setup camel bad", "[CallControl]\nsetupTime=x\n", `[CallControl] setupTime = "x": must be a number of seconds from 1 to 86400`},
		{"check negative", "[CallControl]\ncheck_interval=-1\n", `[CallControl] check_interval = "-1"`},
		{"proxy timeout", "[CallControl]\nproxy_timeout=NaN\n", `[CallControl] proxy_timeout = "NaN": must be a number of milliseconds from 1 to 60000`},
		{"stale inf", "[CallControl]\ntimeout=Inf\n", `[CallControl] timeout = "Inf"`},
		{"stale huge", "[CallControl]\ntimeout=1e300\n", `[CallControl] timeout = "1e300"`},
		{"sync", "[CallControl]\nsync=maybe\n", `[CallControl] sync = "maybe": must be interval, yes or no`},
		{"sync empty", "[CallControl]\nsync=\n", `[CallControl] sync = "": must be interval, yes or no`},
		{"sync_interval zero", "[CallControl]\nsync_interval=0\n", `[CallControl] sync_interval = "0": must be a number of milliseconds from 1 to 10000`},
		{"sync_interval text", "[CallControl]\nsync_interval=soon\n", `[CallControl] sync_interval = "soon": must be a number of milliseconds from 1 to 10000`},
		{"state dir", "[CallControl]\nstate_dir=\n", `[CallControl] state_dir = ""`},
		{"cdrtool port", "[CDRTool]\naddress=a:99999\n", `[CDRTool] address = "a:99999": "a:99999": bad port`},
		{"cdrtool port text", "[CDRTool]\naddress=a b:x\n", `[CDRTool] address = "a b:x"`},
		{"cdrtool timeout", "[CDRTool]\ntimeout=0\n", `[CDRTool] timeout = "0"`},
		{"recheck too often", "[CDRTool]\nrecheck_interval=1\n", `[CDRTool] recheck_interval = "1": must be 0 (off) or from 2 to 86400 seconds`},
		{"recheck negative", "[CDRTool]\nrecheck_interval=-5\n", `[CDRTool] recheck_interval = "-5": must be 0 (off) or from 2 to 86400 seconds`},
		{"recheck text", "[CDRTool]\nrecheck_interval=often\n", `[CDRTool] recheck_interval = "often"`},
		{"table", "[RadiusDatabase]\ntable=radacct; DROP\n", `[RadiusDatabase] table = "radacct; DROP"`},
		{"table directive", "[RadiusDatabase]\ntable=radacct%s\n", `[RadiusDatabase] table = "radacct%s"`},
		{"column", "[RadiusDatabase]\nsessionIdField=a b\n", `[RadiusDatabase] sessionIdField = "a b": must be a column name`},
		{"max conn", "[OpenSIPS]\nmax_connections=0\n", `[OpenSIPS] max_connections = "0"`},
		{"dialog id", "[OpenSIPS]\ndialog_id=hex\n", `[OpenSIPS] dialog_id = "hex"`},
		{"listen", "[RadiusAccounting]\nlisten=1813\nsecret=s\n", `[RadiusAccounting] listen = "1813"`},
		{"no secret", "[RadiusAccounting]\nlisten=:1813\n", `[RadiusAccounting] listen = ":1813": needs a secret`},
		{"syntax", "[CallControl\n", "config.ini: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse("config.ini", []byte(tt.file), rt)
			if err == nil {
				t.Fatalf("no error, got %+v", c)
			}
			if c != nil {
				t.Errorf("config returned with error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config.ini: ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // substrings, in order; nil = no warnings
	}{
		{"unknown option", "[CallControl]\nfoo = 1\n", []string{"[CallControl] foo: unknown option, ignored"}},
		{"unknown section", "[Foo]\nbar = 1\n", []string{"[Foo] unknown section, ignored"}},
		{"outside section", "x = 1\n", []string{`option "x" outside any section`}},
		{"obsolete", "[CallControl]\ntimeout_detection = radius\n", []string{"timeout_detection"}},
		{"both spellings", "[CallControl]\nsetupTime = 10\nsetup_time = 20\n", []string{"both setup_time and setupTime"}},
		{"slow engine", "[CDRTool]\naddress = x\ntimeout = 800\n", []string{"[CDRTool] timeout (800ms) leaves no room under [CallControl] proxy_timeout (500ms): each request to the rating engine is cut to 400ms"}},
		{"slow engine no engine", "[CDRTool]\ntimeout = 800\n", nil},
		{"engine over the budget's cap", "[CDRTool]\naddress = x\ntimeout = 450\n", []string{"each request to the rating engine is cut to 400ms"}},
		{"engine at the budget's cap", "[CDRTool]\naddress = x\ntimeout = 400\n", nil},
		{"short proxy, default engine", "[CallControl]\nproxy_timeout = 200\n[CDRTool]\naddress = x\n", nil},
		{"radius db without host", "[RadiusDatabase]\npassword = x\n", []string{"polling is off"}},
		{"empty radius db", "[RadiusDatabase]\n", nil},
		{"kamailio empty", "[Kamailio]\nsocket_path =\n", []string{"[Kamailio] has no socket_path"}},
		{"dialog_id on kamailio", "[Kamailio]\nsocket_path = /k\n[OpenSIPS]\ndialog_id = numeric\n", []string{"[OpenSIPS] dialog_id ignored"}},
		{"max_connections other", "[Kamailio]\nsocket_path = /k\n[OpenSIPS]\nmax_connections = 3\n", []string{"[OpenSIPS] max_connections ignored"}},
		{"case insensitive", "[callcontrol]\nLIMIT = 5\n[cdrtool]\nADDRESS = x\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, w, err := Parse("c.ini", []byte(tt.file), rt)
			if err != nil {
				t.Fatal(err)
			}
			if len(w) != len(tt.want) {
				t.Fatalf("warnings %q, want %q", w, tt.want)
			}
			for i := range w {
				if !strings.HasPrefix(w[i], "c.ini: ") || !strings.Contains(w[i], tt.want[i]) {
					t.Errorf("warning %q, want %q", w[i], tt.want[i])
				}
			}
		})
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name, file string
		check      func(c *Config) bool
	}{
		{"camel setup", "[CallControl]\nsetupTime = 10\n", func(c *Config) bool { return c.CallControl.SetupTime == 10*time.Second }},
		{"snake setup", "[CallControl]\nsetup_time = 10\n", func(c *Config) bool { return c.CallControl.SetupTime == 10*time.Second }},
		{"snake wins", "[CallControl]\nsetupTime = 10\nsetup_time = 20\n", func(c *Config) bool { return c.CallControl.SetupTime == 20*time.Second }},
		{"camel check", "[CallControl]\ncheckInterval = 5\n", func(c *Config) bool { return c.CallControl.CheckInterval == 5*time.Second }},
		{"snake check", "[CallControl]\ncheck_interval = 5\n", func(c *Config) bool { return c.CallControl.CheckInterval == 5*time.Second }},
		{"go duration", "[CallControl]\nproxy_timeout = 1.5s\n", func(c *Config) bool { return c.CallControl.ProxyTimeout == 1500*time.Millisecond }},
		{"recheck off", "[CDRTool]\nrecheck_interval = 0\n", func(c *Config) bool { return c.CDRTool.RecheckInterval == 0 }},
		{"recheck 10", "[CDRTool]\nrecheck_interval = 10\n", func(c *Config) bool { return c.CDRTool.RecheckInterval == 10*time.Second }},
		{"recheck go duration", "[CDRTool]\nrecheck_interval = 1m\n", func(c *Config) bool { return c.CDRTool.RecheckInterval == time.Minute }},
		{"decimal", "[CDRTool]\ntimeout = 250.5\n", func(c *Config) bool { return c.CDRTool.Timeout == 250500*time.Microsecond }},
		{"engine default under a short proxy_timeout", "[CallControl]\nproxy_timeout = 200\n", func(c *Config) bool { return c.CDRTool.Timeout == 160*time.Millisecond }},
		{"engine default under a long proxy_timeout", "[CallControl]\nproxy_timeout = 2s\n", func(c *Config) bool { return c.CDRTool.Timeout == 300*time.Millisecond }},
		{"engine timeout set stays as set", "[CallControl]\nproxy_timeout = 200\n[CDRTool]\ntimeout = 300\n", func(c *Config) bool { return c.CDRTool.Timeout == 300*time.Millisecond }},
		{"sync no", "[CallControl]\nsync = No\n", func(c *Config) bool { return c.CallControl.Sync == SyncNo }},
		{"sync off", "[CallControl]\nsync = off\n", func(c *Config) bool { return c.CallControl.Sync == SyncNo }},
		{"sync yes", "[CallControl]\nsync = yes\n", func(c *Config) bool { return c.CallControl.Sync == SyncYes }},
		{"sync true", "[CallControl]\nsync = True\n", func(c *Config) bool { return c.CallControl.Sync == SyncYes }},
		{"sync interval", "[CallControl]\nsync = Interval\nsync_interval = 50\n", func(c *Config) bool {
			return c.CallControl.Sync == SyncInterval && c.CallControl.SyncInterval == 50*time.Millisecond
		}},
		{"sync_interval go duration", "[CallControl]\nsync_interval = 5ms\n", func(c *Config) bool {
			return c.CallControl.Sync == SyncInterval && c.CallControl.SyncInterval == 5*time.Millisecond
		}},
		{"inline comment", "[CallControl]\nlimit = 60 ; one minute\n", func(c *Config) bool { return c.CallControl.Limit == Limit{Set: true, Seconds: 60} }},
		{"table single %", "[RadiusDatabase]\nhost = h\ntable = acc_%Y_%m\n", func(c *Config) bool { return c.RadiusDatabase.Table == "acc_%Y_%m" }},
		{"table double %%", "[RadiusDatabase]\nhost = h\ntable = acc_%%Y_%%m\n", func(c *Config) bool { return c.RadiusDatabase.Table == "acc_%Y_%m" }},
		{"table with db", "[RadiusDatabase]\nhost = h\ntable = radius.radacct%%Y\n", func(c *Config) bool { return c.RadiusDatabase.Table == "radius.radacct%Y" }},
		{"radius db by user only", "[RadiusDatabase]\nuser = u\n", func(c *Config) bool { return c.RadiusDatabase.Enabled && c.RadiusDatabase.Host == "localhost" }},
		{"radius db empty host", "[RadiusDatabase]\nhost =\n", func(c *Config) bool { return !c.RadiusDatabase.Enabled }},
		{"kamailio", "[Kamailio]\nsocket_path = /run/kamailio/rpc.sock\nmax_connections = 4\n", func(c *Config) bool {
			return c.Proxy.Kind == Kamailio && c.Proxy.SocketPath == "/run/kamailio/rpc.sock" && c.Proxy.MaxConnections == 4
		}},
		{"kamailio with empty opensips", "[OpenSIPS]\nsocket_path =\n[Kamailio]\nsocket_path = /k\n", func(c *Config) bool { return c.Proxy.Kind == Kamailio && c.Proxy.SocketPath == "/k" }},
		{"opensips numeric", "[OpenSIPS]\nsocket_path = /o\ndialog_id = Numeric\n", func(c *Config) bool {
			return c.Proxy.Kind == OpenSIPS && c.Proxy.SocketPath == "/o" && c.Proxy.DialogID == DialogIDNumeric
		}},
		{"addresses", "[CDRTool]\naddress = a,b:1 [::1] [::2]:5 ::3\n", func(c *Config) bool {
			return reflect.DeepEqual(c.CDRTool.Addresses, []string{"a:9024", "b:1", "[::1]:9024", "[::2]:5", "[::3]:9024"})
		}},
		{"multiline address", "[CDRTool]\naddress = a\n    b\n", func(c *Config) bool { return reflect.DeepEqual(c.CDRTool.Addresses, []string{"a:9024", "b:9024"}) }},
		{"address None", "[CDRTool]\naddress = None\n", func(c *Config) bool { return !c.CDRTool.Enabled() && c.CDRTool.AddressSet }},
		// Absent and empty differ: absent takes the original's default
		// engine (if it resolves), empty means no engine.
		{"address empty", "[CDRTool]\naddress =\n", func(c *Config) bool { return !c.CDRTool.Enabled() && c.CDRTool.AddressSet }},
		{"address absent", "[CDRTool]\ntimeout = 200\n", func(c *Config) bool { return !c.CDRTool.Enabled() && !c.CDRTool.AddressSet }},
		{"radius accounting", "[RadiusAccounting]\nlisten = 127.0.0.1:1813\nsecret = s3cret\n", func(c *Config) bool {
			return c.RadiusAccounting.Enabled() && c.RadiusAccounting.Listen == "127.0.0.1:1813" && c.RadiusAccounting.Secret == "s3cret"
		}},
		{"percent in password", "[RadiusDatabase]\nhost = h\npassword = a%(b)s%%\n", func(c *Config) bool { return c.RadiusDatabase.Password == "a%(b)s%%" }},
		{"control", "[CallControl]\ncontrol_socket = /c\ncontrol_group = adm\nstate_dir = /s\n", func(c *Config) bool {
			return c.CallControl.ControlSocket == "/c" && c.CallControl.ControlGroup == "adm" && c.CallControl.StateDir == "/s"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse("c.ini", []byte(tt.file), rt)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "config.ini")
	if _, _, err := Load(missing, rt); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing non-default file: err %v", err)
	}
	c, w, err := LoadFile(missing, rt, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0], "not found") {
		t.Errorf("warnings %q", w)
	}
	if want := Default(rt); !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v", c)
	}
	// A file that exists but cannot be read is an error even when optional.
	if _, _, err := LoadFile(dir, rt, true); err == nil {
		t.Error("reading a directory: no error")
	}
}

// The default file may be missing however its directory is spelled
// (callcontrold --config-dir /etc/callcontrol/); any other missing file is
// an error.
func TestDefaultPathSpellings(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{DefaultPath, true},
		{"/etc/callcontrol//config.ini", true},
		{"/etc/callcontrol/./config.ini", true},
		{"/etc/x/../callcontrol/config.ini", true},
		{"/etc/callcontrol.d/config.ini", false},
		{"etc/callcontrol/config.ini", false},
		{"/etc/callcontrol/config.ini.bak", false},
	} {
		if got := isDefaultPath(tt.path); got != tt.want {
			t.Errorf("isDefaultPath(%q) = %t, want %t", tt.path, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	c, _, err := Parse("c.ini", []byte("[RadiusDatabase]\nuser=u\npassword=topsecret\n[RadiusAccounting]\nlisten=:1813\nsecret=alsosecret\n[CDRTool]\naddress=r1\n"), rt)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Summary()
	for _, want := range []string{"c.ini", "limit None", "rating r1:9024", "proxy opensips /run/opensips/socket", "radius db u@localhost/radius", "radius accounting on :1813"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	for _, secret := range []string{"topsecret", "alsosecret"} {
		if strings.Contains(s, secret) {
			t.Errorf("summary leaks %q: %s", secret, s)
		}
	}
	if strings.Contains(s, "\n") || !strings.Contains(Default(rt).Summary(), "rating off") {
		t.Errorf("summary: %q", s)
	}
}

func TestHTTP(t *testing.T) {
	const hash = "$2y$10$abcdefghijklmnopqrstuu5yRQ1k2cCs0mFz5bUu1Vv7XJtqXoX7S"
	for _, c := range []struct {
		name, section string
		want          HTTP
		err           string
	}{
		{"off", "", HTTP{}, ""},
		{"loopback", "listen = 127.0.0.1:9080", HTTP{Listen: "127.0.0.1:9080"}, ""},
		{"localhost", "listen = localhost:9080", HTTP{Listen: "localhost:9080"}, ""},
		{"ipv6 loopback", "listen = [::1]:9080", HTTP{Listen: "[::1]:9080"}, ""},
		{"public with auth", "listen = :9080\nuser = op\npassword_hash = " + hash, HTTP{Listen: ":9080", User: "op", PasswordHash: hash}, ""},
		{"public without auth", "listen = 0.0.0.0:9080", HTTP{}, "reachable from other machines"},
		{"all addresses without auth", "listen = :9080", HTTP{}, "reachable from other machines"},
		{"clear-text password", "listen = 127.0.0.1:9080\nuser = op\npassword_hash = secret", HTTP{}, "must be a bcrypt hash"},
		{"user without hash", "listen = 127.0.0.1:9080\nuser = op", HTTP{}, "go together"},
		{"hash without user", "password_hash = " + hash, HTTP{}, "go together"},
		{"no port", "listen = 127.0.0.1", HTTP{}, "host:port"},
	} {
		cfg, _, err := Parse("t.ini", []byte("[HTTP]\n"+c.section+"\n"), rt)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "[HTTP]") {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || cfg.HTTP != c.want {
			t.Errorf("%s: %+v %v", c.name, cfg, err)
		}
	}
}

// Without group in the file, the socket's group is that of the proxy
// whose dialogs are ended; the daemon may still pick the other one.
func TestGroupDefaultFollowsTheProxy(t *testing.T) {
	for _, tt := range []struct{ file, group string }{
		{"[CallControl]\n", "opensips"},
		{"[Kamailio]\nsocket_path = /run/kamailio/kamailio_ctl\n", "kamailio"},
	} {
		c, _, err := Parse("t", []byte(tt.file), "")
		if err != nil || c.CallControl.Group != tt.group || !c.CallControl.GroupDefault {
			t.Errorf("%q: group %q default %t, %v", tt.file, c.CallControl.Group, c.CallControl.GroupDefault, err)
		}
	}
	c, _, err := Parse("t", []byte("[CallControl]\ngroup = opensips\n[Kamailio]\nsocket_path = /k\n"), "")
	if err != nil || c.CallControl.Group != "opensips" || c.CallControl.GroupDefault {
		t.Errorf("group set in the file: %+v %v", c.CallControl, err)
	}
}
