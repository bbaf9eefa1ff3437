package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// benchControlListing starts the daemon binary holding n saved sessions
// and lists them all over the control socket with the CLI (cli, table and
// --json, output to /dev/null): the daemon's peak RSS during the listings
// (its peak is reset after the restore, whose own peak is not the
// listing's) and each CLI run's peak RSS and time. The sessions reply is
// streamed, so neither grows with n beyond the table itself.
func benchControlListing(bin, cli string, n int) {
	fmt.Printf("\n== control listing: %d sessions listed by %s sessions, daemon and CLI peak memory\n", n, cli)
	for _, b := range []string{bin, cli} {
		if _, err := os.Stat(b); err != nil {
			fmt.Println("skipped: build the daemon and the CLI first (make build):", err)
			return
		}
	}
	dir, _, cmd := savedDaemon(bin, "ctllist", n, "sync = no\n")
	defer os.RemoveAll(dir)
	ctl := filepath.Join(dir, "control")
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	if !waitSessions(ctl, n) {
		return
	}
	pid := cmd.Process.Pid
	fmt.Printf("daemon RSS before listing: %s\n", procField(pid, "VmRSS:"))
	// "5" resets the peak RSS (VmHWM) to the current RSS.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		fmt.Println("cannot reset the daemon's peak RSS:", err)
	}
	for _, args := range [][]string{{"sessions"}, {"--json", "sessions"}} {
		null, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		c := exec.Command(cli, append([]string{"--socket", ctl, "--timeout", "60s"}, args...)...)
		c.Stdout, c.Stderr = null, os.Stderr
		t0 := time.Now()
		err := c.Run()
		null.Close()
		took := time.Since(t0)
		if err != nil {
			fmt.Printf("callcontrol %s: %v after %v; daemon peak RSS since the listings began: %s\n",
				strings.Join(args, " "), err, took.Round(10*time.Millisecond), procField(pid, "VmHWM:"))
			continue
		}
		ru, _ := c.ProcessState.SysUsage().(*syscall.Rusage)
		fmt.Printf("callcontrol %-16s %v, CLI peak RSS %d MiB; daemon peak RSS since the listings began: %s\n",
			strings.Join(args, " ")+":", took.Round(10*time.Millisecond), ru.Maxrss>>10, procField(pid, "VmHWM:"))
	}
}

// procField is one field of /proc/PID/status.
func procField(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			return strings.TrimSpace(strings.TrimPrefix(l, field))
		}
	}
	return "?"
}
