package control_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// With control_read_group the socket is mode 0666: any local user may
// connect. A peer the daemon refuses must not keep one of the 32
// connection slots while it sends nothing (idleTimeout is 2 minutes):
// 32 idle refused connections would lock every operator out. The refusal
// is said at once and the connection closed.
func TestRefusedPeersHoldNoConnectionSlot(t *testing.T) {
	s := startServer(t, "", "", controltest.New(stats, sessionA))
	var refuse atomic.Bool
	refuse.Store(true)
	s.SetAuthorize(func(uid, gid uint32) error {
		if refuse.Load() {
			return errors.New("permission denied: not an operator")
		}
		return nil
	})
	var idle []net.Conn
	for range 40 {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// Each refused peer, sending nothing, hears why and is let go
	// (a daemon that waits for its request line keeps it for 2 minutes).
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("refused idle connection %d: no refusal and no hang-up (%v; read %q)", i, err, b)
		}
	}
	refuse.Store(false)
	c, err := control.Dial(s.Path(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(); err != nil {
		t.Fatalf("an operator after %d idle refused peers: %v", len(idle), err)
	}
}

// The project's scale is 1,000,000 sessions; a realistic session is about
// 400 bytes of JSON, so `callcontrol sessions` must read a ~400 MB reply.
// The client caps one reply line at 256 MiB (Dial) and fails ("token too
// long") from about 670,000 sessions. This serves the reply a daemon
// gives for 1,000,000 such sessions, streamed (as the daemon should
// stream it: it now builds the whole slice, its JSON and a copy).
func TestSessionsOfOneMillionCanBeListed(t *testing.T) {
	const n = 1_000_000
	path := filepath.Join(t.TempDir(), "control")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	now := time.Date(2026, 11, 30, 21, 7, 52, 762889729, time.UTC)
	one, err := json.Marshal(control.SessionInfo{CallID: "5f0c9b3e-1d2a-4c8e-9b7a-2e6f4d3c1a0b@203.0.113.45",
		Party: "sip:31208005100@example.com", Destination: "sip:0031650222333@example.com", State: "in-progress",
		DialogID: "1079:6296", FromTag: "as6f3e2b1c", SourceIP: "203.0.113.45", Engine: "10.0.0.5:9024", Prepaid: true,
		Created: now, Answered: now, Limit: 3600, Remaining: 1200})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		w := bufio.NewWriterSize(c, 1<<20)
		w.WriteString(`{"ok":true,"sessions":[`)
		for i := range n {
			if i > 0 {
				w.WriteByte(',')
			}
			w.Write(one)
		}
		w.WriteString("]}\n")
		w.Flush()
	}()
	c, err := control.Dial(path, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.Sessions("")
	if err != nil || len(list) != n {
		t.Fatalf("listing %d sessions of %d bytes of JSON each (%d MB): %d listed, %v", n, len(one), n*(len(one)+1)>>20, len(list), err)
	}
}
