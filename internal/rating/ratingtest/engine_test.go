package ratingtest

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	alice = "From=sip:alice@example.com Gateway=10.0.0.1 Application=audio"
	nl    = "To=sip:0031650222333@example.com"
	de    = "To=sip:0049301234@example.com"
)

// TestProtocol drives the engine's request handling step by step.
func TestProtocol(t *testing.T) {
	type step struct {
		advance time.Duration
		req     string
		want    string // the reply, with its terminating "\n\n"
	}
	tests := []struct {
		name  string
		setup func(e *Engine)
		steps []step
		after func(t *testing.T, e *Engine)
	}{
		{
			name: "errors and odd requests",
			steps: []step{
				{req: "MaxSessionTime From=sip:a@b To=sip:1@b Gateway=x Duration=10", want: "Error: missing CallId parameter\n\n"},
				{req: "MaxSessionTime CallId=c To=sip:1@b Gateway=x Duration=10", want: "Error: missing From parameter\n\n"},
				{req: "MaxSessionTime CallId=c From=sip:a@b Gateway=x", want: "Error: missing To parameter\n\n"},
				{req: "DebitBalance CallId=c From=sip:a@b To=sip:1@b Gateway=x", want: "Error: missing Duration parameter\n\n"},
				{req: "MaxSessionTime CallId=c " + alice + " " + nl, want: "0\n\n"},
				{req: "MaxSessionTime CallId=c " + alice + " " + nl + " Duration=10 Application=video", want: "Error: unsupported application video\n\n"},
				{req: "Hello World", want: "0\n\n"},
			},
		},
		{
			name: "account kinds and rates",
			setup: func(e *Engine) {
				e.SetAccount("alice@example.com", Account{Balance: 1})
				e.SetAccount("bob@example.com", Account{Postpaid: true})
				e.SetRate("0031", PerMinute(0.10))
				e.SetFree("0031800")
			},
			steps: []step{
				{req: "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=36000", want: "600\ntype=prepaid\n\n"},
				{req: "MaxSessionTime CallId=b " + alice + " To=sip:0031800123@example.com Duration=36000", want: "none\ntype=prepaid\n\n"},
				{req: "MaxSessionTime CallId=c " + alice + " " + de + " Duration=36000", want: "0\ntype=prepaid\n\n"},
				{req: "MaxSessionTime CallId=d From=sip:bob@example.com Gateway=g " + nl + " Duration=36000", want: "none\ntype=postpaid\n\n"},
				{req: "MaxSessionTime CallId=e From=sip:nobody@example.com Gateway=g " + nl + " Duration=36000", want: "none\ntype=postpaid\n\n"},
				{req: "DebitBalance CallId=d From=sip:bob@example.com Gateway=g " + nl + " Duration=30", want: "Ok\nMaxSessionTime=0\n0.0000\ntype=postpaid\n\n"},
				// Keys are case-insensitive, values lower-cased except CallId.
				{req: "debitbalance callid=a FROM=SIP:ALICE@EXAMPLE.COM gateway=G TO=SIP:0031650222333@EXAMPLE.COM duration=60", want: "Ok\nMaxSessionTime=0\n0.1000\nDuration=60\nRate=0.1000/min\n\n"},
				{req: "DebitBalance CallId=A " + alice + " " + nl + " Duration=60", want: "Failed\n\n\n"},
			},
			after: func(t *testing.T, e *Engine) {
				if b := e.Balance("alice@example.com"); b < 0.8999 || b > 0.9001 {
					t.Errorf("balance %.4f, want 0.90", b)
				}
				if d := e.Debited("a"); len(d) != 1 || d[0] != 60 {
					t.Errorf("Debited(a) = %v", d)
				}
			},
		},
		{
			name: "cap, locked, re-ask, force",
			setup: func(e *Engine) {
				e.SetAccount("alice@example.com", Account{Balance: 1, MaxParallel: 1})
				e.SetRate("", PerMinute(0.10))
			},
			steps: []step{
				{req: "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=100", want: "100\ntype=prepaid\n\n"},
				{req: "MaxSessionTime CallId=b " + alice + " " + nl + " Duration=100", want: "Locked\ntype=prepaid\n\n"},
				// The real engine says Locked even for the call it counts.
				{req: "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=100 State=Connected", want: "Locked\ntype=prepaid\n\n"},
				{advance: 10 * time.Second, req: "DebitBalance CallId=a " + alice + " " + nl + " Duration=0", want: "Ok\nMaxSessionTime=0\n0.0000\nDuration=0\nRate=0.1000/min\n\n"},
				{req: "DebitBalance CallId=zz " + alice + " " + nl + " Duration=60", want: "Failed\n\n\n"},
				{req: "DebitBalance CallId=zz " + alice + " " + nl + " Duration=60 Force=1", want: "Ok\nMaxSessionTime=0\n0.1000\nDuration=60\nRate=0.1000/min\n\n"},
			},
			after: func(t *testing.T, e *Engine) {
				if d := e.Debited("zz"); len(d) != 1 || d[0] != 60 {
					t.Errorf("Debited(zz) = %v", d)
				}
			},
		},
		{
			name: "parallel sessions (the spec's numbers) and re-ask",
			setup: func(e *Engine) {
				e.SetAccount("alice@example.com", Account{Balance: 1})
				e.SetRate("", PerMinute(0.10))
			},
			steps: []step{
				{req: "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=36000", want: "600\ntype=prepaid\n\n"},
				{advance: 4 * time.Second, req: "MaxSessionTime CallId=b " + alice + " " + de + " Duration=36000", want: "298\ntype=prepaid\n\n"},
				{advance: 4 * time.Second, req: "DebitBalance CallId=a " + alice + " " + nl + " Duration=60", want: "Ok\nMaxSessionTime=536\n0.1000\nDuration=60\nRate=0.1000/min\n\n"},
				// b re-asked at start: its clock restarts, 540 - 0.
				{req: "MaxSessionTime CallId=b " + alice + " " + de + " Duration=36000 State=Connected", want: "540\ntype=prepaid\n\n"},
				{advance: 100 * time.Second, req: "MaxSessionTime CallId=c " + alice + " " + nl + " Duration=36000", want: "220\ntype=prepaid\n\n"},
			},
			after: func(t *testing.T, e *Engine) {
				if s := e.Sessions("alice@example.com"); strings.Join(s, ",") != "b,c" {
					t.Errorf("sessions %v", s)
				}
			},
		},
		{
			// rating-protocol.md: every number, 0 included, is owed one
			// DebitBalance; until then the engine counts the session.
			name: "a 0 answer is counted until its debit",
			setup: func(e *Engine) {
				e.SetAccount("alice@example.com", Account{Balance: 0.001, MaxParallel: 1}) // 0.6 s
				e.SetRate("", PerMinute(0.10))
			},
			steps: []step{
				{req: "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=36000", want: "0\ntype=prepaid\n\n"},
				{req: "MaxSessionTime CallId=b " + alice + " " + nl + " Duration=36000", want: "Locked\ntype=prepaid\n\n"},
				{req: "DebitBalance CallId=a " + alice + " " + nl + " Duration=0", want: "Ok\nMaxSessionTime=0\n0.0000\nDuration=0\nRate=0.1000/min\n\n"},
			},
			after: func(t *testing.T, e *Engine) {
				if s := e.Sessions("alice@example.com"); len(s) != 0 {
					t.Errorf("sessions %v after the release", s)
				}
			},
		},
		{
			name: "purge 120 s after time ran out",
			setup: func(e *Engine) {
				e.SetAccount("alice@example.com", Account{Balance: 1})
				e.SetRate("", PerMinute(0.10))
			},
			steps: []step{
				{req: "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=10", want: "10\ntype=prepaid\n\n"},
				{advance: 131 * time.Second, req: "DebitBalance CallId=a " + alice + " " + nl + " Duration=10", want: "Failed\n\n\n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(t)
			clk := &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
			e.SetClock(clk.now)
			if tt.setup != nil {
				tt.setup(e)
			}
			for i, s := range tt.steps {
				clk.advance(s.advance)
				e.mu.Lock()
				got := e.handleLocked(s.req)
				e.mu.Unlock()
				if got != s.want {
					t.Fatalf("step %d %q:\ngot  %q\nwant %q", i, s.req, got, s.want)
				}
			}
			if tt.after != nil {
				tt.after(t, e)
			}
		})
	}
}

func dial(t *testing.T, e *Engine) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func readReply(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), "\n\n") || strings.TrimLeft(b.String(), "\n") == "" {
		c, err := br.ReadByte()
		if err != nil {
			t.Fatalf("reading reply after %q: %v", b.String(), err)
		}
		b.WriteByte(c)
	}
	return strings.TrimLeft(b.String(), "\n")
}

// The engine frames by socket read: joined requests are one request.
func TestFramingByRead(t *testing.T) {
	e := New(t)
	e.SetAccount("alice@example.com", Account{Postpaid: true})
	c, br := dial(t, e)
	req := "MaxSessionTime CallId=a " + alice + " " + nl + " Duration=10\n"
	io.WriteString(c, req+"  \r\n")
	if got := readReply(t, br); got != "none\ntype=postpaid\n\n" {
		t.Fatalf("reply %q", got)
	}
	io.WriteString(c, req+req)
	if got := readReply(t, br); got != "none\ntype=postpaid\n\n" {
		t.Fatalf("reply %q", got)
	}
	// A lone newline is no request (the client's trailing "\n" split off).
	io.WriteString(c, "\n")
	io.WriteString(c, "x")
	if got := readReply(t, br); got != "0\n\n" {
		t.Fatalf("reply %q", got)
	}
	reqs := e.Requests()
	if len(reqs) != 3 || strings.Count(reqs[1], "MaxSessionTime") != 2 || reqs[0] != strings.TrimSpace(req) {
		t.Fatalf("requests %q", reqs)
	}
}

func TestStopRestartHang(t *testing.T) {
	e := New(t)
	e.SetAccount("alice@example.com", Account{Balance: 1})
	e.SetRate("", PerMinute(0.10))
	addr := e.Addr()
	c, br := dial(t, e)
	io.WriteString(c, "MaxSessionTime CallId=a "+alice+" "+nl+" Duration=100\n")
	if got := readReply(t, br); got != "100\ntype=prepaid\n\n" {
		t.Fatalf("reply %q", got)
	}
	e.Stop()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after Stop")
	}
	if err := e.Restart(true); err != nil {
		t.Fatal(err)
	}
	if e.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", e.Addr(), addr)
	}
	if s := e.Sessions("alice@example.com"); len(s) != 1 {
		t.Fatalf("sessions after a keeping restart: %v", s)
	}
	if err := e.Restart(false); err != nil {
		t.Fatal(err)
	}
	if s := e.Sessions("alice@example.com"); len(s) != 0 {
		t.Fatalf("sessions after a forgetting restart: %v", s)
	}

	c, br = dial(t, e)
	e.Hang(true)
	io.WriteString(c, "MaxSessionTime CallId=b "+alice+" "+nl+" Duration=100\n")
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a hanging engine answered")
	}
	if n := len(e.Requests()); n != 2 {
		t.Fatalf("%d requests recorded, want 2", n)
	}
	if s := e.Sessions("alice@example.com"); len(s) != 0 {
		t.Fatalf("a hanging engine acted: %v", s)
	}
	// Stop interrupts a delayed answer.
	e.Hang(false)
	e.SetDelay(time.Hour)
	c, _ = dial(t, e)
	io.WriteString(c, "x\n")
	// Recorded before the delay: from then on the answer is being held.
	for deadline := time.Now().Add(10 * time.Second); len(e.Requests()) < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the delayed request was never read: %q", e.Requests())
		}
	}
	stopped := make(chan struct{})
	go func() { e.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop still waits on an answer delayed by an hour")
	}
}
