package proxy_test

import (
	"strings"
	"testing"
	"time"
)

// A request followed in the same write by a stray empty line (which the
// parser skips between requests), or by the first bytes of the next
// request, must still be answered at once: a strictly request/reply client
// waits for that answer before it sends anything more.
func TestReplyNotWithheldByBufferedBytes(t *testing.T) {
	for _, tt := range []struct{ name, send string }{
		{"stray CRLF after the request", "stop\r\ncallid: x\r\n\r\n\r\n"},
		{"stray LF after the request", "stop\ncallid: x\n\n\n"},
		{"start of the next request in the same read", "stop\r\ncallid: x\r\n\r\nstop\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := startServer(t, limits(60), nil)
			c := dial(t, path)
			if err := c.Send(tt.send); err != nil {
				t.Fatal(err)
			}
			type reply struct {
				line string
				err  error
			}
			got := make(chan reply, 1)
			go func() {
				line, err := c.Reply()
				got <- reply{line, err}
			}()
			select {
			case r := <-got:
				if r.err != nil || r.line != "Not found" {
					t.Fatalf("got %q, %v; want \"Not found\"", r.line, r.err)
				}
			case <-time.After(5 * time.Second):
				c.Close()
				t.Fatal("no reply within 5 s: the server holds it until more bytes arrive")
			}
		})
	}
}

// An operator reply ends with an empty line (proxy-protocol.md), an error
// included: a client of the original reads up to it, and would otherwise
// wait for ever. "debug" with a show it does not know is such an error.
func TestOperatorErrorEndsWithEmptyLine(t *testing.T) {
	for _, req := range []string{
		"debug\r\nshow: nonsense\r\n\r\n",
		"debug\r\n\r\n",
	} {
		t.Run(req, func(t *testing.T) {
			path, _ := startServer(t, limits(60), nil)
			c := dial(t, path)
			if err := c.Send(req); err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 1)
			go func() {
				reply, err := c.OperatorReply()
				if err != nil {
					reply = "error: " + err.Error()
				}
				got <- reply
			}()
			select {
			case reply := <-got:
				if !strings.HasPrefix(reply, "Error") {
					t.Fatalf("reply %q, want an Error line then the empty line", reply)
				}
			case <-time.After(5 * time.Second):
				c.Close()
				t.Fatal("no empty line after the operator reply within 5 s")
			}
		})
	}
}
