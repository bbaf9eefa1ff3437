package e2e

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeDaemon speaks the daemon's side of the proxy protocol in the
// simplest way: it answers every init with InitReply, every start and stop
// with Ok, and ends a started dialog through Kamailio's JSON-RPC after
// EndAfter. It records every request, so tests can check what a real
// Kamailio sends, independently of the real daemon.
type FakeDaemon struct {
	Socket    string
	InitReply string        // e.g. "Limited", "No limit", "No credit"
	EndAfter  time.Duration // 0: never end dialogs
	RPCSocket string        // where dlg.end_dlg goes

	t    testing.TB
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	reqs []FakeRequest
	live map[string]bool // Call-IDs between init and stop
	conn map[net.Conn]bool
	done chan struct{}
}

// FakeRequest is one request as received.
type FakeRequest struct {
	Command string
	Keys    []string // in order
	Values  map[string]string
	At      time.Time
}

// StartFakeDaemon listens on dir/socket until the end of the test.
func StartFakeDaemon(t testing.TB, dir string, f *FakeDaemon) *FakeDaemon {
	t.Helper()
	f.t = t
	f.Socket = filepath.Join(dir, "socket")
	f.live = map[string]bool{}
	f.conn = map[net.Conn]bool{}
	f.done = make(chan struct{})
	ln, err := net.Listen("unix", f.Socket)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(f.Socket, 0o666)
	f.ln = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conn[c] = true
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		f.mu.Lock()
		for c := range f.conn {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *FakeDaemon) serve(c net.Conn) {
	defer func() {
		f.mu.Lock()
		delete(f.conn, c)
		f.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		req := FakeRequest{Values: map[string]string{}}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			if req.Command == "" {
				req.Command = line
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			req.Keys = append(req.Keys, k)
			req.Values[k] = strings.TrimSpace(v)
		}
		req.At = time.Now()
		if _, err := c.Write([]byte(f.handle(req))); err != nil {
			return
		}
	}
}

func (f *FakeDaemon) handle(req FakeRequest) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	id := req.Values["callid"]
	switch req.Command {
	case "init":
		if f.InitReply == "Limited" {
			f.live[id] = true
		}
		return f.InitReply + "\r\n"
	case "start":
		if f.EndAfter > 0 {
			entry, hid, _ := strings.Cut(req.Values["dialogid"], ":")
			f.wg.Add(1)
			// Off the serving goroutine: Kamailio sends stop and waits for
			// its answer before it answers dlg.end_dlg.
			go func() {
				defer f.wg.Done()
				select {
				case <-time.After(f.EndAfter):
				case <-f.done:
					return
				}
				f.mu.Lock()
				live := f.live[id]
				f.mu.Unlock()
				if !live {
					return // stop came first: the call ended on its own
				}
				e, _ := strconv.Atoi(entry)
				h, _ := strconv.Atoi(hid)
				reply, err := rpcCall(f.RPCSocket, map[string]any{"jsonrpc": "2.0", "method": "dlg.end_dlg", "params": []int{e, h}, "id": 1}, 5*time.Second)
				f.t.Logf("fake daemon: dlg.end_dlg %s:%s -> %s %v", entry, hid, reply, err)
			}()
		}
		return "Ok\r\n"
	case "stop":
		delete(f.live, id)
		return "Ok\r\n"
	case "debug":
		var b strings.Builder
		for id := range f.live {
			b.WriteString("Call id " + id + " of caller to callee: in-progress\r\n")
		}
		return b.String() + "\r\n"
	}
	return "Error\r\n"
}

// Requests returns the requests received so far.
func (f *FakeDaemon) Requests() []FakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FakeRequest(nil), f.reqs...)
}
