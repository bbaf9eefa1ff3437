package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// generated is a backend whose table is n copies of one session (Call-IDs
// numbered), walked in chunks of chunk as the daemon walks it: a listing
// of any size without holding it in the test either.
type generated struct {
	*controltest.Backend
	one   control.SessionInfo
	n     int
	chunk int
	// done receives what Sessions returned.
	done chan error
}

func (g *generated) Sessions(_ context.Context, prefix string, f func([]control.SessionInfo) error) (err error) {
	if g.done != nil {
		defer func() { g.done <- err }()
	}
	buf := make([]control.SessionInfo, 0, g.chunk)
	for i := range g.n {
		s := g.one
		s.CallID = fmt.Sprintf("%d-%s", i, g.one.CallID)
		buf = append(buf, s)
		if len(buf) == g.chunk || i == g.n-1 {
			if err := f(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// A realistic session: about 400 bytes of JSON.
func realistic() control.SessionInfo {
	now := time.Date(2026, 11, 30, 21, 7, 52, 762889729, time.UTC)
	return control.SessionInfo{CallID: "5f0c9b3e-1d2a-4c8e-9b7a-2e6f4d3c1a0b@203.0.113.45",
		Party: "sip:31208005100@example.com", Destination: "sip:0031650222333@example.com", State: "in-progress",
		DialogID: "1079:6296", FromTag: "as6f3e2b1c", SourceIP: "203.0.113.45", Engine: "10.0.0.5:9024", Prepaid: true,
		Created: now, Answered: now, Limit: 3600, Remaining: 1200}
}

// The project's scale is 1,000,000 sessions; at ~400 bytes of JSON each
// the sessions reply is ~400 MB. It was one line the daemon built whole
// (the slice, its JSON and a copy: ~1 GB) and the client read whole
// (capped at 256 MiB: "token too long" from ~670,000 sessions). Now the
// server writes it as the backend walks and EachSession decodes it
// element by element: the heap of both sides together stays far below
// the reply's size, measured while the listing runs.
//
// Under -race (CI's unit run) a million takes minutes: 300,000 there, a
// reply of ~120 MB, still twice the heap bound, so holding it whole still
// fails. ccbench -run ctllist measures the million (BENCHMARKS.md).
func TestSessionsOfOneMillionCanBeListed(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 300_000
	}
	one := realistic()
	size, _ := json.Marshal(one)
	s := startServer(t, "", "", &generated{Backend: controltest.New(stats), one: one, n: n, chunk: 256})
	c, err := control.Dial(s.Path(), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	count := 0
	err = c.EachSession("", func(si control.SessionInfo) error {
		if si.Party != one.Party {
			return fmt.Errorf("session %d: party %q", count, si.Party)
		}
		count++
		if count%50_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	mb := n * (len(size) + 1) >> 20
	if err != nil || count != n {
		t.Fatalf("listing %d sessions of %d bytes of JSON each (%d MB): %d listed, %v", n, len(size), mb, count, err)
	}
	// Held whole, the reply alone is mb MB; streamed, a chunk and the
	// buffers around it. 64 MiB leaves room for garbage not yet collected.
	if peak > 64<<20 {
		t.Errorf("heap reached %d MiB while listing a %d MB reply: the listing is held, not streamed", peak>>20, mb)
	}
	t.Logf("%d sessions, %d MB of JSON, heap at most %d MiB (sampled)", n, mb, peak>>20)
	// The connection is still in step.
	if _, err := c.Stats(); err != nil {
		t.Fatalf("stats after the listing: %v", err)
	}
}

// An older client reads one line and decodes it whole: the streamed reply
// must be that line, byte for byte what json.Marshal of the Response gives,
// across chunk boundaries, for none, one and many sessions.
func TestStreamedSessionsReplyIsTheOneLineOfOld(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 1001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var list []control.SessionInfo
			for i := range n {
				s := sessionA
				s.CallID = fmt.Sprintf("%05d<&>@1", i) // escaped as json.Marshal escapes
				list = append(list, s)
			}
			s := startServer(t, "", "", controltest.New(stats, list...))
			conn, err := net.Dial("unix", s.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(conn, "{\"v\":1,\"cmd\":\"sessions\"}\n{\"cmd\":\"stats\"}\n")
			r := bufio.NewReader(conn)
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if list == nil {
				list = []control.SessionInfo{}
			}
			want, _ := json.Marshal(control.Response{OK: true, Sessions: list})
			if line != string(want)+"\n" {
				t.Errorf("reply of %d sessions:\n got %.300q\nwant %.300q", n, line, want)
			}
			// The next reply follows, in order.
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, `{"ok":true,"stats":`) {
				t.Errorf("the next reply: %q, %v", line, err)
			}
		})
	}
}

// A client that asks for the sessions and never reads must not keep the
// listing (and the daemon's listing slot) forever: each write of the
// stream has a deadline; when it passes the walk ends and the connection
// is closed.
func TestStreamToClientThatNeverReadsEnds(t *testing.T) {
	g := &generated{Backend: controltest.New(stats), one: realistic(), n: 10_000_000, chunk: 256, done: make(chan error, 1)}
	dir := t.TempDir()
	srv, err := control.NewServer(filepath.Join(dir, "control"), "", g, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetStreamTimeout(100 * time.Millisecond)
	go srv.Serve()
	defer srv.Close()
	conn, err := net.Dial("unix", srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "{\"cmd\":\"sessions\"}\n")
	// 10,000,000 sessions are ~4 GB: far more than the socket buffers
	// hold, so the walk can only end by the deadline.
	select {
	case err := <-g.done:
		if err == nil {
			t.Fatal("the walk finished: the stream was not written to the socket")
		}
		t.Logf("walk ended: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the listing to a client that never reads still runs after 60 s")
	}
	// The server closed the connection: what the client finally reads ends.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1<<20)
	for {
		if _, err := conn.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept the connection open after the walk ended")
			}
			break
		}
	}
}

// cutShort serves a sessions reply that breaks off after two sessions.
func cutShort(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "control")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		a, _ := json.Marshal(sessionA)
		fmt.Fprintf(c, `{"ok":true,"sessions":[%s,%s,{"call_id":"c@`, a, a)
	}()
	return path
}

// A reply cut short is an error that says so, after the sessions that
// came; the connection is then out of step and refuses further requests.
func TestSessionsReplyCutShort(t *testing.T) {
	c, err := control.Dial(cutShort(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []control.SessionInfo
	err = c.EachSession("", func(s control.SessionInfo) error { got = append(got, s); return nil })
	if err == nil || !strings.Contains(err.Error(), "after 2 sessions") {
		t.Fatalf("EachSession of a reply cut short: %v", err)
	}
	if !reflect.DeepEqual(got, []control.SessionInfo{sessionA, sessionA}) {
		t.Errorf("sessions before the cut: %+v", got)
	}
	if _, err := c.Stats(); err == nil {
		t.Error("a request after a broken reply succeeded on a connection out of step")
	}
}

// failing fails its listing (an error, or a panic) after chunks chunks of
// size sessions.
type failing struct {
	*controltest.Backend
	chunks, size int
	panics       bool
}

func (b failing) Sessions(_ context.Context, prefix string, f func([]control.SessionInfo) error) error {
	chunk := make([]control.SessionInfo, b.size)
	for i := range chunk {
		chunk[i] = sessionA
	}
	for range b.chunks {
		if err := f(chunk); err != nil {
			return err
		}
	}
	if b.panics {
		panic("listing broke")
	}
	return errors.New("table unavailable")
}

// A listing that fails before a byte of its reply left (a reply that
// fits the server's buffer never leaves before its end) is an error reply
// like any other, and the connection goes on; one that fails later can
// only be cut short (the reply's start said ok), and the client says so.
func TestSessionsListingFails(t *testing.T) {
	for _, b := range []failing{{chunks: 0}, {chunks: 1, size: 1}, {chunks: 2, size: 3, panics: true}} {
		b.Backend = controltest.New(stats)
		c := dial(t, startServer(t, "", "", b))
		_, err := c.Sessions("")
		var re *control.RemoteError
		if !errors.As(err, &re) || re.Code != control.CodeFailed {
			t.Fatalf("listing that fails after %d sessions: %v, want an error reply", b.chunks*b.size, err)
		}
		if _, err := c.Stats(); err != nil {
			t.Fatalf("stats after a failed listing: %v", err)
		}
	}
	// ~250 KB of sessions: more than the server's buffer.
	for _, b := range []failing{{chunks: 2, size: 500}, {chunks: 2, size: 500, panics: true}} {
		b.Backend = controltest.New(stats)
		c := dial(t, startServer(t, "", "", b))
		n := 0
		err := c.EachSession("", func(control.SessionInfo) error { n++; return nil })
		var re *control.RemoteError
		if err == nil || errors.As(err, &re) || n == 0 || n > 1000 || !strings.Contains(err.Error(), "before the listing's end") {
			t.Errorf("listing that fails after 1000 sessions (panic %v): %d seen, %v", b.panics, n, err)
		}
	}
}

// An error from the caller's f ends the listing and is returned as is.
func TestEachSessionStopsOnError(t *testing.T) {
	s := startServer(t, "", "", controltest.New(stats, sessionA, sessionB))
	c := dial(t, s)
	stop := errors.New("enough")
	n := 0
	if err := c.EachSession("", func(control.SessionInfo) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("EachSession = %v after %d sessions, want %v after 1", err, n, stop)
	}
}
