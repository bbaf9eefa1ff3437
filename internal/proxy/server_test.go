package proxy_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/session"
)

func limits(limit int) session.Limits {
	return session.Limits{Limit: limit, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}
}

// roundTrip sends req and returns its reply line (which must end in
// "\r\n"), without the "\r\n".
func roundTrip(t *testing.T, c *proxytest.Conn, req string) string {
	t.Helper()
	line, err := c.Call(req)
	if err != nil {
		t.Fatalf("reply to %q: %v", req, err)
	}
	return line
}

func dial(t *testing.T, path string) *proxytest.Conn {
	t.Helper()
	c, err := proxytest.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOversizedRequestGetsErrorThenClose(t *testing.T) {
	path, _ := startServer(t, limits(60), nil)
	c := dial(t, path)
	// The server may close before the whole request is written, so the
	// writer's error (EPIPE) is expected and ignored; only the reply counts.
	go c.Send("init\r\nfrom: " + strings.Repeat("x", proxy.MaxRequestSize+10) + "\r\n\r\n")
	if got, err := c.Reply(); got != "Error" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := c.WaitClosed(); err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	// The server still serves new connections.
	if got := roundTrip(t, dial(t, path), "stop\r\ncallid: x\r\n\r\n"); got != "Not found" {
		t.Fatalf("got %q", got)
	}
}

func TestManyConnections(t *testing.T) {
	path, m := startServer(t, limits(600), nil)
	const conns, calls = 300, 20
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := proxytest.Dial(path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := 0; j < calls; j++ {
				id := fmt.Sprintf("c%d-%d", i, j)
				for _, step := range []struct{ req, want string }{
					{"init\r\ncallid: " + id + "\r\nfrom: <sip:u" + fmt.Sprint(i) + "@x>\r\nruri: sip:d@x\r\n\r\n", "Limited"},
					{"start\r\ncallid: " + id + "\r\ndialogid: 1:2\r\n\r\n", "Ok"},
					{"stop\r\ncallid: " + id + "\r\n\r\n", "Ok"},
				} {
					got, err := c.Call(step.req)
					if err != nil || got != step.want {
						errs <- fmt.Errorf("%s: got %q, %v; want %q", id, got, err, step.want)
						return
					}
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p, ip, _ := m.Counts(); p+ip != 0 {
		t.Errorf("sessions left: %d", p+ip)
	}
}

// slowHandler stalls requests for the Call-ID "slow".
type slowHandler struct{ release chan struct{} }

func (h slowHandler) Handle(r *proxy.Request, _ time.Time) string {
	if r.CallID == "slow" {
		<-h.release
	}
	return proxy.Ok
}

func TestSlowConnectionDelaysNoOther(t *testing.T) {
	h := slowHandler{release: make(chan struct{})}
	path, _ := startServer(t, limits(60), h)
	// Released before the server is closed (cleanups run last first): a
	// failure below must not leave Close waiting on the stalled request
	// until the test binary's timeout.
	var release sync.Once
	releaseSlow := func() { release.Do(func() { close(h.release) }) }
	t.Cleanup(releaseSlow)
	slow := dial(t, path)
	if err := slow.Send("stop\r\ncallid: slow\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	fast := dial(t, path)
	for i := 0; i < 10; i++ {
		if got := roundTrip(t, fast, "stop\r\ncallid: fast\r\n\r\n"); got != "Ok" {
			t.Fatalf("got %q", got)
		}
	}
	releaseSlow()
	if got, err := slow.Reply(); got != "Ok" {
		t.Fatalf("slow: got %q, %v", got, err)
	}
}
