package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"

	"github.com/callcontrol/callcontrol/internal/budget"
	"github.com/callcontrol/callcontrol/internal/radacct"
)

// option is one known option; aliases are other accepted spellings (the
// original's camelCase) of the same option.
type option struct {
	name    string
	aliases []string
}

// schema lists the known sections (canonical spelling) and options. Built
// per call: nothing package-level is mutable.
func schema() map[string][]option {
	o := func(name string, aliases ...string) option { return option{name, aliases} }
	return map[string][]option{
		"CallControl": {
			o("socket"), o("group"), o("limit"), o("prepaid_limit"), o("timeout"),
			o("setup_time", "setupTime"), o("check_interval", "checkInterval"),
			o("timeout_detection"), o("proxy_timeout"), o("state_dir"),
			o("control_socket"), o("control_group"), o("sync"), o("sync_interval"),
			o("control_read_group"), o("legacy_commands"), o("state_failure"),
		},
		"CDRTool": {o("address"), o("timeout"), o("recheck_interval")},
		"RadiusDatabase": {
			o("user"), o("password"), o("host"), o("database"), o("table"),
			o("sessionIdField"), o("durationField"), o("stopTimeField"), o("stopInfoField"),
			o("mediaInfoField"), o("fromTagField"), o("toTagField"),
		},
		"OpenSIPS":         {o("socket_path"), o("max_connections"), o("dialog_id")},
		"Kamailio":         {o("socket_path"), o("max_connections")},
		"RadiusAccounting": {o("listen"), o("secret")},
		"HTTP":             {o("listen"), o("user"), o("password_hash")},
	}
}

// entry is one option as written in the file.
type entry struct {
	name  string // as spelled in the file
	value string
}

type parser struct {
	file     string
	sections map[string]map[string]entry // canonical section -> lower-case option -> entry
	warnings []string
	err      error
}

// Parse reads configuration from data; name is the file name used in
// errors and warnings. It is Load without the file system.
func Parse(name string, data []byte, runtimeDir string) (*Config, []string, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		// Like the original's Python parser: indented lines continue a
		// value, a trailing backslash is literal, and a comment inside a
		// value needs white space before it (so passwords may hold # or ;).
		IgnoreContinuation:         true,
		AllowPythonMultilineValues: true,
		SpaceBeforeInlineComment:   true,
	}, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
	}
	p := &parser{file: name, sections: map[string]map[string]entry{}}
	p.collect(f)
	c := Default(runtimeDir)
	c.Path = name
	p.callControl(c)
	p.cdrtool(c)
	p.radiusDatabase(c)
	p.proxy(c)
	if _, set := p.get("CallControl", "group"); set {
		c.CallControl.GroupDefault = false
	} else if c.Proxy.Kind == Kamailio {
		// Unset, the socket's group is that of the proxy that connects.
		c.CallControl.Group = "kamailio"
	}
	p.radiusAccounting(c)
	p.http(c)
	if p.err != nil {
		return nil, p.warnings, p.err
	}
	if c.CDRTool.Enabled() {
		if t, capped := budget.Of(c.CallControl.ProxyTimeout).Engine(c.CDRTool.Timeout); capped {
			p.warnf("[CDRTool] timeout (%s) leaves no room under [CallControl] proxy_timeout (%s): each request to the rating engine is cut to %s", c.CDRTool.Timeout, c.CallControl.ProxyTimeout, t)
		}
	}
	return c, p.warnings, nil
}

// collect maps the file's sections and options onto the schema, warning
// about everything unknown. A later occurrence wins, as in the original.
func (p *parser) collect(f *ini.File) {
	known := schema()
	for _, s := range f.Sections() {
		if s.Name() == ini.DefaultSection {
			for _, k := range s.Keys() {
				p.warnf("option %q outside any section, ignored", k.Name())
			}
			continue
		}
		canon := ""
		for name := range known {
			if strings.EqualFold(name, s.Name()) {
				canon = name
			}
		}
		if canon == "" {
			p.warnf("[%s] unknown section, ignored", s.Name())
			continue
		}
		opts := p.sections[canon]
		if opts == nil {
			opts = map[string]entry{}
			p.sections[canon] = opts
		}
		for _, k := range s.Keys() {
			if !isKnown(known[canon], k.Name()) {
				p.warnf("[%s] %s: unknown option, ignored", canon, k.Name())
				continue
			}
			// Value, not String: String expands %(name)s references.
			opts[strings.ToLower(k.Name())] = entry{name: k.Name(), value: k.Value()}
		}
	}
}

func isKnown(opts []option, name string) bool {
	for _, o := range opts {
		if strings.EqualFold(o.name, name) {
			return true
		}
		for _, a := range o.aliases {
			if strings.EqualFold(a, name) {
				return true
			}
		}
	}
	return false
}

func (p *parser) warnf(format string, args ...any) {
	p.warnings = append(p.warnings, p.file+": "+oneLine(fmt.Sprintf(format, args...)))
}

// fail records the first error; later ones would only repeat the cause.
func (p *parser) fail(section string, e entry, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s: [%s] %s = %q: %s", p.file, section, e.name, e.value, oneLine(fmt.Sprintf(format, args...)))
	}
}

// get returns an option's entry, trying its aliases; the snake_case
// spelling wins when both are present.
func (p *parser) get(section, name string, aliases ...string) (entry, bool) {
	opts := p.sections[section]
	e, ok := opts[strings.ToLower(name)]
	for _, a := range aliases {
		ae, aok := opts[strings.ToLower(a)]
		if !aok {
			continue
		}
		if ok {
			p.warnf("[%s] both %s and %s are set: using %s = %q", section, e.name, ae.name, e.name, e.value)
			continue
		}
		e, ok = ae, true
	}
	e.value = strings.TrimSpace(e.value)
	return e, ok
}

func (p *parser) str(section, name string, dst *string) {
	if e, ok := p.get(section, name); ok {
		*dst = e.value
	}
}

func (p *parser) limit(section, name string, dst *Limit) {
	e, ok := p.get(section, name)
	if !ok {
		return
	}
	l, err := ParseLimit(e.value)
	if err != nil {
		p.fail(section, e, "%v", err)
		return
	}
	*dst = l
}

func (p *parser) duration(section string, unit time.Duration, r span, dst *time.Duration, name string, aliases ...string) {
	e, ok := p.get(section, name, aliases...)
	if !ok {
		return
	}
	d, err := parseDuration(e.value, unit)
	if err != nil || d < r.min || d > r.max {
		p.fail(section, e, "must be %s", r.describe(unit))
		return
	}
	*dst = d
}

func (p *parser) socketPath(section, name string, dst *string) {
	e, ok := p.get(section, name)
	if !ok {
		return
	}
	if err := checkSocketPath(e.value); err != nil {
		p.fail(section, e, "%v", err)
		return
	}
	*dst = e.value
}

func (p *parser) callControl(c *Config) {
	const s = "CallControl"
	cc := &c.CallControl
	p.socketPath(s, "socket", &cc.Socket)
	p.str(s, "group", &cc.Group)
	p.limit(s, "limit", &cc.Limit)
	p.limit(s, "prepaid_limit", &cc.PrepaidLimit)
	p.duration(s, time.Second, span{time.Second, MaxStaleTimeout}, &cc.StaleTimeout, "timeout")
	p.duration(s, time.Second, span{time.Second, MaxSetupTime}, &cc.SetupTime, "setup_time", "setupTime")
	p.duration(s, time.Second, span{time.Second, MaxCheckInterval}, &cc.CheckInterval, "check_interval", "checkInterval")
	p.duration(s, time.Millisecond, span{MinProxyTimeout, MaxProxyTimeout}, &cc.ProxyTimeout, "proxy_timeout")
	if e, ok := p.get(s, "timeout_detection"); ok {
		p.warnf("[%s] %s = %q is obsolete and ignored (accounting is always checked when [RadiusDatabase] is set)", s, e.name, e.value)
	}
	if e, ok := p.get(s, "state_dir"); ok {
		if e.value == "" {
			p.fail(s, e, "must be a directory")
		} else {
			cc.StateDir = e.value
		}
	}
	p.socketPath(s, "control_socket", &cc.ControlSocket)
	p.str(s, "control_group", &cc.ControlGroup)
	p.str(s, "control_read_group", &cc.ControlReadGroup)
	if e, ok := p.get(s, "sync"); ok {
		if strings.EqualFold(e.value, "interval") {
			cc.Sync = SyncInterval
		} else if b, err := parseBool(e.value); err != nil {
			p.fail(s, e, "must be interval, yes or no")
		} else if b {
			cc.Sync = SyncYes
		} else {
			cc.Sync = SyncNo
		}
	}
	p.duration(s, time.Millisecond, span{MinSyncInterval, MaxSyncInterval}, &cc.SyncInterval, "sync_interval")
	if e, ok := p.get(s, "sync_interval"); ok && cc.Sync != SyncInterval {
		p.warnf("[%s] %s = %q is used only with sync = interval (sync is %s)", s, e.name, e.value, cc.Sync)
	}
	p.boolean(s, "legacy_commands", &cc.LegacyCommands)
	if e, ok := p.get(s, "state_failure"); ok {
		switch strings.ToLower(e.value) {
		case "serve":
			cc.RefuseNotDurable = false
		case "refuse":
			cc.RefuseNotDurable = true
		default:
			p.fail(s, e, "must be serve or refuse")
		}
	}
}

func (p *parser) boolean(section, name string, dst *bool) {
	e, ok := p.get(section, name)
	if !ok {
		return
	}
	b, err := parseBool(e.value)
	if err != nil {
		p.fail(section, e, "%v", err)
		return
	}
	*dst = b
}

func (p *parser) cdrtool(c *Config) {
	const s = "CDRTool"
	if e, ok := p.get(s, "address"); ok {
		c.CDRTool.AddressSet = true
		addrs, err := ParseAddresses(e.value, 9024)
		if err != nil {
			p.fail(s, e, "%v", err)
		} else {
			c.CDRTool.Addresses = addrs
		}
	}
	if _, set := p.get(s, "timeout"); set {
		p.duration(s, time.Millisecond, span{MinEngineTimeout, MaxEngineTimeout}, &c.CDRTool.Timeout, "timeout")
	} else {
		c.CDRTool.Timeout = budget.Of(c.CallControl.ProxyTimeout).DefaultEngine()
	}
	if e, ok := p.get(s, "recheck_interval"); ok {
		if v := strings.TrimSpace(e.value); v == "0" || v == "0s" {
			c.CDRTool.RecheckInterval = 0
		} else if d, err := parseDuration(v, time.Second); err != nil || d < MinRecheckInterval || d > MaxRecheckInterval {
			p.fail(s, e, "must be 0 (off) or from %d to %d seconds", int(MinRecheckInterval/time.Second), int(MaxRecheckInterval/time.Second))
		} else {
			c.CDRTool.RecheckInterval = d
		}
	}
}

func (p *parser) radiusDatabase(c *Config) {
	const s = "RadiusDatabase"
	r := &c.RadiusDatabase
	for _, name := range []string{"host", "database", "user"} {
		if e, ok := p.get(s, name); ok && e.value != "" {
			r.Enabled = true
		}
	}
	if len(p.sections[s]) > 0 && !r.Enabled {
		p.warnf("[%s] sets none of host, database, user: accounting database polling is off", s)
	}
	p.str(s, "user", &r.User)
	p.str(s, "password", &r.Password)
	p.str(s, "host", &r.Host)
	p.str(s, "database", &r.Database)
	if e, ok := p.get(s, "table"); ok {
		t, err := ParseTablePattern(e.value)
		if err != nil {
			p.fail(s, e, "%v", err)
		} else {
			r.Table = t
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"sessionIdField", &r.SessionIDField},
		{"durationField", &r.DurationField},
		{"stopTimeField", &r.StopTimeField},
		{"stopInfoField", &r.StopInfoField},
		{"mediaInfoField", &r.MediaInfoField},
		{"fromTagField", &r.FromTagField},
		{"toTagField", &r.ToTagField},
	} {
		e, ok := p.get(s, f.name)
		if !ok {
			continue
		}
		if err := radacct.CheckName(e.value); err != nil {
			p.fail(s, e, "must be a column name: %v", err)
			continue
		}
		*f.dst = e.value
	}
}

func (p *parser) proxy(c *Config) {
	ose, osSet := p.get("OpenSIPS", "socket_path")
	km, kmSet := p.get("Kamailio", "socket_path")
	osSet = osSet && ose.value != ""
	kmSet = kmSet && km.value != ""
	if osSet && kmSet {
		if p.err == nil {
			p.err = fmt.Errorf("%s: [OpenSIPS] socket_path = %q and [Kamailio] socket_path = %q: set only one, the proxy whose dialogs are ended", p.file, ose.value, km.value)
		}
		return
	}
	pr := &c.Proxy
	section, other := "OpenSIPS", "Kamailio"
	if kmSet {
		section, other = "Kamailio", "OpenSIPS"
		pr.Kind = Kamailio
		pr.SocketPath = ""
	} else if len(p.sections["Kamailio"]) > 0 {
		p.warnf("[Kamailio] has no socket_path: ending dialogs through OpenSIPS at %s", pr.SocketPath)
	}
	p.socketPath(section, "socket_path", &pr.SocketPath)
	for _, sec := range []string{section, other} {
		e, ok := p.get(sec, "max_connections")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(e.value)
		if err != nil || n < 1 || n > MaxMaxConnections {
			p.fail(sec, e, "must be a number from 1 to %d", MaxMaxConnections)
			continue
		}
		if sec == section {
			pr.MaxConnections = n
		} else {
			p.warnf("[%s] %s ignored: dialogs are ended through %s", sec, e.name, section)
		}
	}
	if e, ok := p.get("OpenSIPS", "dialog_id"); ok {
		switch m := DialogIDMode(strings.ToLower(e.value)); m {
		case DialogIDCallID, DialogIDNumeric, DialogIDPassthrough:
			if pr.Kind == OpenSIPS {
				pr.DialogID = m
			} else {
				p.warnf("[OpenSIPS] %s ignored: dialogs are ended through Kamailio", e.name)
			}
		default:
			p.fail("OpenSIPS", e, "must be callid, numeric (OpenSIPS 3.1+) or passthrough (OpenSIPS 3.0)")
		}
	}
}

func (p *parser) radiusAccounting(c *Config) {
	const s = "RadiusAccounting"
	ra := &c.RadiusAccounting
	p.str(s, "secret", &ra.Secret)
	e, ok := p.get(s, "listen")
	if !ok || e.value == "" {
		return
	}
	host, port, err := splitListen(e.value)
	if err != nil {
		p.fail(s, e, "must be host:port (host may be empty for all addresses)")
		return
	}
	ra.Listen = net.JoinHostPort(host, port)
	if ra.Secret == "" {
		p.fail(s, e, "needs a secret (the RADIUS shared secret) to check requests")
	}
}

// ParseLimit reads a limit: "None" (any case) for no limit, else whole
// seconds from 0 to MaxLimit.
func ParseLimit(v string) (Limit, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "none") {
		return Limit{}, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > MaxLimit {
		return Limit{}, fmt.Errorf("must be a number of seconds from 0 to %d (30 days), or None", MaxLimit)
	}
	return Limit{Set: true, Seconds: n}, nil
}

// parseDuration reads a positive number in unit (decimals allowed), or a
// Go duration with its own unit ("1.5s", "250ms").
func parseDuration(v string, unit time.Duration) (time.Duration, error) {
	name := map[time.Duration]string{time.Second: "seconds", time.Millisecond: "milliseconds"}[unit]
	bad := fmt.Errorf("must be a positive number of %s", name)
	var d time.Duration
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f*float64(unit) >= math.MaxInt64 {
			return 0, bad
		}
		d = time.Duration(f * float64(unit))
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, bad
	}
	if d <= 0 {
		return 0, bad
	}
	return d, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("must be yes or no")
}

// splitListen splits a listen address, host:port, checking the port.
func splitListen(v string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(v)
	if err == nil {
		_, err = parsePort(port)
	}
	return host, port, err
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// ParseAddresses reads a list of host[:port] separated by white space or
// commas, and returns them as host:port. "None" or empty is no address.
func ParseAddresses(v string, defaultPort int) ([]string, error) {
	fields := strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 1 && strings.EqualFold(fields[0], "none") {
		return nil, nil
	}
	var out []string
	for _, f := range fields {
		host, port := f, strconv.Itoa(defaultPort)
		switch {
		case strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]"):
			host = f[1 : len(f)-1] // [v6] without a port
		case strings.HasPrefix(f, "[") || strings.Count(f, ":") == 1:
			var err error
			if host, port, err = net.SplitHostPort(f); err != nil {
				return nil, fmt.Errorf("%q: not host[:port]", f)
			}
		}
		// More than one colon and no brackets: a bare IPv6 address, or
		// a typo (host:9024:1) that must not pass for one.
		if strings.Count(f, ":") > 1 && !strings.HasPrefix(f, "[") && net.ParseIP(host) == nil {
			return nil, fmt.Errorf("%q: not host[:port] (an IPv6 address with a port is written [address]:port)", f)
		}
		n, err := parsePort(port)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q: bad port", f)
		}
		if host == "" || strings.ContainsAny(host, "[]/") {
			return nil, fmt.Errorf("%q: bad host", f)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// ParseTablePattern reads a radacct table pattern. Files written for the
// original doubled the % (its parser interpolated values): both radacct%Y%m
// and radacct%%Y%%m mean the same. It must expand to a table name the
// accounting poller can use (radacct.Table), since it goes into SQL text.
func ParseTablePattern(v string) (string, error) {
	v = strings.ReplaceAll(strings.TrimSpace(v), "%%", "%")
	if _, err := radacct.Table(v, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return "", fmt.Errorf("must be a table name (or database.table), with strftime %%Y %%y %%m %%d allowed (written %% or %%%%): %v", err)
	}
	return v, nil
}

func checkSocketPath(path string) error {
	if path == "" {
		return fmt.Errorf("must be a path")
	}
	if len(path) > MaxSocketPath {
		return fmt.Errorf("is %d bytes, longer than the %d a Unix socket path may have", len(path), MaxSocketPath)
	}
	return nil
}

// oneLine keeps log lines and error messages on a single line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
