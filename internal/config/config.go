// Package config reads callcontrol's INI file.
//
// A file written for the original (Python) Call Control loads unchanged:
// its sections and options keep their meaning, obsolete options are
// accepted with a warning, and unknown sections or options are warnings,
// never fatal. Section and option names are matched case-insensitively (the
// original's parser lower-cased option names too).
//
// Errors are one line naming the file, section, option and value.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/budget"
	"github.com/callcontrol/callcontrol/internal/radacct"
)

// DefaultDir holds the file the daemon reads when given no --config-dir,
// DefaultPath. A missing file there means "all defaults" (with a
// warning); a missing file anywhere else is an error, since someone named
// it on purpose.
const (
	DefaultDir  = "/etc/callcontrol"
	DefaultPath = DefaultDir + "/config.ini"
)

// DefaultRuntimeDir is used when Load or Default get an empty runtimeDir.
const DefaultRuntimeDir = "/run/callcontrol"

// defaultProxyTimeout is proxy_timeout when unset: the call_control
// module's default socket_timeout.
const defaultProxyTimeout = 500 * time.Millisecond

// MaxSocketPath is the longest path a Unix socket can be bound to on Linux
// (sun_path is 108 bytes including the terminating NUL).
const MaxSocketPath = 107

// Limit is a call duration limit in whole seconds. The zero value is "None"
// (no limit); Set with Seconds 0 is a real limit of 0 seconds.
type Limit struct {
	Set     bool
	Seconds int
}

// String renders the limit as it is written in the file.
func (l Limit) String() string {
	if !l.Set {
		return "None"
	}
	return fmt.Sprint(l.Seconds)
}

// Duration returns the limit and whether there is one.
func (l Limit) Duration() (time.Duration, bool) {
	return time.Duration(l.Seconds) * time.Second, l.Set
}

// CallControl is the [CallControl] section: the proxy-facing socket, limits
// and housekeeping.
type CallControl struct {
	Socket string // socket: where the proxy's call_control module connects
	Group  string // group: owner group of Socket ("" = leave as is)
	// GroupDefault: group is not set in the file, so Group is the default
	// (kamailio with [Kamailio], else opensips); the daemon then takes the
	// other proxy's group if only that one exists.
	GroupDefault  bool
	Limit         Limit         // limit: for all calls
	PrepaidLimit  Limit         // prepaid_limit: caps prepaid calls instead of Limit when set
	StaleTimeout  time.Duration // timeout: a call in progress without a timer is ended after this
	SetupTime     time.Duration // setup_time/setupTime: an unanswered call is dropped after this
	CheckInterval time.Duration // check_interval/checkInterval: housekeeping period
	ProxyTimeout  time.Duration // proxy_timeout: the proxy's socket_timeout, the answer deadline
	StateDir      string        // state_dir: durable session log and debit spool
	ControlSocket string        // control_socket: operator commands
	ControlGroup  string        // control_group: owner group of ControlSocket ("" = none)
	Sync          SyncMode      // sync: when the state log reaches the disk
	SyncInterval  time.Duration // sync_interval: with sync = interval, the longest a change stays unflushed

	// ControlReadGroup (control_read_group): its members may list and show
	// sessions, stats and owed debits, and change nothing ("" = none).
	ControlReadGroup string
	// LegacyCommands (legacy_commands) serves the original's operator
	// commands, debug and terminate, on Socket to the callers Access
	// admits on the control socket.
	LegacyCommands bool
	// RefuseNotDurable (state_failure = refuse) answers init Error while
	// the state cannot be written; serve (the default) keeps answering
	// from memory.
	RefuseNotDurable bool
}

// SyncMode is [CallControl] sync: when a change in the state log reaches
// the disk. Every mode writes it (to the page cache) before the reply, so
// a crash of the daemon alone loses nothing in any of them.
type SyncMode int

const (
	// SyncInterval ("interval", the default): the reply never waits for
	// the disk; a background flush makes each change durable within
	// SyncInterval.
	SyncInterval SyncMode = iota
	// SyncYes ("yes"): fsync'd before the reply (group commit).
	SyncYes
	// SyncNo ("no"): never flushed by the daemon; the kernel writes it
	// back in its own time.
	SyncNo
)

func (m SyncMode) String() string {
	switch m {
	case SyncYes:
		return "yes"
	case SyncNo:
		return "no"
	}
	return "interval"
}

// CDRTool is the [CDRTool] section: the rating engines.
type CDRTool struct {
	// Addresses are "host:port" (port defaulted to 9024). Empty means no
	// rating engine: calls are postpaid, and a call the proxy flags
	// prepaid is refused.
	Addresses []string
	// AddressSet is true when the file has an address option, even an
	// empty one ("address =" means no engine). Without it the daemon
	// applies the original's default, cdrtool.<domain of this host>,
	// if that name resolves (see DefaultEngineHost).
	AddressSet bool
	Timeout    time.Duration // per request; the daemon caps it to budget.EngineMax
	// RecheckInterval is recheck_interval: the longest time between two
	// re-asks of the engine for a prepaid call in progress, so calls of one
	// account on several proxies learn of their shared end. 0: off.
	RecheckInterval time.Duration
}

// DefaultEngineHost is the original's engine address when [CDRTool]
// address is absent: "cdrtool." followed by the domain of this host.
func DefaultEngineHost(domain string) string { return "cdrtool." + domain }

// DefaultRecheckInterval is recheck_interval's default.
const DefaultRecheckInterval = 30 * time.Second

// MinRecheckInterval is the shortest recheck_interval other than 0.
const MinRecheckInterval = 2 * time.Second

// Enabled reports whether a rating engine is configured.
func (c CDRTool) Enabled() bool { return len(c.Addresses) > 0 }

// RadiusDatabase is the [RadiusDatabase] section: the radacct tables polled
// for calls that ended without a stop.
type RadiusDatabase struct {
	// Enabled is true only when the section sets host, database or user to a
	// non-empty value: an installation without a radius database, whose
	// file has no such section (or an empty one), must not log a failed
	// poll every check interval.
	Enabled  bool
	User     string
	Password string
	Host     string // may carry ":port"
	Database string
	// Table is an strftime pattern (radacct%Y%m); a doubled %% in the file
	// has already been reduced to %. See radacct.Table.
	Table string

	SessionIDField string
	DurationField  string
	StopTimeField  string
	StopInfoField  string
	MediaInfoField string
	FromTagField   string
	ToTagField     string
}

// ProxyKind names the proxy whose management interface ends dialogs.
type ProxyKind string

// The supported proxies.
const (
	OpenSIPS ProxyKind = "opensips"
	Kamailio ProxyKind = "kamailio"
)

// DialogIDMode is how a dialog is named to OpenSIPS' dlg_end_dlg.
type DialogIDMode string

// The [OpenSIPS] dialog_id values.
const (
	DialogIDCallID      DialogIDMode = "callid"      // the Call-ID: works on every 3.x
	DialogIDNumeric     DialogIDMode = "numeric"     // 3.1+: hex h_entry.h_id
	DialogIDPassthrough DialogIDMode = "passthrough" // 3.0: the dialogid as the proxy sent it
)

// Proxy is the management interface used to end dialogs, from [OpenSIPS]
// or [Kamailio].
type Proxy struct {
	Kind           ProxyKind
	SocketPath     string       // the proxy's datagram socket (MI / jsonrpcs)
	MaxConnections int          // read for compatibility; end requests are no longer bounded in flight
	DialogID       DialogIDMode // OpenSIPS only
}

// RadiusAccounting is the [RadiusAccounting] section: a live RADIUS
// accounting listener.
type RadiusAccounting struct {
	Listen string // host:port; "" = off
	Secret string
}

// Enabled reports whether the listener is configured.
func (r RadiusAccounting) Enabled() bool { return r.Listen != "" }

// Config is the whole configuration.
type Config struct {
	Path             string // file it was read from; "" when all defaults
	CallControl      CallControl
	CDRTool          CDRTool
	RadiusDatabase   RadiusDatabase
	Proxy            Proxy
	RadiusAccounting RadiusAccounting
	HTTP             HTTP
}

// Default returns the configuration used when the file sets nothing.
// runtimeDir holds the daemon's sockets ("" = DefaultRuntimeDir).
func Default(runtimeDir string) *Config {
	if runtimeDir == "" {
		runtimeDir = DefaultRuntimeDir
	}
	return &Config{
		CallControl: CallControl{
			Socket:        filepath.Join(runtimeDir, "socket"),
			Group:         "opensips",
			GroupDefault:  true,
			StaleTimeout:  24 * time.Hour,
			SetupTime:     90 * time.Second,
			CheckInterval: 60 * time.Second,
			ProxyTimeout:  defaultProxyTimeout,
			StateDir:      "/var/lib/callcontrol",
			ControlSocket: filepath.Join(runtimeDir, "control"),
			Sync:          SyncInterval,
			SyncInterval:  100 * time.Millisecond,

			LegacyCommands: true,
		},
		CDRTool: CDRTool{
			// Derived from proxy_timeout again once it is read (cdrtool).
			Timeout: budget.Of(defaultProxyTimeout).DefaultEngine(),
			// Two proxies on one engine: an account's call overruns its
			// balance by one step at most, and steps shrink to 2 s near
			// the end; the engine gets two requests per 30 s per party.
			RecheckInterval: DefaultRecheckInterval,
		},
		RadiusDatabase: RadiusDatabase{
			Host:           "localhost",
			Database:       "radius",
			Table:          radacct.DefaultTable,
			SessionIDField: radacct.DefaultSessionID,
			DurationField:  radacct.DefaultSessionTime,
			StopTimeField:  radacct.DefaultStopTime,
			StopInfoField:  radacct.DefaultConnectInfoStop,
			MediaInfoField: radacct.DefaultMediaInfo,
			FromTagField:   radacct.DefaultFromTag,
			ToTagField:     radacct.DefaultToTag,
		},
		Proxy: Proxy{
			Kind:           OpenSIPS,
			SocketPath:     "/run/opensips/socket",
			MaxConnections: 10,
			DialogID:       DialogIDCallID,
		},
	}
}

// Load reads the file at path. A missing file is an error, except at
// DefaultPath however spelled (/etc/callcontrol//config.ini too), where it
// yields Default(runtimeDir) and a warning. Warnings are one line each,
// for the log; the daemon runs with them.
func Load(path, runtimeDir string) (*Config, []string, error) {
	return LoadFile(path, runtimeDir, isDefaultPath(path))
}

func isDefaultPath(path string) bool { return filepath.Clean(path) == DefaultPath }

// LoadFile is Load with the missing-file rule explicit: optional means a
// missing file gives defaults and a warning instead of an error.
func LoadFile(path, runtimeDir string, optional bool) (*Config, []string, error) {
	data, err := readFile(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return Default(runtimeDir), []string{fmt.Sprintf("%s: not found, using defaults", path)}, nil
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	c, warnings, err := Parse(path, data, runtimeDir)
	if err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// Summary is one line describing the configuration for the startup log.
// It never includes passwords or secrets.
func (c *Config) Summary() string {
	var b strings.Builder
	cc := c.CallControl
	src := c.Path
	if src == "" {
		src = "defaults"
	}
	fmt.Fprintf(&b, "config %s: socket %s (group %q), limit %s, prepaid_limit %s, proxy_timeout %s, setup_time %s, check_interval %s, stale timeout %s",
		src, cc.Socket, cc.Group, cc.Limit, cc.PrepaidLimit, cc.ProxyTimeout, cc.SetupTime, cc.CheckInterval, cc.StaleTimeout)
	sync := cc.Sync.String()
	if cc.Sync == SyncInterval {
		sync += " " + cc.SyncInterval.String()
	}
	fmt.Fprintf(&b, ", state %s (sync %s), control %s", cc.StateDir, sync, cc.ControlSocket)
	if c.CDRTool.Enabled() {
		fmt.Fprintf(&b, ", rating %s (timeout %s, recheck_interval %s)", strings.Join(c.CDRTool.Addresses, " "), c.CDRTool.Timeout, c.CDRTool.RecheckInterval)
	} else {
		if c.CDRTool.AddressSet {
			b.WriteString(", rating off (calls flagged prepaid are refused, others postpaid)")
		} else {
			b.WriteString(", rating off unless the default engine cdrtool.<domain> resolves")
		}
	}
	fmt.Fprintf(&b, ", proxy %s %s", c.Proxy.Kind, c.Proxy.SocketPath)
	if c.Proxy.Kind == OpenSIPS {
		fmt.Fprintf(&b, " (dialog_id %s)", c.Proxy.DialogID)
	}
	if r := c.RadiusDatabase; r.Enabled {
		fmt.Fprintf(&b, ", radius db %s@%s/%s table %s", r.User, r.Host, r.Database, r.Table)
	} else {
		b.WriteString(", radius db off")
	}
	if c.RadiusAccounting.Enabled() {
		fmt.Fprintf(&b, ", radius accounting on %s", c.RadiusAccounting.Listen)
	} else {
		b.WriteString(", radius accounting off")
	}
	b.WriteString(c.HTTP.summary())
	return b.String()
}
