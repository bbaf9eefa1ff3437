package rating

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

func TestCause(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", fmt.Errorf("rating x: %w: %w", ErrNotSent, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), "connection refused"},
		{"no such host", fmt.Errorf("rating x: %w: %w", ErrNotSent, &net.OpError{Op: "dial", Err: &net.DNSError{Name: "cdrtool.example.invalid", Err: "no such host", IsNotFound: true}}),
			"no such host cdrtool.example.invalid"},
		{"lookup timeout", &net.DNSError{Name: "cdr", Err: "i/o timeout", IsTimeout: true}, "looking up cdr timed out"},
		{"engine error answer", fmt.Errorf("rating x: CallId c: %w", engineError("Error: database down")), "the engine answered Error: database down"},
		{"backoff", &backoffError{last: syscall.ECONNREFUSED}, "connection refused (waiting before reconnecting)"},
		{"sent, no answer", fmt.Errorf("rating x: no reply: %w", context.DeadlineExceeded), "no answer in time"},
		{"not sent by the deadline", fmt.Errorf("rating x: %w: %w", ErrNotSent, context.DeadlineExceeded), "no connection before the deadline (busy or slow to connect)"},
		{"no engine", fmt.Errorf("%w: %w", ErrNotSent, ErrNoEngine), "no rating engine configured"},
		{"closed mid-reply", fmt.Errorf("rating x: no reply: %w", errors.New("unexpected EOF")), "rating x: no reply: unexpected EOF"},
		{"reset", syscall.ECONNRESET, "the engine closed the connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Cause(tt.err); got != tt.want {
				t.Fatalf("Cause = %q, want %q", got, tt.want)
			}
		})
	}
	if got := Cause(nil); got != "" {
		t.Fatalf("Cause(nil) = %q", got)
	}
}

// A request that fails says why: a refused connection is not a timeout, an
// "Error:" answer is the engine's words.
func TestRequestFailuresCarryTheirCause(t *testing.T) {
	c := NewConn(freeAddr(t), Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, testLog(t))
	defer c.Close()
	_, err := c.MaxSessionTime(context.Background(), testReq)
	if got := Cause(err); got != "connection refused" {
		t.Fatalf("refused: Cause = %q (%v)", got, err)
	}
	_, err = c.MaxSessionTime(context.Background(), testReq)
	if got := Cause(err); got != "connection refused (waiting before reconnecting)" {
		t.Fatalf("during the backoff: Cause = %q (%v)", got, err)
	}
	if st := c.State(); st.State != StateUnreachable || st.Cause != "connection refused" {
		t.Fatalf("state %+v", st)
	}

	s := newScripted(t, func(conn, req int, line string) []string {
		return []string{"Error: missing From parameter\n\n"}
	})
	c2 := NewConn(s.ln.Addr().String(), Options{}, testLog(t))
	defer c2.Close()
	_, err = c2.MaxSessionTime(context.Background(), testReq)
	if !errors.Is(err, ErrEngine) || Cause(err) != "the engine answered Error: missing From parameter" {
		t.Fatalf("error answer: %v / %q", err, Cause(err))
	}
}

func TestPoolCheck(t *testing.T) {
	eng := ratingtest.New(t)
	dead := freeAddr(t)
	// A backoff of an hour: the check must connect anyway.
	p := NewPool([]string{eng.Addr(), dead}, Options{Timeout: 2 * time.Second, MinBackoff: time.Hour, MaxBackoff: time.Hour}, testLog(t))
	defer p.Close()
	if st := p.States(); len(st) != 2 || st[0].State != StateIdle || st[1].State != StateIdle {
		t.Fatalf("before any use: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := p.Check(ctx)
	want := []EngineState{
		{Address: eng.Addr(), State: StateConnected},
		{Address: dead, State: StateUnreachable, Cause: "connection refused"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Check = %+v, want %+v", got, want)
	}
	// The connection opened by the check carries the next request.
	if _, err := p.MaxSessionTime(ctx, eng.Addr(), testReq); err != nil {
		t.Fatal(err)
	}
	if st := p.States(); st[0].State != StateConnected || st[1] != want[1] {
		t.Fatalf("States = %+v", st)
	}

	// The dead engine comes up: a check at reload finds it at once, despite
	// the backoff that a request would still wait out.
	ln, err := net.Listen("tcp", dead)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", dead, err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	if st := p.Check(ctx); st[1].State != StateConnected {
		t.Fatalf("after the engine came up: %+v", st)
	}
}

func TestPoolCheckNoSuchHost(t *testing.T) {
	p := NewPool([]string{"cdrtool.callcontrol-test.invalid"}, Options{Timeout: 2 * time.Second}, testLog(t))
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := p.Check(ctx)
	if len(st) != 1 || st[0].State != StateUnreachable {
		t.Fatalf("Check = %+v", st)
	}
	// Without a DNS server the lookup fails otherwise; the cause still names the host.
	if !strings.Contains(st[0].Cause, "cdrtool.callcontrol-test.invalid") {
		t.Fatalf("cause %q does not name the host", st[0].Cause)
	}
}
