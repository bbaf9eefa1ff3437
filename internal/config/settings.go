package config

import (
	"fmt"
	"strings"
	"time"
)

// Setting is one option with its effective value, as it would be written in
// the file.
type Setting struct {
	Section, Option, Value string
}

func (s Setting) String() string { return fmt.Sprintf("[%s] %s = %s", s.Section, s.Option, s.Value) }

// Settings lists every option's effective value. Passwords and secrets are
// shown as "(set)", never in clear: this goes to terminals and logs.
func (c *Config) Settings() []Setting {
	secret := func(v string) string {
		if v == "" {
			return ""
		}
		return "(set)"
	}
	cc, r := c.CallControl, c.RadiusDatabase
	list := []Setting{
		{"CallControl", "socket", cc.Socket},
		{"CallControl", "group", cc.Group},
		{"CallControl", "limit", cc.Limit.String()},
		{"CallControl", "prepaid_limit", cc.PrepaidLimit.String()},
		{"CallControl", "timeout", inUnit(cc.StaleTimeout, time.Second)},
		{"CallControl", "setup_time", inUnit(cc.SetupTime, time.Second)},
		{"CallControl", "check_interval", inUnit(cc.CheckInterval, time.Second)},
		{"CallControl", "proxy_timeout", inUnit(cc.ProxyTimeout, time.Millisecond)},
		{"CallControl", "state_dir", cc.StateDir},
		{"CallControl", "control_socket", cc.ControlSocket},
		{"CallControl", "control_group", cc.ControlGroup},
		{"CallControl", "control_read_group", cc.ControlReadGroup},
		{"CallControl", "sync", cc.Sync.String()},
		{"CallControl", "sync_interval", inUnit(cc.SyncInterval, time.Millisecond)},
		{"CallControl", "legacy_commands", yesNo(cc.LegacyCommands)},
		{"CallControl", "state_failure", stateFailure(cc.RefuseNotDurable)},
		{"CDRTool", "address", strings.Join(c.CDRTool.Addresses, " ")},
		{"CDRTool", "timeout", inUnit(c.CDRTool.Timeout, time.Millisecond)},
		{"CDRTool", "recheck_interval", inUnit(c.CDRTool.RecheckInterval, time.Second)},
		{"HTTP", "listen", c.HTTP.Listen},
		{"HTTP", "user", c.HTTP.User},
		{"HTTP", "password_hash", secret(c.HTTP.PasswordHash)},
	}
	if r.Enabled {
		list = append(list,
			Setting{"RadiusDatabase", "user", r.User},
			Setting{"RadiusDatabase", "password", secret(r.Password)},
			Setting{"RadiusDatabase", "host", r.Host},
			Setting{"RadiusDatabase", "database", r.Database},
			Setting{"RadiusDatabase", "table", r.Table},
			Setting{"RadiusDatabase", "sessionIdField", r.SessionIDField},
			Setting{"RadiusDatabase", "durationField", r.DurationField},
			Setting{"RadiusDatabase", "stopTimeField", r.StopTimeField},
			Setting{"RadiusDatabase", "stopInfoField", r.StopInfoField},
			Setting{"RadiusDatabase", "mediaInfoField", r.MediaInfoField},
			Setting{"RadiusDatabase", "fromTagField", r.FromTagField},
			Setting{"RadiusDatabase", "toTagField", r.ToTagField})
	}
	proxy := "OpenSIPS"
	if c.Proxy.Kind == Kamailio {
		proxy = "Kamailio"
	}
	list = append(list,
		Setting{proxy, "socket_path", c.Proxy.SocketPath},
		Setting{proxy, "max_connections", fmt.Sprint(c.Proxy.MaxConnections)})
	if c.Proxy.Kind == OpenSIPS {
		list = append(list, Setting{proxy, "dialog_id", string(c.Proxy.DialogID)})
	}
	list = append(list,
		Setting{"RadiusAccounting", "listen", c.RadiusAccounting.Listen},
		Setting{"RadiusAccounting", "secret", secret(c.RadiusAccounting.Secret)})
	return list
}

// Changed lists the settings of c whose value differs from def's (an
// option def does not have counts as changed).
func (c *Config) Changed(def *Config) []Setting {
	// [OpenSIPS] and [Kamailio] are one setting, the proxy: switching to
	// Kamailio shows as its socket_path, not as every option of it.
	key := func(s Setting) string {
		if s.Section == "OpenSIPS" || s.Section == "Kamailio" {
			return "proxy\x00" + s.Option
		}
		return s.Section + "\x00" + s.Option
	}
	base := make(map[string]string)
	for _, s := range def.Settings() {
		base[key(s)] = s.Value
	}
	var out []Setting
	for _, s := range c.Settings() {
		if v, ok := base[key(s)]; !ok || v != s.Value {
			out = append(out, s)
		}
	}
	return out
}

func stateFailure(refuse bool) string {
	if refuse {
		return "refuse"
	}
	return "serve"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
