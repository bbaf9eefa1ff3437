// Command callcontrol is the operators' tool for a running callcontrold: it
// lists, shows and terminates sessions, shows statistics and asks for a
// configuration reload, over the daemon's control socket.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	exitUsage       = 64 // EX_USAGE from sysexits.h
)

const defaultRuntimeDir = "/run/callcontrol"

type options struct {
	runtimeDir string
	socket     string
	json       bool
	timeout    time.Duration
}

func (o *options) socketPath() string {
	if o.socket != "" {
		return o.socket
	}
	return filepath.Join(o.runtimeDir, "control")
}

// addCommon registers the flags accepted both before and after the command.
// Registering a flag stores its default, so the defaults are o's current
// values: flags given before the command survive the second registration.
func addCommon(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.runtimeDir, "runtime-dir", o.runtimeDir, "the daemon's runtime `dir`ectory; the socket is DIR/control")
	fs.StringVar(&o.socket, "socket", o.socket, "control socket `path` (overrides --runtime-dir)")
	fs.BoolVar(&o.json, "json", o.json, "print JSON for scripts instead of text")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up on the daemon after this `duration`")
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
}

var commands = []command{
	{"sessions", "[USER-PREFIX]", "list sessions, of parties starting with USER-PREFIX if given", 0, 1, runSessions},
	{"session", "CALLID", "show one session in detail", 1, 1, runSession},
	{"terminate", "CALLID", "end a call now (BYE to both ends; prepaid: debit the real duration)", 1, 1, runTerminate},
	{"stats", "", "show the daemon's statistics", 0, 0, runStats},
	{"reload", "", "make the daemon re-read its configuration", 0, 0, runReload},
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, now: time.Now, loc: time.Local}))
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: callcontrol [OPTIONS] COMMAND [ARGS]\n\n")
	fmt.Fprintf(w, "Talk to a running callcontrold over its control socket.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-24s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nOptions:\n")
	printFlags(w, fs)
	fmt.Fprintf(w, "\nExit status: 0 ok, 1 call not found, 2 daemon unreachable or access refused,\n"+
		"3 the daemon reported an error, 64 usage error.\n"+
		"Run 'callcontrol COMMAND --help' for a command's help.\n")
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: callcontrol [OPTIONS] %s\n\n%s.\n\nOptions:\n",
		strings.TrimSpace(c.name+" "+c.args), strings.ToUpper(c.summary[:1])+c.summary[1:])
	printFlags(w, fs)
}

// printFlags lists flags GNU style (--name), as the man page does.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, use := flag.UnquoteUsage(f)
		left := "--" + f.Name
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
	o := options{runtimeDir: defaultRuntimeDir, timeout: 10 * time.Second}
	fs := flag.NewFlagSet("callcontrol", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addCommon(fs, &o)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout, fs)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "callcontrol: %v\n", err)
		fmt.Fprintf(e.stderr, "Run 'callcontrol --help' for usage.\n")
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintf(e.stdout, "callcontrol %s\n", version)
		return exitOK
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintf(e.stderr, "callcontrol: no command given\n\n")
		usage(e.stderr, fs)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c := findCommand(rest[1]); c != nil {
				cfs := flag.NewFlagSet(c.name, flag.ContinueOnError)
				addCommon(cfs, &o)
				commandUsage(e.stdout, c, cfs)
				return exitOK
			}
		}
		usage(e.stdout, fs)
		return exitOK
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "callcontrol: unknown command %q\nRun 'callcontrol --help' for usage.\n", name)
		return exitUsage
	}

	// The command's own flag set takes the common flags too, so
	// "callcontrol sessions --json" works as well as "callcontrol --json sessions".
	cfs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	addCommon(cfs, &o)
	if err := cfs.Parse(rest[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(e.stdout, c, cfs)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "callcontrol %s: %v\nRun 'callcontrol %s --help' for usage.\n", c.name, err, c.name)
		return exitUsage
	}
	cargs := cfs.Args()
	if len(cargs) < c.minArgs || len(cargs) > c.maxArgs {
		fmt.Fprintf(e.stderr, "callcontrol %s: wrong number of arguments\nUsage: callcontrol %s\n",
			c.name, strings.TrimSpace(c.name+" "+c.args))
		return exitUsage
	}
	for _, a := range cargs {
		if a == "" {
			fmt.Fprintf(e.stderr, "callcontrol %s: empty argument\n", c.name)
			return exitUsage
		}
	}

	path := o.socketPath()
	client, err := control.Dial(path, o.timeout)
	if err != nil {
		return report(e, path, err)
	}
	defer client.Close()
	return report(e, path, c.run(e, &o, client, cargs))
}

// report turns a command's error into a message and an exit status.
func report(e env, path string, err error) int {
	var re *control.RemoteError
	var untrusted *control.UntrustedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, control.ErrNotFound):
		fmt.Fprintf(e.stderr, "callcontrol: %v\n", err)
		return exitNotFound
	case errors.Is(err, control.ErrDenied):
		fmt.Fprintf(e.stderr, "callcontrol: callcontrold at %s refused access: %v\n"+
			"Run as root, as the daemon's user, or as a member of the group set by 'group' in the daemon's control configuration.\n",
			path, err)
		return exitUnreachable
	case errors.As(err, &re):
		fmt.Fprintf(e.stderr, "callcontrol: %v\n", err)
		return exitFailed
	case errors.As(err, &untrusted):
		fmt.Fprintf(e.stderr, "callcontrol: %v\n"+
			"Another user may have replaced the daemon's socket: check the owner and permissions of its directory.\n", err)
		return exitUnreachable
	default:
		// No connection, or it broke: the daemon is not there for us.
		var de *control.DialError
		if errors.As(err, &de) {
			err = de.Err
		}
		fmt.Fprintf(e.stderr, "callcontrol: cannot talk to callcontrold at %s: %v\n"+
			"Check that callcontrold is running (/etc/init.d/callcontrol status), that --runtime-dir or --socket\n"+
			"names the socket it listens on, and that you may use that socket (permissions of the socket and its directory).\n",
			path, err)
		return exitUnreachable
	}
}

func runSessions(e env, o *options, c *control.Client, args []string) error {
	prefix := ""
	if len(args) > 0 {
		prefix = args[0]
	}
	list, err := c.Sessions(prefix)
	if err != nil {
		return err
	}
	sortSessions(list)
	if o.json {
		return writeJSON(e.stdout, list)
	}
	return writeSessionsTable(e.stdout, list, e.loc)
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
	if err := c.Terminate(args[0]); err != nil {
		return err
	}
	if o.json {
		return writeJSON(e.stdout, map[string]any{"call_id": args[0], "terminated": true})
	}
	_, err := fmt.Fprintf(e.stdout, "Call %s terminated.\n", clean(args[0]))
	return err
}

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

func runReload(e env, o *options, c *control.Client, _ []string) error {
	if err := c.Reload(); err != nil {
		return err
	}
	if o.json {
		return writeJSON(e.stdout, map[string]any{"reloaded": true})
	}
	_, err := fmt.Fprintln(e.stdout, "Configuration reloaded.")
	return err
}
