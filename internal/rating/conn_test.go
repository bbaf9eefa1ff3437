package rating

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// scripted is a TCP peer whose answers a test writes byte by byte: it lets
// us split, join and break replies in ways the fake engine does not.
type scripted struct {
	ln      net.Listener
	respond func(conn, req int, line string) []string // writes to make
	mu      sync.Mutex
	conns   []net.Conn
	reqs    []string
	wg      sync.WaitGroup
}

func newScripted(t *testing.T, respond func(conn, req int, line string) []string) *scripted {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{ln: ln, respond: respond}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *scripted) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		idx := len(s.conns)
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			br := bufio.NewReader(c)
			for req := 0; ; req++ {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				s.mu.Lock()
				s.reqs = append(s.reqs, line)
				s.mu.Unlock()
				for _, w := range s.respond(idx, req, line) {
					if w == closeConn {
						return
					}
					if _, err := io.WriteString(c, w); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond) // separate reads at the client
				}
			}
		}()
	}
}

func (s *scripted) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *scripted) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

var testReq = Request{CallID: "call-1@h", From: "sip:alice@example.com", To: "sip:0031650222333@example.com", Gateway: "10.0.0.1", Duration: 36000}

func TestConnFraming(t *testing.T) {
	const good = "600\ntype=prepaid\n\n"
	tests := []struct {
		name      string
		first     []string // writes answering the first request on the first connection
		firstErr  error    // nil: expect 600; errAny: any error
		wantConns int      // connections used after the second request
		wantGen   uint64   // the second answer's generation: 2 once the engine closed a connection
	}{
		{"whole", []string{good}, nil, 1, 1},
		{"split", []string{"6", "00\ntype=pre", "paid\n", "\n"}, nil, 1, 1},
		{"split at the blank line", []string{"600\ntype=prepaid\n", "\n"}, nil, 1, 1},
		{"crlf", []string{"600\r\ntype=prepaid\r\n\r\n"}, nil, 1, 1},
		{"leading newlines", []string{"\n\n", good}, nil, 1, 1},
		{"extra newline after", []string{good + "\n"}, nil, 1, 1},
		{"garbage after the reply", []string{good + "GARBAGE"}, nil, 2, 1},
		{"garbage reply", []string{"hello world\n\n"}, errAny, 1, 1},
		{"never ends", []string{"600\ntype=prepaid\n"}, errAny, 2, 1},
		{"too large", []string{strings.Repeat("x\n", 40<<10)}, ErrReplyTooLarge, 2, 1},
		{"closed mid-reply", []string{"600\n", closeConn}, errAny, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(t, func(conn, req int, line string) []string {
				if conn == 0 && req == 0 {
					return tt.first
				}
				return []string{"none\ntype=postpaid\n\n"}
			})
			c := NewConn(s.ln.Addr().String(), Options{Timeout: 20 * time.Second}, testLog(t))
			defer c.Close()
			// Generous: only "never ends" waits for it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			mt, err := c.MaxSessionTime(ctx, testReq)
			cancel()
			switch {
			case tt.firstErr == nil:
				if err != nil || mt != (MaxTime{Kind: Limited, Seconds: 600, Prepaid: true, Generation: 1}) {
					t.Fatalf("first = %+v, %v", mt, err)
				}
			default:
				if err == nil {
					t.Fatalf("first = %+v, want an error", mt)
				}
				if errors.Is(err, ErrNotSent) {
					t.Fatalf("sent request reported as not sent: %v", err)
				}
				if tt.firstErr != errAny && !errors.Is(err, tt.firstErr) {
					t.Fatalf("err = %v, want %v", err, tt.firstErr)
				}
			}
			// The next request must get its own answer, on the connection
			// made last: a new generation when the engine closed the one
			// before (it may have restarted), not when this side dropped it.
			mt, err = c.MaxSessionTime(context.Background(), testReq)
			if err != nil || mt != (MaxTime{Kind: Unlimited, Generation: tt.wantGen}) {
				t.Fatalf("second = %+v, %v", mt, err)
			}
			if n := s.connCount(); n != tt.wantConns {
				t.Errorf("connections = %d, want %d", n, tt.wantConns)
			}
		})
	}
}

var errAny = errors.New("any error")

// closeConn, as a scripted write, makes the peer close the connection.
const closeConn = "\x00close"

func TestConnSingleWrite(t *testing.T) {
	s := newScripted(t, func(conn, req int, line string) []string { return []string{"Failed\n\n\n"} })
	c := NewConn(s.ln.Addr().String(), Options{}, testLog(t))
	defer c.Close()
	for i := 0; i < 3; i++ {
		dr, err := c.DebitBalance(context.Background(), Debit{CallID: "x", From: "f", To: "t", Gateway: "g", Duration: 3, Force: i == 2})
		if err != nil || dr.OK {
			t.Fatalf("debit %d = %+v, %v", i, dr, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := []string{
		"DebitBalance CallId=x From=f To=t Gateway=g Duration=3 Application=audio\n",
		"DebitBalance CallId=x From=f To=t Gateway=g Duration=3 Application=audio\n",
		"DebitBalance CallId=x From=f To=t Gateway=g Duration=3 Application=audio Force=1\n",
	}
	if strings.Join(s.reqs, "|") != strings.Join(want, "|") {
		t.Fatalf("requests = %q", s.reqs)
	}
}

// freeAddr returns an address where nothing listens.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestConnNotSent(t *testing.T) {
	c := NewConn(freeAddr(t), Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, testLog(t))
	defer c.Close()
	for i, what := range []string{"refused", "backoff"} {
		_, err := c.MaxSessionTime(context.Background(), testReq)
		if !errors.Is(err, ErrNotSent) {
			t.Fatalf("%s: err = %v, want ErrNotSent", what, err)
		}
		if i == 1 && !errors.Is(err, errBackoff) {
			t.Fatalf("second attempt should wait for the backoff: %v", err)
		}
	}
	if c.Healthy() {
		t.Error("an engine that refused connections counts as healthy")
	}
	// Invalid values are refused before any network use.
	_, err := c.DebitBalance(context.Background(), Debit{CallID: "a b", From: "f", To: "t", Gateway: "g"})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("invalid: %v", err)
	}
	// A closed Conn sends nothing.
	c.Close()
	if _, err := c.MaxSessionTime(context.Background(), testReq); !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestConnTimeouts(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("", ratingtest.PerMinute(0.10))
	c := NewConn(eng.Addr(), Options{Timeout: 200 * time.Millisecond}, testLog(t))
	defer c.Close()

	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"default timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"ctx deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}},
		{"ctx cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng.Hang(true)
			ctx, cancel := tt.ctx()
			defer cancel()
			_, err := c.MaxSessionTime(ctx, testReq)
			if err == nil || errors.Is(err, ErrNotSent) {
				t.Fatalf("hung engine: err = %v, want a fate-unknown error", err)
			}
			eng.Hang(false)
			ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			mt, err := c.MaxSessionTime(ctx, testReq)
			if err != nil || mt.Kind != Limited || !mt.Prepaid {
				t.Fatalf("after the hang: %+v, %v", mt, err)
			}
		})
	}
}

// A reply that arrives after its request timed out must not be taken as the
// answer to the next request.
func TestConnLateReply(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetAccount("bob@example.com", ratingtest.Account{Postpaid: true})
	eng.SetRate("", ratingtest.PerMinute(0.10))
	c := NewConn(eng.Addr(), Options{Timeout: 5 * time.Second}, testLog(t))
	defer c.Close()

	eng.SetDelay(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := c.MaxSessionTime(ctx, testReq) // alice: would answer 600
	cancel()
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want fate unknown", err)
	}
	eng.SetDelay(0)
	bob := testReq
	bob.CallID, bob.From = "call-2@h", "sip:bob@example.com"
	mt, err := c.MaxSessionTime(context.Background(), bob)
	if err != nil || mt != (MaxTime{Kind: Unlimited, Generation: 1}) {
		t.Fatalf("bob = %+v, %v (a late answer for alice?)", mt, err)
	}
}

// Requests from many goroutines share a connection one at a time: the
// engine frames by read, so overlapping requests would merge.
func TestConnSerializes(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Postpaid: true})
	eng.SetDelay(2 * time.Millisecond)
	c := NewConn(eng.Addr(), Options{Timeout: 30 * time.Second}, testLog(t))
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := testReq
			r.CallID = "c" + string(rune('a'+i))
			if _, err := c.MaxSessionTime(context.Background(), r); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reqs := eng.Requests()
	if len(reqs) != 20 {
		t.Fatalf("engine saw %d requests, want 20", len(reqs))
	}
	for _, r := range reqs {
		if strings.Count(r, "CallId=") != 1 {
			t.Fatalf("merged request %q", r)
		}
	}
}

func TestConnReconnect(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Postpaid: true})
	c := NewConn(eng.Addr(), Options{Timeout: 20 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, testLog(t))
	defer c.Close()
	ask := func() error {
		_, err := c.MaxSessionTime(context.Background(), testReq)
		return err
	}
	if err := ask(); err != nil {
		t.Fatal(err)
	}
	// A restart closes our idle connection: the next request must notice
	// before writing, and go out on a new connection without error.
	if err := eng.Restart(true); err != nil {
		t.Fatal(err)
	}
	if err := ask(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Engine down: certainly not sent.
	eng.Stop()
	if err := ask(); !errors.Is(err, ErrNotSent) {
		t.Fatalf("engine down: %v", err)
	}
	if c.Connected() {
		t.Error("Connected while the engine is down")
	}
	if err := eng.Restart(true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ask()
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotSent) {
			t.Fatalf("reconnecting: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !c.Connected() || !c.Healthy() {
		t.Error("not connected after reconnect")
	}
}

func BenchmarkConnMaxSessionTime(b *testing.B) {
	eng := ratingtest.New(b)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1e9})
	eng.SetRate("", 0.001)
	c := NewConn(eng.Addr(), Options{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	defer c.Close()
	for b.Loop() {
		if _, err := c.MaxSessionTime(context.Background(), testReq); err != nil {
			b.Fatal(err)
		}
	}
}

// An idle connection is reused, even after its last request's deadline
// has passed.
func TestConnReusesIdle(t *testing.T) {
	s := newScripted(t, func(conn, req int, line string) []string { return []string{"none\ntype=postpaid\n\n"} })
	c := NewConn(s.ln.Addr().String(), Options{Timeout: 20 * time.Second}, testLog(t))
	defer c.Close()
	for i := 0; i < 3; i++ {
		if _, err := c.MaxSessionTime(context.Background(), testReq); err != nil {
			t.Fatal(err)
		}
		// As if the connection sat idle past the request's deadline.
		c.sem <- struct{}{}
		c.nc.SetDeadline(time.Now().Add(-time.Second))
		<-c.sem
	}
	if n := s.connCount(); n != 1 {
		t.Fatalf("%d connections for 3 requests, want 1", n)
	}
}
