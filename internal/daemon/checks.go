package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/rating"
)

// checkTimeout bounds the start and reload checks; they run beside the
// daemon's work and never hold it up.
const checkTimeout = 3 * time.Second

// recheckEvery: a management socket that failed its check is checked
// again this often, quietly, until it answers (the proxy often starts
// after the daemon), so that stats stays true.
const recheckEvery = 10 * time.Second

// defaultEngineTimeout bounds finding and resolving the default engine
// name, which happens before the daemon serves.
const defaultEngineTimeout = time.Second

// hostEnv is this host's name and resolver; tests replace it (the zero
// value is the system's).
type hostEnv struct {
	hostname   func() (string, error)
	lookupHost func(ctx context.Context, host string) ([]string, error)
	lookupAddr func(ctx context.Context, addr string) ([]string, error)
}

func (h hostEnv) withDefaults() hostEnv {
	if h.hostname == nil {
		h.hostname = os.Hostname
	}
	if h.lookupHost == nil {
		h.lookupHost = net.DefaultResolver.LookupHost
	}
	if h.lookupAddr == nil {
		h.lookupAddr = net.DefaultResolver.LookupAddr
	}
	return h
}

// domain finds this host's domain as the original did: from its fully
// qualified name, else from the name its address resolves back to.
func (h hostEnv) domain(ctx context.Context) (string, error) {
	name, err := h.hostname()
	if err != nil {
		return "", err
	}
	if _, dom, ok := strings.Cut(strings.TrimSuffix(name, "."), "."); ok && dom != "" {
		return dom, nil
	}
	addrs, err := h.lookupHost(ctx, name)
	if err != nil {
		return "", fmt.Errorf("host name %q has no domain and does not resolve: %w", name, err)
	}
	for _, a := range addrs {
		names, _ := h.lookupAddr(ctx, a)
		for _, n := range names {
			if _, dom, ok := strings.Cut(strings.TrimSuffix(n, "."), "."); ok && dom != "" {
				return dom, nil
			}
		}
	}
	return "", fmt.Errorf("host name %q has no domain, nor has the name its address resolves back to", name)
}

// engineSource values (control.Stats.EngineSource).
const (
	engineFromConfig  = "config"
	engineFromDefault = "default"
	engineNone        = "none"
)

// applyDefaultEngine fills in the original's default engine address when
// [CDRTool] address is absent and cdrtool.<domain> resolves; with no
// engine at all it warns that calls flagged prepaid will be refused. It
// returns where the addresses come from. A reload that would turn rating
// off keeps the engines in force until a restart: it does not warn.
func applyDefaultEngine(cfg *config.Config, h hostEnv, log *slog.Logger, engineInForce bool) string {
	if cfg.CDRTool.Enabled() {
		return engineFromConfig
	}
	const refused = "no rating engine: calls the proxy flags prepaid will be refused (answered Error), other calls are postpaid"
	warn := log.Warn
	if engineInForce {
		warn = func(string, ...any) {} // the engines stay until a restart, and the reload says so
	}
	if cfg.CDRTool.AddressSet {
		warn(refused, "cause", "[CDRTool] address is empty", "fix", "set [CDRTool] address to the rating engine's host[:port]")
		return engineNone
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultEngineTimeout)
	defer cancel()
	h = h.withDefaults()
	dom, err := h.domain(ctx)
	if err != nil {
		warn(refused, "cause", "[CDRTool] address is not set and this host's domain is unknown ("+err.Error()+")",
			"fix", "set [CDRTool] address, or address = (empty) to say there is none")
		return engineNone
	}
	host := config.DefaultEngineHost(dom)
	if _, err := h.lookupHost(ctx, host); err != nil {
		warn(refused, "cause", "[CDRTool] address is not set and the default engine "+host+" does not resolve ("+rating.Cause(err)+")",
			"fix", "set [CDRTool] address, or address = (empty) to say there is none")
		return engineNone
	}
	addr := rating.NormalizeAddr(host)
	cfg.CDRTool.Addresses = []string{addr}
	log.Info("[CDRTool] address is not set: using the original's default engine, cdrtool.<domain of this host>", "engine", addr)
	return engineFromDefault
}

// checks runs the start and reload checks of what the daemon depends on,
// and keeps their outcome for stats.
type checks struct {
	run sync.Mutex // one check at a time: they share the probe's socket

	mu     sync.Mutex
	mgmt   control.ManagementSocketStatus
	source string
	gen    int // bumped by each start or reload check: older rechecks stop

	// running counts the check goroutines not yet returned; at zero no
	// probe can follow until the next reload (tests wait on it).
	running atomic.Int32
}

// check probes the proxy's management socket and connects to each rating
// engine; each failure is one WARNING with its cause and the option to
// fix. It never stops the daemon: the proxy or the engine may come later.
func (d *Daemon) check(ctx context.Context) (answering bool) {
	d.checks.run.Lock()
	defer d.checks.run.Unlock()
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.checkEngines(ctx)
	}()
	mgmt, ok := d.checkManagementSocket(ctx, cfg, true)
	wg.Wait()
	if ok {
		// Recorded once both are done: a stats reader that sees this
		// check also sees the engines it found.
		d.checks.mu.Lock()
		d.checks.mgmt = mgmt
		d.checks.mu.Unlock()
	}
	return !ok || mgmt.State == control.SocketAnswering
}

// recheck probes a management socket that failed its check again, every
// recheckEvery, until it answers or a newer check (reload) takes over.
// It logs only the recovery: the failure was said once.
func (d *Daemon) recheck(ctx context.Context, gen int) {
	every := d.opts.recheckEvery
	if every <= 0 {
		every = recheckEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.checks.run.Lock()
		d.checks.mu.Lock()
		current := d.checks.gen == gen
		d.checks.mu.Unlock()
		if !current {
			d.checks.run.Unlock()
			return
		}
		d.mu.Lock()
		cfg := d.cfg
		d.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, checkTimeout)
		mgmt, ok := d.checkManagementSocket(pctx, cfg, false)
		cancel()
		if ok {
			d.checks.mu.Lock()
			d.checks.mgmt = mgmt
			d.checks.mu.Unlock()
		}
		d.checks.run.Unlock()
		if ok && mgmt.State == control.SocketAnswering {
			return
		}
	}
}

// checkManagementSocket probes the socket; loud logs a failure (one
// WARNING) and a success; a quiet recheck logs only the success.
func (d *Daemon) checkManagementSocket(ctx context.Context, cfg *config.Config, loud bool) (control.ManagementSocketStatus, bool) {
	p := cfg.Proxy
	flavor, section := dialog.OpenSIPS, "[OpenSIPS]"
	if p.Kind == config.Kamailio {
		flavor, section = dialog.Kamailio, "[Kamailio]"
	}
	st := control.ManagementSocketStatus{Path: p.SocketPath, Proxy: flavor.String(), State: control.SocketAnswering}
	version, err := dialog.Probe(ctx, flavor, p.SocketPath, filepath.Join(d.dialogDir(cfg), "dialog-probe.sock"))
	st.Checked = time.Now()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return st, false // shutting down: nothing was learnt
	}
	if err != nil {
		st.State, st.Cause = control.SocketFailing, err.Error()
		var pe *dialog.ProbeError
		if errors.As(err, &pe) {
			st.Cause = pe.Cause
		}
		fix := fmt.Sprintf("set %s socket_path to the proxy's management socket", section)
		switch {
		case strings.Contains(st.Cause, "does not know"):
			fix = "use the [Kamailio] or [OpenSIPS] section that matches the proxy on this host"
		case strings.HasPrefix(st.Cause, "permission denied"):
			fix = fmt.Sprintf("let callcontrold's user write to %s (its group or mode), or set %s socket_path", p.SocketPath, section)
		case strings.HasPrefix(st.Cause, "no answer"):
			fix = fmt.Sprintf("check that the proxy may write to %s, and that %s socket_path is its management socket", d.dialogDir(cfg), section)
		}
		if loud {
			d.log.Warn("proxy management socket check failed: calls cannot be cut until it answers", "socket", p.SocketPath,
				"proxy", flavor.String(), "cause", st.Cause, "fix", fix)
		}
	} else {
		st.Version = version
		d.log.Info("proxy management socket answers", "socket", p.SocketPath, "proxy", flavor.String(), "version", version)
	}
	return st, true
}

func (d *Daemon) checkEngines(ctx context.Context) {
	if d.engines.pool == nil {
		return // warned about when the configuration was read
	}
	for _, st := range d.engines.pool.Check(ctx) {
		if st.State == rating.StateUnreachable {
			d.log.Warn("rating engine check failed: prepaid calls sent to it will be refused until it answers", "engine", st.Address,
				"cause", st.Cause, "fix", "check that CDRTool's rating engine runs there, or set [CDRTool] address")
			continue
		}
		d.log.Info("rating engine reachable", "engine", st.Address)
	}
}

// dialogDir is where the daemon's dialog sockets live.
func (d *Daemon) dialogDir(cfg *config.Config) string {
	if d.opts.RuntimeDir != "" {
		return d.opts.RuntimeDir
	}
	return filepath.Dir(cfg.CallControl.Socket)
}

// startChecks runs the checks in the background, owned by the daemon; a
// management socket that does not answer is checked again until it does.
func (d *Daemon) startChecks(ctx context.Context) {
	d.checks.mu.Lock()
	d.checks.gen++
	gen := d.checks.gen
	d.checks.mu.Unlock()
	d.wg.Add(1)
	d.checks.running.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.checks.running.Add(-1)
		if !d.check(ctx) {
			d.recheck(ctx, gen)
		}
	}()
}

// checkStats is the checks' part of stats.
func (d *Daemon) checkStats(st *control.Stats) {
	d.checks.mu.Lock()
	mgmt, source := d.checks.mgmt, d.checks.source
	d.checks.mu.Unlock()
	if mgmt.State == "" {
		d.mu.Lock()
		p := d.cfg.Proxy
		d.mu.Unlock()
		mgmt = control.ManagementSocketStatus{Path: p.SocketPath, Proxy: string(p.Kind), State: control.SocketUnchecked}
	}
	st.ManagementSocket = &mgmt
	st.EngineSource = source
	if d.engines.pool != nil {
		for _, e := range d.engines.pool.States() {
			st.Engines = append(st.Engines, control.EngineStatus{Address: e.Address, State: e.State, Cause: e.Cause})
		}
	}
	st.PrepaidRefused = d.sessions.PrepaidRefused()
}
