// Command callcontrold limits the duration of SIP calls beside a SIP proxy's
// call_control module. See README.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/callcontrol/callcontrol/internal/daemon"
)

// readyFD is the pipe a forked child reports on: "ok", or the error that
// stopped it.
const readyFD = 3

const childEnv = "CALLCONTROLD_FORKED=1"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("callcontrold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noFork := fs.Bool("no-fork", false, "run in the foreground and log to stderr")
	configDir := fs.String("config-dir", "/etc/callcontrol", "read `DIR`/config.ini")
	runtimeDir := fs.String("runtime-dir", "/run/callcontrol", "sockets and pid file go in `DIR`")
	pidFile := fs.String("pid-file", "", "write the daemon's pid to `FILE`")
	debug := fs.Bool("debug", false, "log debug lines, the proxy's wire traffic among them")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: callcontrold [--no-fork] [--config-dir DIR] [--runtime-dir DIR] [--pid-file FILE] [--debug]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 64
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 64
	}
	if *version {
		fmt.Fprintln(stderr, "callcontrold", daemon.Version)
		return 0
	}
	opts := daemon.Options{ConfigDir: *configDir, RuntimeDir: *runtimeDir, Debug: *debug, PidFile: *pidFile}

	if *noFork {
		log := daemon.NewStderrLogger(stderr, *debug)
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
	log, err := daemon.NewSyslogLogger(debug)
	if err != nil {
		fmt.Fprint(ready, "cannot open syslog: ", err)
		return 1
	}
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
