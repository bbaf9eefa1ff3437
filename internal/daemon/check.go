package daemon

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
)

// CheckResult is what CheckConfig found.
type CheckResult struct {
	Config   *config.Config // nil when the file is invalid
	Warnings []string       // the parser's and the host's (groups, sockets, names)
	Err      error          // why the file cannot be used
}

// CheckConfig parses and validates the configuration the daemon would
// load with opts, without touching sockets or state, and checks it against
// this host: groups that do not exist, socket directories that cannot be
// made, engine names that do not resolve, a proxy management socket that is
// not there. Those are warnings: the daemon starts with them. A proxy
// socket group that does not exist is an error, as it is at the start.
func CheckConfig(opts Options) CheckResult {
	var warnings []string
	collect := slog.New(&warnCollector{out: &warnings})
	cfg, err := LoadConfig(opts, collect)
	if err != nil {
		return CheckResult{Warnings: warnings, Err: err}
	}
	// A proxy socket group that does not exist stops the start: refused
	// here too, not passed with a warning.
	if _, _, err := proxySocketGroup(cfg.CallControl, collect); err != nil {
		return CheckResult{Warnings: warnings, Err: err}
	}
	warnings = append(warnings, hostWarnings(cfg)...)
	return CheckResult{Config: cfg, Warnings: warnings}
}

// WriteCheck prints a CheckResult for an operator: the verdict, the
// warnings, and the settings that differ from the defaults. It returns the
// exit status: 0 valid, 1 invalid.
func WriteCheck(w io.Writer, opts Options, r CheckResult) int {
	if r.Err != nil {
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
		fmt.Fprintf(w, "callcontrold: configuration invalid: %v\n", r.Err)
		return 1
	}
	src := r.Config.Path
	if src == "" {
		src = opts.ConfigPath() + " (absent: defaults)"
	}
	warnings := fmt.Sprintf("%d warnings", len(r.Warnings))
	if len(r.Warnings) == 1 {
		warnings = "1 warning"
	}
	fmt.Fprintf(w, "callcontrold: configuration %s is valid (%s)\n", src, warnings)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	changed := r.Config.Changed(config.Default(opts.RuntimeDir))
	if len(changed) == 0 {
		fmt.Fprintln(w, "Every setting is the default.")
		return 0
	}
	fmt.Fprintln(w, "Settings that differ from the defaults:")
	for _, s := range changed {
		fmt.Fprintf(w, "  %s\n", s)
	}
	return 0
}

// hostWarnings checks the configuration against this machine.
func hostWarnings(cfg *config.Config) []string {
	var w []string
	cc := cfg.CallControl
	groups := []struct{ option, name, effect string }{
		{"control_group", cc.ControlGroup, "only root and the daemon's user could use the control socket"},
		{"control_read_group", cc.ControlReadGroup, "nobody would get read-only access"},
	}
	for _, g := range groups {
		if g.name == "" {
			continue
		}
		if _, err := user.LookupGroup(g.name); err != nil {
			w = append(w, fmt.Sprintf("[CallControl] %s = %s: no such group on this host: %s", g.option, g.name, g.effect))
		}
	}
	for _, s := range []struct{ option, path string }{{"socket", cc.Socket}, {"control_socket", cc.ControlSocket}} {
		if msg := socketDirProblem(s.path); msg != "" {
			w = append(w, fmt.Sprintf("[CallControl] %s = %s: %s", s.option, s.path, msg))
		}
	}
	if fi, err := os.Stat(cc.StateDir); err == nil && !fi.IsDir() {
		w = append(w, fmt.Sprintf("[CallControl] state_dir = %s: not a directory", cc.StateDir))
	}
	section := "OpenSIPS"
	if cfg.Proxy.Kind == config.Kamailio {
		section = "Kamailio"
	}
	if fi, err := os.Stat(cfg.Proxy.SocketPath); err != nil {
		w = append(w, fmt.Sprintf("[%s] socket_path = %s: not there now (is the proxy running?): calls cannot be ended until it is", section, cfg.Proxy.SocketPath))
	} else if fi.Mode().Type() != fs.ModeSocket {
		w = append(w, fmt.Sprintf("[%s] socket_path = %s: not a socket", section, cfg.Proxy.SocketPath))
	}
	for _, addr := range cfg.CDRTool.Addresses {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || net.ParseIP(host) != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err != nil {
			w = append(w, fmt.Sprintf("[CDRTool] address %s: the name does not resolve now: %v", addr, err))
		}
	}
	return w
}

// socketDirProblem says why a socket could not be made at path, or "".
func socketDirProblem(path string) string {
	dir := filepath.Dir(path)
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return d + " is not a directory"
			}
			return ""
		}
		if d == filepath.Dir(d) {
			return "no directory to make it in"
		}
	}
}

// warnCollector is a slog handler that keeps warning messages as lines.
type warnCollector struct{ out *[]string }

func (c *warnCollector) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c *warnCollector) Handle(_ context.Context, r slog.Record) error {
	*c.out = append(*c.out, r.Message)
	return nil
}
func (c *warnCollector) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *warnCollector) WithGroup(string) slog.Handler      { return c }
