package control_test

import (
	"errors"
	"io"
	"net"
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
