package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// saveSessions writes n answered sessions into a state directory, as a
// daemon that held them would have left it.
func saveSessions(state string, n int) {
	l, _, err := store.Open(state, store.Options{NoSync: true}, quiet)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	for i := 0; i < n; i++ {
		s := &session.Session{CallID: fmt.Sprintf("%08x-restart@10.0.0.1", i), Party: fmt.Sprintf("sip:user%d@example.com", i),
			RURI: "sip:0031650222333@example.com", Diverter: "None", SourceIP: "10.0.0.1", FromTag: "tag", Token: "None",
			Application: "audio", HasDialog: true, Limit: 3600, Cap: session.NoLimit,
			Created: now, Answered: now, EndAt: now.Add(time.Hour)}
		l.Apply(store.Put("s/"+s.CallID, s.Marshal()))
	}
	if err := l.Close(); err != nil {
		panic(err)
	}
}

// benchListing starts the daemon binary holding n sessions, has listers
// clients ask "debug show: sessions" in a loop (each giving up after the
// proxy's 500 ms and reconnecting, as an impatient script would), and
// measures meanwhile how long the proxy's own requests (init, start, stop
// on one connection, one at a time) wait for their answers. Then the
// listers stop, and the time until the next answer shows whether the
// daemon works off requests of clients that went away.
func benchListing(bin string, n, listers int, dur time.Duration) {
	fmt.Printf("\n== listing: %d sessions, %d clients listing them in a loop, proxy request latency, %s\n", n, listers, dur)
	if _, err := os.Stat(bin); err != nil {
		fmt.Println("skipped: build the daemon first (make build):", err)
		return
	}
	dir, sock, cmd := savedDaemon(bin, "listing", n, "sync = no\n")
	defer os.RemoveAll(dir)
	cmd.Env = append(os.Environ(), serverEnv...)
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	waitSocket(sock)

	proxyLatencies := func(d time.Duration) []time.Duration {
		c, err := net.Dial("unix", sock)
		if err != nil {
			panic(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var lat []time.Duration
		for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
			id := fmt.Sprintf("%d-listing@bench", i)
			for _, req := range [...]string{
				"init\r\nruri: sip:0031650222333@example.com\r\ndiverter: None\r\nsourceip: 10.0.0.1\r\ncallid: " + id +
					"\r\nfrom: <sip:bob@example.com>;tag=a73\r\nfromtag: a73\r\nprepaid: false\r\ncall_limit: 0\r\ncall_token: None\r\n\r\n",
				"start\r\ncallid: " + id + "\r\ndialogid: 1079:6296\r\n\r\n",
				"stop\r\ncallid: " + id + "\r\n\r\n",
			} {
				t0 := time.Now()
				io.WriteString(c, req)
				if _, err := r.ReadString('\n'); err != nil {
					panic(err)
				}
				lat = append(lat, time.Since(t0))
			}
			time.Sleep(time.Millisecond) // a proxy's pace, not a flood
		}
		return lat
	}
	report := func(what string, lat []time.Duration) {
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(10 * time.Microsecond) }
		fmt.Printf("%-34s %6d requests: p50 %v, p99 %v, max %v\n", what, len(lat), q(0.5), q(0.99), lat[len(lat)-1].Round(10*time.Microsecond))
	}
	// The socket listens before the saved sessions are restored: wait
	// for a first answer, so the start is not counted as latency.
	t0 := time.Now()
	proxyLatencies(time.Nanosecond)
	fmt.Printf("first answer after the start: %v\n", time.Since(t0).Round(time.Millisecond))
	report("proxy requests, nobody listing:", proxyLatencies(dur/2))

	var stop atomic.Bool
	var lists, abandoned atomic.Int64
	var lines atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < listers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c, err := net.Dial("unix", sock)
				if err != nil {
					panic(err)
				}
				// Read in big pieces, counting lines cheaply: the
				// listers must not take the CPU the measure needs.
				buf := make([]byte, 1<<20)
				for !stop.Load() {
					io.WriteString(c, "debug\r\nshow: sessions\r\n\r\n")
					c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					got, tail := 0, []byte(nil)
					var err error
					for {
						var k int
						if k, err = c.Read(buf); err != nil {
							break
						}
						got += bytes.Count(buf[:k], []byte("\n"))
						tail = append(tail, buf[max(0, k-4):k]...)
						tail = tail[max(0, len(tail)-4):]
						if string(tail) == "\r\n\r\n" {
							break
						}
					}
					if err != nil {
						abandoned.Add(1) // gave up, as the proxy would: hang up
						break
					}
					lists.Add(1)
					lines.Store(int64(got - 1))
				}
				c.Close()
			}
		}()
	}
	report(fmt.Sprintf("proxy requests, %d listing:", listers), proxyLatencies(dur))
	stop.Store(true)
	wg.Wait()
	t0 = time.Now()
	proxyLatencies(time.Nanosecond)
	fmt.Printf("listings answered %d (last %d lines), abandoned after 500 ms %d; first answer after the listers left: %v\n",
		lists.Load(), lines.Load(), abandoned.Load(), time.Since(t0).Round(10*time.Microsecond))
	if ps := processStatus(cmd.Process.Pid); ps != "" {
		fmt.Println(strings.TrimSpace(ps))
	}
}

// processStatus is the daemon's peak memory, from /proc.
func processStatus(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return "daemon peak RSS: " + strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return ""
}
