// Package proxytest is a client of the proxy socket for tests: it writes
// requests as the call_control module does and reads the replies. It does
// not use the proxy package, so the daemon's own parser does not check
// itself.
package proxytest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Timeout bounds each request, from writing it to reading its reply.
const Timeout = 30 * time.Second

// Request formats a request as the module writes it: the command, a
// "key: value" line for each pair of kv, and the empty line that ends it.
func Request(cmd string, kv ...string) string {
	var b strings.Builder
	b.WriteString(cmd + "\r\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + ": " + kv[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// Lines formats a request given as lines without their line ends ("init",
// "callid: x", ...) or as one text with "\n" between them.
func Lines(lines ...string) string {
	return strings.ReplaceAll(strings.Join(lines, "\n"), "\n", "\r\n") + "\r\n\r\n"
}

// Conn is one connection to the proxy socket. Requests may be pipelined:
// Send several, then read their replies in order.
type Conn struct {
	net.Conn
	r *bufio.Reader
}

// Dial connects to the proxy socket at path.
func Dial(path string) (*Conn, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, r: bufio.NewReader(c)}, nil
}

// Send writes a request as it is (see Request and Lines).
func (c *Conn) Send(req string) error {
	c.SetDeadline(time.Now().Add(Timeout))
	_, err := io.WriteString(c.Conn, req)
	return err
}

// Reply reads the one-line reply to a call request (init, start, stop,
// terminate), without its "\r\n".
func (c *Conn) Reply() (string, error) {
	c.SetReadDeadline(time.Now().Add(Timeout))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading reply: %w (got %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("reply line without \\r\\n: %q", line)
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// OperatorReply reads the reply to an operator request (debug): its
// lines, each with its "\r\n", up to the empty line that ends it (not
// included).
func (c *Conn) OperatorReply() (string, error) {
	var out bytes.Buffer
	for {
		line, err := c.Reply()
		if err != nil {
			return "", fmt.Errorf("%w after %q", err, out.String())
		}
		if line == "" {
			return out.String(), nil
		}
		out.WriteString(line + "\r\n")
	}
}

// ReadFull reads exactly n bytes of replies, as they are.
func (c *Conn) ReadFull(n int) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(Timeout))
	b := make([]byte, n)
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// Quiet fails if anything arrives within d.
func (c *Conn) Quiet(d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	if b, err := c.r.ReadByte(); err == nil {
		return fmt.Errorf("unexpected %q", b)
	}
	return nil
}

// WaitClosed waits until the server closes the connection; anything else
// arriving first is an error.
func (c *Conn) WaitClosed() error {
	c.SetReadDeadline(time.Now().Add(Timeout))
	b, err := c.r.ReadByte()
	if err == io.EOF {
		return nil
	}
	if err == nil {
		return fmt.Errorf("unexpected %q before the close", b)
	}
	return err
}

// Call sends a call request and returns its reply line.
func (c *Conn) Call(req string) (string, error) {
	if err := c.Send(req); err != nil {
		return "", err
	}
	return c.Reply()
}

// Operator sends an operator request and returns its reply (see
// OperatorReply).
func (c *Conn) Operator(req string) (string, error) {
	if err := c.Send(req); err != nil {
		return "", err
	}
	return c.OperatorReply()
}

// Call sends one call request on a new connection to path and returns its
// reply line.
func Call(path, req string) (string, error) {
	c, err := Dial(path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.Call(req)
}

// Operator sends one operator request on a new connection to path and
// returns its reply (see OperatorReply).
func Operator(path, req string) (string, error) {
	c, err := Dial(path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.Operator(req)
}

// Pool spreads requests over n connections, one request at a time on each,
// as a proxy whose workers each connected on their own. A broken
// connection is dropped and dialled again on the next request.
type Pool struct {
	path  string
	conns []pooled
	next  atomic.Uint64
}

type pooled struct {
	mu sync.Mutex
	c  *Conn
}

// NewPool returns a pool of n connections to path, dialled when first
// used.
func NewPool(path string, n int) *Pool {
	return &Pool{path: path, conns: make([]pooled, n)}
}

// Call sends a call request and returns its reply line.
func (p *Pool) Call(req string) (string, error) { return p.do(req, (*Conn).Call) }

// Operator sends an operator request and returns its reply.
func (p *Pool) Operator(req string) (string, error) { return p.do(req, (*Conn).Operator) }

func (p *Pool) do(req string, f func(*Conn, string) (string, error)) (string, error) {
	pc := &p.conns[p.next.Add(1)%uint64(len(p.conns))]
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.c == nil {
		c, err := Dial(p.path)
		if err != nil {
			return "", err
		}
		pc.c = c
	}
	reply, err := f(pc.c, req)
	if err != nil {
		pc.c.Close()
		pc.c = nil
	}
	return reply, err
}

// Close closes every connection.
func (p *Pool) Close() {
	for i := range p.conns {
		pc := &p.conns[i]
		pc.mu.Lock()
		if pc.c != nil {
			pc.c.Close()
			pc.c = nil
		}
		pc.mu.Unlock()
	}
}
