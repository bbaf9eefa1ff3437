// Package daemon builds callcontrold from its configuration and owns every
// long-lived part of it: the proxy socket, the session table, the rating
// engines, the debit spool, the dialog client, the control socket and the
// accounting checks. cmd/callcontrold only parses flags and calls Run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/gcpace"
	"github.com/callcontrol/callcontrol/internal/journal"
	"github.com/callcontrol/callcontrol/internal/metrics"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
)

// Version is set at build time (-ldflags "-X ...daemon.Version=...").
var Version = "dev"

// Options are the command line's.
type Options struct {
	ConfigDir  string
	RuntimeDir string
	Debug      bool
	PidFile    string
	// Ready, when set, is called once the proxy socket is being served
	// (the parent of a forked daemon waits for it).
	Ready func()

	host hostEnv // tests: the host's name and resolver (zero: the system's)
	// recheckEvery is how often a management socket that failed its check
	// is checked again until it answers (zero: recheckEvery).
	recheckEvery time.Duration
	// dialogTimeout is how long the dialog client waits for the proxy's
	// answer to a first end request (tests; zero: dialog.DefaultTimeout).
	dialogTimeout time.Duration
	// terminateWait is how long an operator's terminate waits for the
	// proxy's confirmation (tests; zero: terminateWait).
	terminateWait time.Duration
	// NotifySocket is systemd's $NOTIFY_SOCKET ("" = not under systemd's
	// Type=notify): READY, RELOADING and STOPPING go there.
	NotifySocket string
}

// Daemon is a running callcontrold.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	mu  sync.Mutex // guards cfg (reload)
	cfg *config.Config

	proxyLn  net.Listener
	proxySrv *proxy.Server
	dialogs  *dialog.Client
	sessions *session.Manager
	state    *journal.Journal
	engines  *engines
	control  *controlDoor
	acct     *accounting
	metrics  *metrics.Metrics
	web      *webDoor
	checks   checks

	wg     sync.WaitGroup
	ctx    context.Context // done at stop
	cancel context.CancelFunc

	stopErr  error       // what a stop could not save (state.Close)
	stopping atomic.Bool // Stop began: readiness says so, not why
	// wrotePid: this daemon wrote opts.PidFile, so its stop removes it. A
	// daemon that failed to start before writing it (a second one, refused
	// because the first serves the socket) must leave the first's alone.
	wrotePid bool
}

// ConfigPath is where the daemon reads its configuration.
func (o Options) ConfigPath() string { return filepath.Join(o.ConfigDir, "config.ini") }

// LoadConfig reads the configuration and logs its warnings.
func LoadConfig(opts Options, log *slog.Logger) (*config.Config, error) {
	cfg, warnings, err := config.Load(opts.ConfigPath(), opts.RuntimeDir)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// Start builds every part and starts serving. On error, whatever was
// started is stopped again.
func Start(opts Options, log *slog.Logger) (*Daemon, error) {
	cfg, err := LoadConfig(opts, log)
	if err != nil {
		return nil, err
	}
	source := applyDefaultEngine(cfg, opts.host, log, false)
	d := &Daemon{opts: opts, log: log, cfg: cfg, started: time.Now()}
	d.checks.source = source
	if err := d.start(); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) start() (err error) {
	opts, cfg, log := d.opts, d.cfg, d.log
	log.Info("callcontrold starting", "version", Version, "summary", cfg.Summary())
	if opts.RuntimeDir != "" {
		if err := os.MkdirAll(opts.RuntimeDir, 0o755); err != nil {
			return fmt.Errorf("runtime directory: %w", err)
		}
	}
	cc := cfg.CallControl
	ctx, cancel := context.WithCancel(context.Background())
	d.ctx, d.cancel = ctx, cancel
	// Before the restore: a big one is paced too (its records, decoded
	// and dropped, would otherwise let the heap double).
	d.wg.Add(1)
	go func() { defer d.wg.Done(); paceGC(ctx, log) }()

	// The socket comes first: a second daemon must fail before it touches
	// the first one's state.
	if d.proxyLn, err = listenProxySocket(cc, log); err != nil {
		return err
	}
	// Called only for requests made after the state is open below.
	onDialogEnd := func(t dialog.Target, o dialog.Outcome) { d.state.DialogEnded(t, o) }
	if d.dialogs, err = newDialogClient(cfg, opts.RuntimeDir, opts.dialogTimeout, onDialogEnd, log); err != nil {
		return err
	}
	d.metrics = metrics.New(Version, d.metricsState)
	d.engines = newEngines(cfg, log)
	d.engines.observe = d.metrics.Rating
	stOpts := stateOptions(cc)
	stOpts.OnSync = d.metrics.SyncObserver()
	if d.state, err = journal.Open(cc.StateDir, journal.Options{Store: stOpts, RefuseNotDurable: cc.RefuseNotDurable}, log); err != nil {
		return err
	}
	d.sessions = session.NewManager(limits(cfg), d.engines.rater(), d.dialogs, d.state, log)
	d.state.OpenDebits(d.engines, d.engines.debitOptions(), d.sessions.Debited)
	atAnswer := d.state.RestoredAtAnswer()
	sessions, asked := d.state.RestoredSessions()
	ringing := session.Ringing(sessions, atAnswer)
	d.state.ResendDialogEnds(d.dialogs, log)
	d.sessions.Restore(sessions)
	d.sessions.RestoreAtAnswer(atAnswer)
	d.sessions.ExpectMissedAnswers(ringing)
	d.sessions.ReleaseAsked(asked)
	// Debits owed to an engine the configuration no longer names move
	// now, beside the restored calls that keep theirs there (Pool.Route).
	d.engines.leaveRemovedEngines(d.state.Spool())
	// Only now: a debit's reply re-times the party's calls, restored above.
	d.state.DeliverDebits()

	d.proxySrv = proxy.NewServer(d.proxyLn, countingHandler{newProxyDoor(cfg, d.sessions, log), d.metrics.Proxy}, log, opts.Debug)
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.proxySrv.Serve() }()

	if d.control, err = startControl(d); err != nil {
		return err
	}
	d.startChecks(ctx)
	if len(ringing) > 0 {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.sessions.FindMissedAnswers(ctx, d.dialogs, ringing) }()
	}
	if len(sessions) >= 50_000 {
		// The memory the restore used on its way goes back to the system
		// now: the runtime would return it slowly, and the daemon would
		// look half as big again as its table for minutes.
		d.wg.Add(1)
		go func() { defer d.wg.Done(); debug.FreeOSMemory() }()
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.housekeeping(ctx, cc.CheckInterval) }()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.watchState(ctx) }()
	if d.acct, err = startAccounting(ctx, cfg, d.sessions, &d.wg, log); err != nil {
		return err
	}
	if d.web, err = startWeb(d); err != nil {
		return err
	}
	if opts.PidFile != "" {
		if err := os.WriteFile(opts.PidFile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		d.wrotePid = true
	}
	warnUnsafeDirs(log, unsafeDirsToCheck(d))
	warnReadableSecrets(log, cfg)
	log.Info("callcontrold ready", "socket", cc.Socket, "control", cc.ControlSocket)
	return nil
}

// paceGC keeps the heap near the table's size (internal/gcpace) until ctx
// ends.
func paceGC(ctx context.Context, log *slog.Logger) {
	if gcpace.OperatorTuned() {
		log.Info("GOGC or GOMEMLIMIT is set: the garbage collector's pace is left to it")
		return
	}
	gcpace.Run(ctx, gcpace.Runtime{}, gcpace.Default, 2*time.Second)
}

func limits(cfg *config.Config) session.Limits {
	cc := cfg.CallControl
	toSeconds := func(l config.Limit) int {
		if !l.Set {
			return session.NoLimit
		}
		return l.Seconds
	}
	return session.Limits{Limit: toSeconds(cc.Limit), PrepaidLimit: toSeconds(cc.PrepaidLimit),
		SetupTime: cc.SetupTime, StaleTimeout: cc.StaleTimeout, ProxyTimeout: cc.ProxyTimeout,
		RecheckInterval:  cfg.CDRTool.RecheckInterval,
		RefuseNotDurable: cc.RefuseNotDurable}
}

func newDialogClient(cfg *config.Config, runtimeDir string, timeout time.Duration, onDone func(dialog.Target, dialog.Outcome), log *slog.Logger) (*dialog.Client, error) {
	p := cfg.Proxy
	flavor := dialog.OpenSIPS
	if p.Kind == config.Kamailio {
		flavor = dialog.Kamailio
	}
	dir := runtimeDir
	if dir == "" {
		dir = filepath.Dir(cfg.CallControl.Socket)
	}
	return dialog.New(dialog.Options{Flavor: flavor, ProxySocket: p.SocketPath,
		LocalSocket: filepath.Join(dir, "dialog.sock"), OpenSIPSKey: openSIPSKey(p.DialogID), Timeout: timeout, OnDone: onDone}, log)
}

func openSIPSKey(m config.DialogIDMode) dialog.OpenSIPSKey {
	switch m {
	case config.DialogIDNumeric:
		return dialog.ByHexID
	case config.DialogIDPassthrough:
		return dialog.ByDecimalID
	}
	return dialog.ByCallID
}

// housekeeping drops calls never answered and stale calls, and compacts
// the state log now and then so a restart replays little.
func (d *Daemon) housekeeping(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.sessions.Housekeep()
			d.state.MaybeCompact(d.sessions)
			// A call on a removed engine that ended since: its debit is
			// queued there behind any that must stay (leaveRemovedEngines).
			d.engines.leaveRemovedEngines(d.state.Spool())
		}
	}
}

// Reload re-reads the configuration: new limits apply to new calls, engine
// addresses are re-resolved; nothing in progress is dropped. An invalid
// file is refused and the configuration in force stays. It returns the
// changed options that apply only at a restart.
func (d *Daemon) Reload() ([]string, error) {
	d.notify("RELOADING=1\nSTATUS=reloading the configuration")
	// The file must be there: a default config.ini that went missing
	// would otherwise reload as the defaults (limit None) in its place.
	cfg, warnings, err := config.LoadFile(d.opts.ConfigPath(), d.opts.RuntimeDir, false)
	for _, w := range warnings {
		d.log.Warn(w)
	}
	if err != nil {
		d.notify("READY=1\nSTATUS=reload refused: " + err.Error())
		d.log.Error("reload refused: the configuration in force stays", "err", err)
		return nil, err
	}
	// The HTTP listener first: a new address that cannot be bound refuses
	// the whole reload, and the old listener keeps serving.
	if err := d.web.reload(cfg.HTTP); err != nil {
		d.notify("READY=1\nSTATUS=reload refused: " + err.Error())
		d.log.Error("reload refused: the configuration in force stays", "err", err)
		return nil, err
	}
	d.mu.Lock()
	inForce := d.cfg.CDRTool.Enabled()
	d.mu.Unlock()
	source := applyDefaultEngine(cfg, d.opts.host, d.log, inForce)
	d.mu.Lock()
	old := d.cfg
	if old.CDRTool.Enabled() != cfg.CDRTool.Enabled() {
		source = "" // the engines in force stay (restartOnly)
	}
	changed := keepRestartOnly(old, cfg)
	d.cfg = cfg
	d.mu.Unlock()
	if source != "" {
		d.checks.mu.Lock()
		d.checks.source = source
		d.checks.mu.Unlock()
	}
	lim := limits(cfg)
	lim.RefuseNotDurable = d.state.RefuseNotDurable() // state_failure applies at restart, with sync
	d.sessions.SetLimits(lim)
	d.engines.reload(cfg)
	if sp := d.state.Spool(); sp != nil && !slices.Equal(old.CDRTool.Addresses, cfg.CDRTool.Addresses) {
		// Debits owed to a removed engine move to their party's engine at
		// their next try: now, not after their backoff, as the party's
		// calls are held on the removed engine until they do: every one
		// of them, not only each queue's head (leaveRemovedEngines).
		d.engines.leaveRemovedEngines(sp)
		sp.RetryNow()
	}
	for _, w := range changed {
		d.log.Warn("reload: this option changes only at restart", "option", w)
	}
	d.log.Info("configuration reloaded", "summary", cfg.Summary())
	if d.ctx != nil && d.ctx.Err() == nil {
		d.startChecks(d.ctx)
	}
	d.notify("READY=1\nSTATUS=serving")
	return changed, nil
}

// restartOnly are the options a reload cannot apply, in groups named as
// the reload's warning names them. Each keep puts back into cfg the values
// of old, the configuration in force, and says whether cfg had others:
// d.cfg must say what the daemon does (readiness, stats and the reload
// summary read it), and the next reload must still name a change that
// waits for a restart.
var restartOnly = []struct {
	name string
	keep func(old, cfg *config.Config) (changed bool)
}{
	{"[CallControl] socket/group/legacy_commands", func(old, cfg *config.Config) bool {
		o, n := &old.CallControl, &cfg.CallControl
		n.GroupDefault = o.GroupDefault // follows group
		return anyOf(keep(&n.Socket, o.Socket), keep(&n.Group, o.Group), keep(&n.LegacyCommands, o.LegacyCommands))
	}},
	{"[CallControl] state_dir/sync/sync_interval/state_failure", func(old, cfg *config.Config) bool {
		o, n := &old.CallControl, &cfg.CallControl
		return anyOf(keep(&n.StateDir, o.StateDir), keep(&n.Sync, o.Sync), keep(&n.SyncInterval, o.SyncInterval),
			keep(&n.RefuseNotDurable, o.RefuseNotDurable))
	}},
	{"[CallControl] control_socket/control_group/control_read_group", func(old, cfg *config.Config) bool {
		o, n := &old.CallControl, &cfg.CallControl
		return anyOf(keep(&n.ControlSocket, o.ControlSocket), keep(&n.ControlGroup, o.ControlGroup),
			keep(&n.ControlReadGroup, o.ControlReadGroup))
	}},
	{"[CallControl] check_interval", func(old, cfg *config.Config) bool {
		return keep(&cfg.CallControl.CheckInterval, old.CallControl.CheckInterval)
	}},
	{"[CDRTool] address (turning rating on or off)", func(old, cfg *config.Config) bool {
		if old.CDRTool.Enabled() == cfg.CDRTool.Enabled() {
			return false // the engines themselves reload
		}
		cfg.CDRTool.Addresses = old.CDRTool.Addresses
		return true
	}},
	{"[OpenSIPS]/[Kamailio]", func(old, cfg *config.Config) bool { return keep(&cfg.Proxy, old.Proxy) }},
	{"[RadiusDatabase]/[RadiusAccounting]", func(old, cfg *config.Config) bool {
		return anyOf(keep(&cfg.RadiusDatabase, old.RadiusDatabase), keep(&cfg.RadiusAccounting, old.RadiusAccounting))
	}},
}

// keepRestartOnly puts the restart-only options in force back into cfg
// and names the groups that had changed.
func keepRestartOnly(old, cfg *config.Config) []string {
	var changed []string
	for _, o := range restartOnly {
		if o.keep(old, cfg) {
			changed = append(changed, o.name)
		}
	}
	return changed
}

// keep sets *dst to inForce and says whether it was something else.
func keep[T comparable](dst *T, inForce T) bool {
	differed := *dst != inForce
	*dst = inForce
	return differed
}

// anyOf is a || that evaluates every operand (each keep must run).
func anyOf(bs ...bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// Stop shuts down cleanly: no new requests, timers stopped, a compact
// snapshot written, sockets removed.
func (d *Daemon) Stop() {
	d.stopping.Store(true)
	d.log.Info("callcontrold stopping")
	d.notify("STOPPING=1")
	d.stop()
	d.log.Info("callcontrold stopped")
}

func (d *Daemon) stop() {
	if d.proxySrv != nil {
		d.proxySrv.Close()
	} else if d.proxyLn != nil {
		d.proxyLn.Close()
	}
	if d.web != nil {
		d.web.close()
	}
	if d.control != nil {
		d.control.close()
	}
	if d.cancel != nil {
		d.cancel()
	}
	if d.acct != nil {
		d.acct.close()
	}
	d.wg.Wait()
	// The debit spool first: its replies re-time calls. Then the session
	// manager: from here on nothing changes the table or arms a timer.
	// The dialog client stops before the snapshot, which keeps every end
	// the proxy has not confirmed, for the next start.
	if d.state != nil {
		d.state.StopDebits()
	}
	if d.sessions != nil {
		d.sessions.Shutdown()
	}
	if d.dialogs != nil {
		d.dialogs.Close()
	}
	if d.state != nil {
		d.stopErr = d.state.Close(d.sessions)
	}
	if d.engines != nil {
		d.engines.close()
	}
	if d.wrotePid {
		os.Remove(d.opts.PidFile)
	}
}

// Run starts the daemon and serves until SIGTERM or SIGINT; SIGHUP reloads.
func Run(opts Options, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	d, err := Start(opts, log)
	if err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	d.notify("READY=1\nSTATUS=serving")
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			d.Reload()
			continue
		}
		log.Info("signal received", "signal", sig.String())
		break
	}
	d.Stop()
	return d.stopErr
}

// notify tells systemd, when it started the daemon (Type=notify).
func (d *Daemon) notify(state string) {
	if err := (sdNotify{d.opts.NotifySocket}).send(state); err != nil {
		d.log.Warn("cannot notify systemd", "socket", d.opts.NotifySocket, "err", err)
	}
}

// errNoRating is returned by parts that need an engine when none is set.
var errNoRating = errors.New("no rating engine configured")
