package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// benchDaemonMemory measures the daemon binary's own memory, in its
// default configuration, holding n answered calls: set up through the
// proxy socket (init and start, 32 connections), then under proxy traffic
// (init/start/stop cycles on 8 connections for dur, the garbage a running
// daemon makes), then after a restart from its state directory with the
// same traffic. It prints RSS and the peak RSS at each step: what an
// operator's top shows, where the memory benchmark counts the table alone.
func benchDaemonMemory(bin string, n int, dur time.Duration) {
	fmt.Printf("\n== daemon memory: the daemon binary, default config, %d answered calls set up through the proxy socket\n", n)
	if _, err := os.Stat(bin); err != nil {
		fmt.Println("skipped: build the daemon first (make build):", err)
		return
	}
	dir, _ := os.MkdirTemp("", "ccbench-daemonmem")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "socket")
	os.WriteFile(filepath.Join(dir, "config.ini"), []byte(fmt.Sprintf(
		"[CallControl]\nsocket = %s\nlimit = 36000\nstate_dir = %s/state\ngroup = nogroup\n[Kamailio]\nsocket_path = %s/kam.sock\n",
		sock, dir, dir)), 0o644)
	start := func() *exec.Cmd {
		cmd := daemonCmd(bin, dir)
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		return cmd
	}
	report := func(pid int, what string) {
		fmt.Printf("%-58s RSS %s, peak %s\n", what+":", procField(pid, "VmRSS:"), procField(pid, "VmHWM:"))
	}

	cmd := start()
	waitSessions(filepath.Join(dir, "control"), 0)
	t0 := time.Now()
	setUp(sock, n, 32)
	fmt.Printf("set up %d calls in %v\n", n, time.Since(t0).Round(time.Second))
	report(cmd.Process.Pid, fmt.Sprintf("%d calls set up", n))
	r := load(sock, 8, dur, false)
	report(cmd.Process.Pid, fmt.Sprintf("then %v of cycles on 8 connections (%.0f/s)", dur, r.rate))
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()

	t0 = time.Now()
	cmd = start()
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	if !waitSessions(filepath.Join(dir, "control"), n) {
		return
	}
	fmt.Printf("restarted with %d calls in %v\n", n, time.Since(t0).Round(10*time.Millisecond))
	report(cmd.Process.Pid, "after the restart")
	r = load(sock, 8, dur, false)
	report(cmd.Process.Pid, fmt.Sprintf("then %v of cycles on 8 connections (%.0f/s)", dur, r.rate))
	fmt.Println("target: under 1 GiB (1048576 kB)")
}

// waitSessions waits until the daemon's control socket answers with n
// sessions; it says whether it did within 2 minutes.
func waitSessions(ctl string, n int) bool {
	for t0 := time.Now(); time.Since(t0) < 2*time.Minute; time.Sleep(50 * time.Millisecond) {
		if c, err := control.Dial(ctl, 5*time.Second); err == nil {
			st, err := c.Stats()
			c.Close()
			if err == nil && st.Sessions["in-progress"]+st.Sessions["pending"] == n {
				return true
			}
		}
	}
	fmt.Printf("the daemon did not answer with %d sessions within 2 minutes\n", n)
	return false
}

// setUp answers n calls (init and start) over conns connections, with
// Call-IDs, callers and destinations of a real platform's lengths.
func setUp(sock string, n, conns int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("unix", sock)
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			rd := bufio.NewReader(conn)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id := fmt.Sprintf("%08x-%04x-held@10.0.%d.%d", i, i&0xffff, i/250%250, i%250)
				for _, req := range [...]string{
					fmt.Sprintf("init\r\nruri: sip:0031650%06d@example.com\r\ndiverter: None\r\nsourceip: 10.0.0.1\r\ncallid: %s\r\n"+
						"from: \"User %d\" <sip:user%d@example.com>;tag=x%d\r\nfromtag: x%d\r\nprepaid: false\r\ncall_limit: 0\r\ncall_token: None\r\n\r\n",
						i%1000000, id, i, i%200000, i, i),
					"start\r\ncallid: " + id + "\r\ndialogid: " + fmt.Sprintf("%d:%d", i%4096, i) + "\r\n\r\n",
				} {
					io.WriteString(conn, req)
					if _, err := rd.ReadString('\n'); err != nil {
						panic(err)
					}
				}
			}
		}()
	}
	wg.Wait()
}
