package rating

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Engine states as operators see them (EngineState.State).
const (
	StateConnected   = "connected"   // a connection is open
	StateUnreachable = "unreachable" // the last connect failed, or requests go unanswered: Cause says why
	StateIdle        = "idle"        // no connection yet (or dropped), no failure
)

// EngineState is one engine's health.
type EngineState struct {
	Address string `json:"address"` // host:port
	State   string `json:"state"`   // StateConnected, StateUnreachable or StateIdle
	Cause   string `json:"cause,omitempty"`
}

// State reports the engine's health now.
func (c *Conn) State() EngineState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := EngineState{Address: c.addr, State: StateIdle}
	switch {
	case c.silent >= silentLimit:
		// It may accept connections (a probe's is open): it is passed
		// over for new parties all the same, so it is not up.
		st.State, st.Cause = StateUnreachable, hungCause
	case c.live != nil:
		st.State = StateConnected
	case c.failing:
		st.State, st.Cause = StateUnreachable, Cause(c.lastErr)
	}
	return st
}

// hungCause is the Cause of an engine that leaves requests unanswered.
const hungCause = "requests go unanswered (the engine accepts connections but does not reply)"

// check connects now, even during the backoff, unless a usable connection
// is open; it returns why the engine cannot be reached, or nil.
func (c *Conn) check(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		if c.Connected() {
			return nil // busy with a request: it is reachable
		}
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.isClosed() {
		return ErrClosed
	}
	if c.nc != nil {
		ok, closed := c.reusable()
		if ok {
			return nil
		}
		c.dropClosed(closed)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.Timeout)
	}
	return c.connect(ctx, deadline, true)
}

// States reports the configured engines' health, in configured order.
func (p *Pool) States() []EngineState {
	p.mu.Lock()
	conns := make([]*Conn, len(p.addrs))
	for i, a := range p.addrs {
		conns[i] = p.conns[a]
	}
	p.mu.Unlock()
	out := make([]EngineState, len(conns))
	for i, c := range conns {
		out[i] = c.State()
	}
	return out
}

// Check connects to every configured engine now (resolving its name
// again) and reports each one's state, so that a wrong or dead address
// shows at start or reload rather than on the first prepaid call. The
// connections opened are kept for the calls. A failure is recorded as the
// engine's state; logging it is the caller's (once, with the option to fix).
func (p *Pool) Check(ctx context.Context) []EngineState {
	p.mu.Lock()
	conns := make([]*Conn, len(p.addrs))
	for i, a := range p.addrs {
		conns[i] = p.conns[a]
	}
	p.mu.Unlock()
	out := make([]EngineState, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.check(ctx); err != nil {
				out[i] = EngineState{Address: c.addr, State: StateUnreachable, Cause: Cause(err)}
				return
			}
			out[i] = c.State()
		}()
	}
	wg.Wait()
	return out
}

// Cause says in a few words why a request to the engine failed, as an
// operator would search for it: "connection refused", "no such host
// cdrtool.example.com", "the engine answered: Error: ...", "no answer in
// time". Never "did not answer in time" for a refused connection.
func Cause(err error) string {
	var (
		dnsErr *net.DNSError
		answer *engineAnswer
		bo     *backoffError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &answer):
		return "the engine answered " + answer.text
	case errors.Is(err, ErrNoEngine):
		return "no rating engine configured"
	case errors.Is(err, ErrClosed):
		return "the rating client is closed (shutting down)"
	case errors.Is(err, ErrInvalid):
		return "a value the engine cannot take (white space, '=' or a control character)"
	case errors.As(err, &bo):
		if bo.last == nil {
			return "unreachable, waiting before reconnecting"
		}
		return Cause(bo.last) + " (waiting before reconnecting)"
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "no such host " + dnsErr.Name
		case dnsErr.IsTimeout:
			return "looking up " + dnsErr.Name + " timed out"
		}
		return "looking up " + dnsErr.Name + " failed: " + dnsErr.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the engine closed the connection"
	case errors.Is(err, ErrReplyTooLarge):
		return "reply too large (not a rating engine?)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		if errors.Is(err, ErrNotSent) {
			return "no connection before the deadline (busy or slow to connect)"
		}
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer in time"
	}
	return err.Error()
}
