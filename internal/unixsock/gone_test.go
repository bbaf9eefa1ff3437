package unixsock

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// pair connects a client to a server over a Unix stream socket and returns
// both ends.
func pair(t *testing.T) (server, client *net.UnixConn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return sc.(*net.UnixConn), cc.(*net.UnixConn)
}

// A peer is gone when it closed its end, whatever it sent before; one
// that only stopped sending (socat after its request) or sent requests
// not read yet is still there to read the answer.
func TestPeerGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(c *net.UnixConn)
		// unread: the server wrote bytes the client never reads.
		unread bool
		want   bool
	}{
		{"connected", func(*net.UnixConn) {}, false, false},
		{"sent a request ahead", func(c *net.UnixConn) { c.Write([]byte("{\"cmd\":\"stats\"}\n")) }, false, false},
		{"shut down its sending side", func(c *net.UnixConn) { c.CloseWrite() }, false, false},
		{"sent ahead and shut down its sending side", func(c *net.UnixConn) {
			c.Write([]byte("{\"cmd\":\"stats\"}\n"))
			c.CloseWrite()
		}, false, false},
		{"closed", func(c *net.UnixConn) { c.Close() }, false, true},
		{"sent ahead and closed", func(c *net.UnixConn) { c.Write([]byte("{\"cmd\":\"stats\"}\n")); c.Close() }, false, true},
		{"closed with an answer unread", func(c *net.UnixConn) { c.Close() }, true, true},
		{"shut down both ways", func(c *net.UnixConn) { c.CloseWrite(); c.CloseRead() }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := pair(t)
			if tc.unread {
				if _, err := s.Write([]byte("answer\n")); err != nil {
					t.Fatal(err)
				}
			}
			tc.client(c)
			if got := PeerGone(s, false); got != tc.want {
				t.Errorf("PeerGone = %v, want %v", got, tc.want)
			}
			// Nothing was consumed: what the client sent is still there.
			if got := PeerGone(s, false); got != tc.want {
				t.Errorf("PeerGone asked again = %v, want %v", got, tc.want)
			}
		})
	}
}

// Waiting, PeerGone returns when the peer closes, not when it sends or
// stops sending; and when the read deadline passes or the connection is
// closed, false.
func TestPeerGoneWaits(t *testing.T) {
	wait := func(s *net.UnixConn) chan bool {
		got := make(chan bool, 1)
		go func() { got <- PeerGone(s, true) }()
		return got
	}
	result := func(t *testing.T, got chan bool) bool {
		t.Helper()
		select {
		case g := <-got:
			return g
		case <-time.After(20 * time.Second):
			t.Fatal("PeerGone still waits 20 s later")
			return false
		}
	}

	t.Run("the peer sends, stops sending, closes", func(t *testing.T) {
		s, c := pair(t)
		got := wait(s)
		c.Write([]byte("{\"cmd\":\"stats\"}\n"))
		c.CloseWrite()
		c.Close()
		// Returned before the close, it would say false.
		if !result(t, got) {
			t.Error("PeerGone returned false: it did not wait for the close")
		}
	})
	t.Run("the read deadline passes", func(t *testing.T) {
		s, c := pair(t)
		got := wait(s)
		s.SetReadDeadline(time.Unix(1, 0))
		if result(t, got) {
			t.Error("a peer still connected is gone")
		}
		// The deadline lifted, it waits again.
		s.SetReadDeadline(time.Time{})
		got = wait(s)
		c.Close()
		if !result(t, got) {
			t.Error("PeerGone after the deadline was lifted: false")
		}
	})
	t.Run("the connection is closed", func(t *testing.T) {
		s, _ := pair(t)
		got := wait(s)
		s.Close()
		if result(t, got) {
			t.Error("a peer still connected is gone")
		}
	})
}
