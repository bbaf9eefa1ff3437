// Command callcontrol is the operators' tool for a running callcontrold: it
// lists, shows and terminates sessions, shows statistics and asks for a
// configuration reload, over the daemon's control socket.
package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/callcontrol/callcontrol/internal/config"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses, documented in callcontrol(1) and docs/operators.md.
const (
	exitOK          = 0
	exitNotFound    = 1
	exitUnreachable = 2
	exitFailed      = 3
	exitPartly      = 4  // reload applied, except options that need a restart; reroute moved some in memory only
	exitUsage       = 64 // EX_USAGE from sysexits.h
)

const defaultRuntimeDir = "/run/callcontrol"

type options struct {
	runtimeDir string // "" until --runtime-dir: defaultRuntimeDir
	configDir  string // --config-dir: where config.ini names control_socket
	socket     string
	json       bool
	timeout    time.Duration
	state      string // sessions --state
	yes        bool   // debits drop --yes
}

// socketPath is --socket; else config.ini's control_socket (from
// --config-dir, or from the default config file unless --runtime-dir is
// given), so reloads by the init script or systemd reach a daemon whose
// control_socket is set; else the runtime directory's.
func (o *options) socketPath() string {
	if o.socket != "" {
		return o.socket
	}
	runtimeDir := o.runtimeDir
	if runtimeDir == "" {
		runtimeDir = defaultRuntimeDir
	}
	path := ""
	switch {
	case o.configDir != "":
		path = filepath.Join(o.configDir, "config.ini")
	case o.runtimeDir == "":
		path = config.DefaultPath
	}
	if path != "" {
		// Unreadable or refused: the daemon's own default is the best guess.
		if cfg, _, err := config.LoadFile(path, runtimeDir, true); err == nil {
			return cfg.CallControl.ControlSocket
		}
	}
	return filepath.Join(runtimeDir, "control")
}

// addCommon registers the flags accepted both before and after the command.
// Registering a flag stores its default, so the defaults are o's current
// values: flags given before the command survive the second registration.
func addCommon(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.runtimeDir, "runtime-dir", o.runtimeDir, "the daemon's runtime `dir`ectory; the socket is DIR/control (default "+defaultRuntimeDir+")")
	fs.StringVar(&o.configDir, "config-dir", o.configDir, "read control_socket from `dir`/config.ini (default: "+config.DefaultPath+" unless --runtime-dir is given)")
	fs.StringVar(&o.socket, "socket", o.socket, "control socket `path` (overrides --runtime-dir)")
	fs.BoolVar(&o.json, "json", o.json, "print JSON for scripts instead of text (errors too)")
	fs.BoolVar(&o.json, "j", o.json, "short for --json")
	fs.Var((*secondsFlag)(&o.timeout), "timeout", "give up on the daemon after this long: seconds (5, 0.5) or with a unit (500ms, 5s, 1m)")
}

// secondsFlag is a duration that also takes a bare number of seconds, and
// says which forms it takes when it gets something else.
type secondsFlag time.Duration

func (f *secondsFlag) String() string { return time.Duration(*f).String() }

func (f *secondsFlag) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
		*f = secondsFlag(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a duration: give seconds (5, 0.5) or a number with a unit (500ms, 5s, 1m)", v)
	}
	*f = secondsFlag(d)
	return nil
}

type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
	loc            *time.Location
}

type command struct {
	name    string
	args    string // usage synopsis of the arguments
	summary string
	minArgs int
	maxArgs int
	run     func(e env, o *options, c *control.Client, args []string) error
	aliases []string                      // the original's names (list, show)
	flags   func(*flag.FlagSet, *options) // the command's own flags
}

var commands = []command{
	{name: "sessions", args: "[USER-PREFIX]", summary: "list sessions, of parties starting with USER-PREFIX if given",
		maxArgs: 1, run: runSessions, aliases: []string{"list"}, flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.state, "state", o.state, "only sessions in this `state`: pending or in-progress")
		}},
	{name: "session", args: "CALLID", summary: "show one session in detail", minArgs: 1, maxArgs: 1, run: runSession,
		aliases: []string{"show"}},
	{name: "terminate", args: "CALLID", summary: "end a call now (BYE to both ends; prepaid: debit the real duration)",
		minArgs: 1, maxArgs: 1, run: runTerminate},
	{name: "parties", args: "[USER-PREFIX]", summary: "count calls per billing party", maxArgs: 1, run: runParties},
	{name: "stats", summary: "show the daemon's statistics", run: runStats},
	{name: "debits", args: "[retry | reroute ENGINE | drop CALLID --yes]",
		summary: "list the debits owed to rating engines; retry them now, send those owed to ENGINE to each party's current engine, or drop a call's debit",
		maxArgs: 2, run: runDebits, flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.yes, "yes", o.yes, "confirm debits drop: the money is never collected")
		}},
	{name: "reload", summary: "make the daemon re-read its configuration", run: runReload},
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name || slices.Contains(commands[i].aliases, name) {
			return &commands[i]
		}
	}
	return nil
}

// commandFlags is the flag set of c: the common flags and its own.
func commandFlags(c *command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addCommon(fs, o)
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}

func main() {
	os.Exit(run(os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, now: time.Now, loc: time.Local}))
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: callcontrol [OPTIONS] COMMAND [ARGS]\n\n")
	fmt.Fprintf(w, "Talk to a running callcontrold over its control socket.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "  (list and show are the original Call Control's names for sessions and session.)\n")
	fmt.Fprintf(w, "\nOptions:\n")
	printFlags(w, fs)
	fmt.Fprintf(w, "\nExit status: 0 ok, 1 call or debit not found, 2 daemon unreachable or access refused,\n"+
		"3 the daemon reported an error (e.g. reload refused) or the proxy has not confirmed a terminate yet,\n"+
		"4 reload applied except options that need a restart (or debits reroute moved some in memory only),\n"+
		"64 usage error.\n"+
		"Run 'callcontrol COMMAND --help' for a command's help.\n")
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: callcontrol [OPTIONS] %s\n\n%s.\n\nOptions:\n",
		strings.TrimSpace(c.name+" "+c.args), strings.ToUpper(c.summary[:1])+c.summary[1:])
	printFlags(w, fs)
}

// printFlags lists flags GNU style (--name), as the man page does; a
// one-letter flag is shown beside the long one it is short for.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "j" {
			return
		}
		name, use := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if f.Name == "json" {
			left = "-j, --json"
		}
		if name == "value" { // --timeout: its help says the forms
			name = "DURATION"
		}
		if name != "" {
			left += " " + strings.ToUpper(name)
		}
		if f.DefValue != "" && f.DefValue != "false" {
			use += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %-24s %s\n", left, use)
	})
}

func run(args []string, e env) int {
	o := options{timeout: 10 * time.Second}
	fs := flag.NewFlagSet("callcontrol", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addCommon(fs, &o)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout, fs)
			return exitOK
		}
		return usageError(e, &o, err.Error(), "Run 'callcontrol --help' for usage.")
	}
	if *showVersion {
		fmt.Fprintf(e.stdout, "callcontrol %s\n", version)
		return exitOK
	}
	rest := fs.Args()
	if len(rest) == 0 {
		if o.json {
			return usageError(e, &o, "no command given", "")
		}
		fmt.Fprintf(e.stderr, "callcontrol: no command given\n\n")
		usage(e.stderr, fs)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c := findCommand(rest[1]); c != nil {
				commandUsage(e.stdout, c, commandFlags(c, &o))
				return exitOK
			}
		}
		usage(e.stdout, fs)
		return exitOK
	}
	c := findCommand(name)
	if c == nil {
		return usageError(e, &o, fmt.Sprintf("unknown command %q", name), "Run 'callcontrol --help' for usage.")
	}

	// The command's own flag set takes the common flags too, so
	// "callcontrol sessions --json" works as well as "callcontrol --json sessions".
	cfs := commandFlags(c, &o)
	cargs, err := parseInterspersed(cfs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(e.stdout, c, cfs)
			return exitOK
		}
		return usageError(e, &o, fmt.Sprintf("%s: %v", c.name, err), fmt.Sprintf("Run 'callcontrol %s --help' for usage.", c.name))
	}
	if len(cargs) < c.minArgs || len(cargs) > c.maxArgs {
		return usageError(e, &o, c.name+": wrong number of arguments", "Usage: callcontrol "+strings.TrimSpace(c.name+" "+c.args))
	}
	for _, a := range cargs {
		if a == "" {
			return usageError(e, &o, c.name+": empty argument", "")
		}
	}
	if c.name == "debits" {
		if msg := checkDebitsArgs(cargs, o.yes); msg != "" {
			return usageError(e, &o, "debits: "+msg, "Usage: callcontrol debits "+c.args)
		}
	}
	if c.name == "sessions" && o.state != "" && o.state != "pending" && o.state != "in-progress" {
		return usageError(e, &o, fmt.Sprintf("sessions: --state %q: use pending or in-progress", o.state), "")
	}

	path := o.socketPath()
	client, err := control.Dial(path, o.timeout)
	if err != nil {
		return report(e, &o, path, err)
	}
	defer client.Close()
	return report(e, &o, path, c.run(e, &o, client, cargs))
}

// usageError reports a usage mistake: on stderr with a hint, or as a JSON
// error on stdout in --json mode; exit status 64 either way.
func usageError(e env, o *options, msg, hint string) int {
	if o.json {
		writeJSON(e.stdout, jsonError{Error: msg, Code: "usage"})
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "callcontrol: %s\n", msg)
	if hint != "" {
		fmt.Fprintln(e.stderr, hint)
	}
	return exitUsage
}

// jsonError is every error in --json mode, on stdout, so a script reads
// one JSON document whatever happened; the exit status is the text mode's.
type jsonError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// parseInterspersed parses flags anywhere among the arguments ("session
// ID --json" as well as "session --json ID"), as GNU tools do; after "--"
// everything is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(positional, tail...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// report turns a command's error into a message and an exit status; in
// --json mode the message is a JSON error on stdout (the reload that
// partly applied has already printed its JSON).
func report(e env, o *options, path string, err error) int {
	var re *control.RemoteError
	var partly errRestartNeeded
	var code, msg string
	status := exitFailed
	var untrusted *control.UntrustedError
	var output outputError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNotConfirmed):
		return exitFailed
	case errors.As(err, &output):
		// Not the daemon's fault: stdout is closed or full.
		fmt.Fprintf(e.stderr, "callcontrol: %v\n", err)
		return exitFailed
	case errors.As(err, &untrusted):
		fmt.Fprintf(e.stderr, "callcontrol: %v\n"+
			"Another user may have replaced the daemon's socket: check the owner and permissions of its directory.\n", err)
		return exitUnreachable
	case errors.As(err, new(errNotWritten)):
		fmt.Fprintf(e.stderr, "callcontrol: %v\n", err)
		return exitPartly
	case errors.As(err, &partly):
		if o.json {
			fmt.Fprintf(e.stderr, "callcontrol: %v\n", err)
			return exitPartly
		}
		code, msg, status = "restart_needed", err.Error(), exitPartly
	case errors.Is(err, control.ErrNotFound):
		code, msg, status = "not_found", err.Error(), exitNotFound
	case errors.Is(err, control.ErrDenied):
		code, status = "denied", exitUnreachable
		msg = fmt.Sprintf("callcontrold at %s refused access: %v\n"+
			"Run as root, as the daemon's user, or as a member of the daemon's [CallControl] control_group\n"+
			"(control_read_group: sessions, session, parties, stats and debits only).", path, err)
	case errors.As(err, &re):
		code, msg = "failed", err.Error()
	case errors.Is(err, syscall.EACCES):
		// The socket's mode (or its directory's) keeps the caller out:
		// the daemon may well be running, so say who may connect.
		code, status = "denied", exitUnreachable
		msg = fmt.Sprintf("cannot talk to callcontrold at %s: permission denied by the socket's mode or its directory's\n"+
			"Run as root, as the daemon's user, or as a member of the daemon's [CallControl] control_group\n"+
			"(control_read_group: sessions, session, parties, stats and debits only).", path)
	default:
		// No connection, or it broke: the daemon is not there for us.
		var de *control.DialError
		if errors.As(err, &de) {
			err = de.Err
		}
		code, status = "unreachable", exitUnreachable
		msg = fmt.Sprintf("cannot talk to callcontrold at %s: %v\n"+
			"Check that callcontrold is running (/etc/init.d/callcontrol status), that --runtime-dir or --socket\n"+
			"names the socket it listens on, and that you may use that socket (permissions of the socket and its directory).",
			path, err)
	}
	if o.json {
		writeJSON(e.stdout, jsonError{Error: strings.SplitN(msg, "\n", 2)[0], Code: code})
		return status
	}
	fmt.Fprintf(e.stderr, "callcontrol: %s\n", msg)
	return status
}

// runSessions prints the sessions as they are read (see sessionsBlock).
func runSessions(e env, o *options, c *control.Client, args []string) error {
	var out sessionsPrinter
	if o.json {
		out = newSessionsJSON(e.stdout)
	} else {
		out = newSessionsTable(e.stdout, e.loc)
	}
	if err := eachSession(o, c, args, out.add); err != nil {
		return err
	}
	return out.finish()
}

func runParties(e env, o *options, c *control.Client, args []string) error {
	by := partyCounter{}
	err := eachSession(o, c, args, func(s control.SessionInfo) error {
		by.add(s)
		return nil
	})
	if err != nil {
		return err
	}
	parties := by.sorted()
	if o.json {
		return writeJSON(e.stdout, parties)
	}
	return writePartiesTable(e.stdout, parties)
}

// checkDebitsArgs checks "debits [retry | reroute ENGINE | drop CALLID]".
func checkDebitsArgs(args []string, yes bool) string {
	if len(args) == 0 {
		return ""
	}
	switch args[0] {
	case "retry", "list":
		if len(args) != 1 {
			return args[0] + " takes no argument"
		}
	case "reroute":
		if len(args) != 2 {
			return "reroute needs the ENGINE whose debits move (host:port, as debits lists it)"
		}
	case "drop":
		if len(args) != 2 {
			return "drop needs the CALLID whose debit is dropped"
		}
		if !yes {
			return "drop forgets money owed for good: add --yes to confirm"
		}
	default:
		return fmt.Sprintf("unknown action %q", args[0])
	}
	return ""
}

func runDebits(e env, o *options, c *control.Client, args []string) error {
	if len(args) == 0 || args[0] == "list" {
		list, err := c.Debits()
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(e.stdout, list)
		}
		return writeDebitsTable(e.stdout, list, e.now(), e.loc)
	}
	var r control.DebitsResult
	var err error
	var text string
	var partly error // done, but not all of it durably
	switch args[0] {
	case "retry":
		r, err = c.DebitsRetry()
		text = fmt.Sprintf("Asked every engine to send its oldest owed debit now; %d owed.", r.Affected)
		if r.Affected == 0 {
			// No engine was asked anything (there may be none configured).
			text = "No debits owed: nothing to send."
		}
	case "reroute":
		r, err = c.DebitsReroute(args[1])
		text = fmt.Sprintf("%d debits owed to %s moved to their parties' current engines.", r.Affected, clean(args[1]))
		if r.InFlight > 0 {
			text += fmt.Sprintf(" %d being sent now stayed; run it again if they are still owed.", r.InFlight)
		}
		if r.Stayed > 0 {
			text += fmt.Sprintf(" %d stayed: %s is their parties' current engine.", r.Stayed, clean(args[1]))
		}
		if r.NotWritten > 0 {
			partly = errNotWritten{n: r.NotWritten, engine: clean(args[1]), cause: clean(r.WriteError)}
		}
	case "drop":
		r, err = c.DebitsDrop(args[1], o.yes)
		text = fmt.Sprintf("Dropped %d debits owed for call %s: they will not be collected.", r.Affected, clean(args[1]))
	}
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(e.stdout, map[string]any{"action": args[0], "affected": r.Affected, "in_flight": r.InFlight,
			"stayed": r.Stayed, "not_written": r.NotWritten}); err != nil {
			return err
		}
		return partly
	}
	if _, err = fmt.Fprintln(e.stdout, text); err != nil {
		return err
	}
	return partly
}

// errNotWritten is a reroute's "moved, but some only in memory": printed
// as it is, with exit status exitPartly.
type errNotWritten struct {
	n             int
	engine, cause string
}

func (e errNotWritten) Error() string {
	return fmt.Sprintf("%d more debits moved in memory only: their records could not be written to the state directory (%s). "+
		"They are sent to their new engines only once the state log writes them again; a restart before that leaves them owed to %s.",
		e.n, e.cause, e.engine)
}

func runSession(e env, o *options, c *control.Client, args []string) error {
	s, err := c.Session(args[0])
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(e.stdout, s)
	}
	return writeSession(e.stdout, s, e.now(), e.loc)
}

func runTerminate(e env, o *options, c *control.Client, args []string) error {
	ti, err := c.Terminate(args[0])
	if err != nil {
		return err
	}
	id := clean(args[0])
	if o.json {
		err = writeJSON(e.stdout, map[string]any{"call_id": args[0], "outcome": ti.Outcome, "detail": ti.Detail,
			"terminated": ti.Outcome == control.TerminateEnded || ti.Outcome == control.TerminateGone})
	} else {
		switch ti.Outcome {
		case control.TerminateEnded:
			_, err = fmt.Fprintf(e.stdout, "Call %s ended: the proxy confirmed and sends BYE (or CANCEL) to both ends.\n", id)
		case control.TerminateGone:
			_, err = fmt.Fprintf(e.stdout, "Call %s had already ended: %s.\n", id, clean(ti.Detail))
		case control.TerminateAtAnswer:
			_, err = fmt.Fprintf(e.stdout, "Call %s is still ringing: it will be ended the moment it is answered (the proxy cannot end it before).\n", id)
		default:
			_, err = fmt.Fprintf(e.stdout, "Call %s: asked the proxy to end it, not confirmed yet: %s.\n", id, clean(orDash(ti.Detail)))
		}
	}
	if err == nil && ti.Outcome == control.TerminatePending {
		return errNotConfirmed
	}
	return err
}

// errNotConfirmed: the end was asked, not (yet) done; the message is out.
var errNotConfirmed = errors.New("not confirmed")

func runStats(e env, o *options, c *control.Client, _ []string) error {
	st, err := c.Stats()
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(e.stdout, st)
	}
	return writeStats(e.stdout, st)
}

// errRestartNeeded is runReload's "applied, except these options": its
// message is printed as it is and the exit status is exitPartly.
type errRestartNeeded struct{ options []string }

func (e errRestartNeeded) Error() string {
	return fmt.Sprintf("configuration reloaded, except options that apply only at a restart: %s (restart callcontrold to apply them)",
		strings.Join(e.options, "; "))
}

func runReload(e env, o *options, c *control.Client, _ []string) error {
	restart, err := c.Reload()
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(e.stdout, map[string]any{"reloaded": true, "restart_needed": append([]string{}, restart...)}); err != nil {
			return err
		}
	} else if len(restart) == 0 {
		if _, err := fmt.Fprintln(e.stdout, "Configuration reloaded: every change applied."); err != nil {
			return err
		}
	}
	if len(restart) > 0 {
		return errRestartNeeded{restart}
	}
	return nil
}
