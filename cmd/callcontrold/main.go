// Command callcontrold limits the duration of SIP calls beside a SIP proxy's
// call_control module. See README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/daemon"
)

// readyFD is the pipe a forked child reports on: "ok", or the error that
// stopped it.
const readyFD = 3

const childEnv = "CALLCONTROLD_FORKED=1"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("callcontrold", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	noFork := fs.Bool("no-fork", false, "run in the foreground and log to stderr (with journal priorities when JOURNAL_STREAM is set)")
	systemd := fs.Bool("systemd", false, "the original's spelling of --no-fork: foreground, log to the journal")
	configDir := fs.String("config-dir", config.DefaultDir, "read `DIR`/config.ini")
	runtimeDir := fs.String("runtime-dir", config.DefaultRuntimeDir, "sockets and pid file go in `DIR`")
	pidFile := fs.String("pid-file", "", "write the daemon's pid to `FILE`")
	debug := fs.Bool("debug", false, "log debug lines, the proxy's wire traffic among them")
	version := fs.Bool("version", false, "print the version and exit")
	checkConfig := fs.Bool("check-config", false, "check the configuration, print the settings that differ from the defaults, exit 0 if it is valid, 1 if not")
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: callcontrold [--no-fork|--systemd] [--config-dir DIR] [--runtime-dir DIR] [--pid-file FILE] [--debug]\n"+
			"       callcontrold --check-config [--config-dir DIR]\n\n"+
			"Limits the duration of SIP calls beside a proxy's call_control module.\n\nOptions:\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, use := flag.UnquoteUsage(f)
			left := "--" + f.Name
			if name != "" {
				left += " " + name
			}
			if f.DefValue != "" && f.DefValue != "false" {
				use += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "  %-22s %s\n", left, use)
		})
		fmt.Fprintf(w, "\nExit status: 0 ok (or clean stop), 1 could not start or invalid configuration, 64 usage error.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "callcontrold: %v\nRun 'callcontrold --help' for usage.\n", err)
		return 64
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "callcontrold: unexpected argument %q\nRun 'callcontrold --help' for usage.\n", fs.Arg(0))
		return 64
	}
	if *version {
		fmt.Fprintln(stdout, "callcontrold", daemon.Version)
		return 0
	}
	opts := daemon.Options{ConfigDir: *configDir, RuntimeDir: *runtimeDir, Debug: *debug, PidFile: *pidFile,
		NotifySocket: os.Getenv("NOTIFY_SOCKET")}
	if *checkConfig {
		return daemon.WriteCheck(stdout, opts, daemon.CheckConfig(opts))
	}

	if *noFork || *systemd {
		log := daemon.NewStderrLogger(stderr, *debug)
		if daemon.JournalStream(os.Stderr, os.Getenv("JOURNAL_STREAM")) {
			log = daemon.NewJournalLogger(stderr, *debug)
		}
		err := daemon.Run(opts, log.Logger)
		log.Close()
		if err != nil {
			fmt.Fprintln(stderr, "callcontrold:", err)
			return 1
		}
		return 0
	}
	if os.Getenv("CALLCONTROLD_FORKED") == "1" {
		return runForked(opts, *debug)
	}
	return forkAndWait(stderr)
}

// forkAndWait starts the daemon detached in its own session and returns
// once it is serving, or with its error: init scripts get a real status.
func forkAndWait(stderr io.Writer) int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(stderr, "callcontrold:", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "callcontrold:", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv)
	cmd.ExtraFiles = []*os.File{w} // fd 3
	// The daemon's stderr is ours: its lines go there while syslog is
	// unavailable (runForked).
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "callcontrold:", err)
		return 1
	}
	w.Close()
	msg, _ := io.ReadAll(r)
	if string(msg) == "ok" {
		return 0
	}
	if len(msg) == 0 {
		msg = []byte("the daemon exited before it was ready; see syslog")
	}
	fmt.Fprintln(stderr, "callcontrold:", string(msg))
	return 1
}

func runForked(opts daemon.Options, debug bool) int {
	ready := os.NewFile(readyFD, "ready")
	// Lines go to the inherited stderr while syslog is unavailable, through
	// a copy of fd 2: Go's runtime kills a program whose write to fd 1 or 2
	// hits a closed pipe, and a daemon must outlive the shell that started
	// it. Other fds just get EPIPE, which the logger ignores.
	var fallback io.Writer = io.Discard
	if fd, err := syscall.Dup(2); err == nil {
		syscall.CloseOnExec(fd)
		fallback = os.NewFile(uintptr(fd), "stderr")
	}
	log := daemon.NewSyslogLogger(debug, fallback)
	if devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for _, fd := range []int{0, 1, 2} {
			syscall.Dup2(int(devnull.Fd()), fd)
		}
	}
	started := false
	opts.Ready = func() {
		started = true
		fmt.Fprint(ready, "ok")
		ready.Close()
	}
	defer log.Close()
	if err := daemon.Run(opts, log.Logger); err != nil {
		if started { // the stop could not save everything (already logged)
			log.Error("callcontrold stopped with an error", "err", err)
			return 1
		}
		log.Error("callcontrold did not start", "err", err)
		fmt.Fprint(ready, err)
		return 1
	}
	return 0
}
