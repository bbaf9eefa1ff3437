package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// within is what ch gives, failing t unless it comes within 20 s.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not after 20 s", what)
		panic("unreachable")
	}
}

// hangupWatches are the states ("IO wait", "runnable", ...) of the
// goroutines watching a listing's client for its hang-up.
func hangupWatches() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var states []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "control.awaitHangup(") {
			continue
		}
		header, _, _ := strings.Cut(g, "\n") // goroutine 7 [IO wait]:
		_, state, _ := strings.Cut(header, "[")
		states = append(states, strings.TrimSuffix(state, "]:"))
	}
	return states
}

// eventually waits until cond holds, failing t unless it does within
// 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20 s (watches of the client's hang-up: %q)", what, hangupWatches())
		}
	}
}

// newServer is a control server on backend b, logging at debug to logs,
// not serving yet: serve starts it.
func newServer(t *testing.T, b control.Backend, logs *lockedBuffer) *control.Server {
	t.Helper()
	s, err := control.NewServer(filepath.Join(t.TempDir(), "control"), "", b,
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func serve(s *control.Server) { go s.Serve() }

// A client that asks for the sessions while another listing holds the
// daemon's one listing slot, then goes away (Ctrl-C), is noticed at once:
// its listing stops waiting for the slot, and takes no slot the operators
// behind it wait for. Requests it sent ahead do not hide that it went.
func TestSessionsListingStopsWaitingWhenTheClientGoes(t *testing.T) {
	for _, sent := range []string{"{\"cmd\":\"sessions\"}\n", "{\"cmd\":\"sessions\"}\n{\"cmd\":\"stats\"}\n"} {
		t.Run(fmt.Sprintf("%d requests", strings.Count(sent, "\n")), func(t *testing.T) {
			fake := controltest.New(stats, sessionA)
			w := controltest.NewListingWatch(fake)
			logs := &lockedBuffer{}
			s := newServer(t, w, logs)
			serve(s)
			release := sync.OnceFunc(fake.HoldListing()) // a big listing runs
			t.Cleanup(release)

			conn, err := net.Dial("unix", s.Path())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte(sent)); err != nil {
				t.Fatal(err)
			}
			within(t, w.Entered, "the listing asked the backend")
			conn.Close()
			if err := within(t, w.Returned, "the listing of a client gone stopped waiting for the slot"); !errors.Is(err, context.Canceled) {
				t.Fatalf("the listing of a client gone returned %v, want its context canceled", err)
			}
			// The watch of the client is over with its listing.
			eventually(t, "the watch of the client is over", func() bool { return len(hangupWatches()) == 0 })

			// The listing given up took no slot: the next one runs once
			// the big one is done.
			release()
			c := dial(t, s)
			if got, err := c.Sessions(""); err != nil || len(got) != 1 || got[0].CallID != sessionA.CallID {
				t.Fatalf("the next listing: %+v, %v", got, err)
			}
			within(t, w.Entered, "the next listing asked the backend")
			if err := within(t, w.Returned, "the next listing"); err != nil {
				t.Fatalf("the next listing returned %v", err)
			}
			eventually(t, "the listing logged as given up", func() bool {
				return strings.Contains(logs.String(), "sessions listing given up: client went away")
			})
			if l := logs.String(); strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				t.Errorf("a client gone was logged as a failure:\n%s", l)
			}
		})
	}
}

// A client that sent its next request ahead and shut down its sending
// side (as `echo ... | socat - UNIX-CONNECT:...` does) still reads: its
// listing waits for the slot and is answered whole, then the next reply.
func TestSessionsListingOfAClientThatStoppedSendingGoesOn(t *testing.T) {
	fake := controltest.New(stats, sessionA, sessionB)
	w := controltest.NewListingWatch(fake)
	logs := &lockedBuffer{}
	s := newServer(t, w, logs)
	release := sync.OnceFunc(fake.HoldListing())
	t.Cleanup(release)

	// All sent and shut down before the server reads a byte: the watch
	// sees it from its first look.
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("{\"cmd\":\"sessions\"}\n{\"cmd\":\"stats\"}\n")); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	serve(s)
	within(t, w.Entered, "the listing asked the backend")
	// Waiting on the socket: it looked, and did not take the client for
	// gone.
	eventually(t, "the client watched while the listing waits for the slot", func() bool {
		st := hangupWatches()
		return len(st) == 1 && strings.HasPrefix(st[0], "IO wait")
	})
	select {
	case err := <-w.Returned:
		t.Fatalf("the listing gave up (%v) though its client still reads", err)
	default:
	}

	release()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	want, _ := json.Marshal(control.Response{OK: true, Sessions: []control.SessionInfo{sessionA, sessionB}})
	if err != nil || line != string(want)+"\n" {
		t.Fatalf("the sessions reply: %v\n got %.300q\nwant %.300q", err, line, want)
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, `{"ok":true,"stats":`) {
		t.Fatalf("the next reply: %q, %v", line, err)
	}
	if err := within(t, w.Returned, "the listing"); err != nil {
		t.Fatalf("the listing returned %v", err)
	}
	// The stats reply came after the listing's end: its watch is over.
	if st := hangupWatches(); len(st) != 0 {
		t.Errorf("watches of the client's hang-up left after its listing: %q", st)
	}
	if strings.Contains(logs.String(), "given up") {
		t.Errorf("logged as given up:\n%s", logs)
	}
}

// Closing the server ends a listing that waits for the slot: Close does
// not wait for the big listing ahead of it.
func TestCloseEndsAListingWaitingForTheSlot(t *testing.T) {
	fake := controltest.New(stats, sessionA)
	w := controltest.NewListingWatch(fake)
	s := newServer(t, w, &lockedBuffer{})
	serve(s)
	release := fake.HoldListing()
	defer release()
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "{\"cmd\":\"sessions\"}\n")
	within(t, w.Entered, "the listing asked the backend")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	within(t, closed, "Close with a listing waiting for the slot returned")
	if err := within(t, w.Returned, "the listing"); !errors.Is(err, context.Canceled) {
		t.Fatalf("the listing returned %v, want its context canceled", err)
	}
	if st := hangupWatches(); len(st) != 0 {
		t.Errorf("watches of the client's hang-up left after Close: %q", st)
	}
}
