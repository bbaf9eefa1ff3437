package proxy_test

import (
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
