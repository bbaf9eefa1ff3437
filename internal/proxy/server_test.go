package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
)

func limits(limit int) session.Limits {
	return session.Limits{Limit: limit, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply to %q: %v", req, err)
	}
	return line
}

func TestOversizedRequestGetsErrorThenClose(t *testing.T) {
	path, _ := startServer(t, limits(60), nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// The server may close before the whole request is written, so the
	// writer's error (EPIPE) is expected and ignored; only the reply counts.
	go io.WriteString(c, "init\r\nfrom: "+strings.Repeat("x", proxy.MaxRequestSize+10)+"\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := r.ReadString('\n'); got != "Error\r\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
	// The server still serves new connections.
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := roundTrip(t, c2, bufio.NewReader(c2), "stop\r\ncallid: x\r\n\r\n"); got != "Not found\r\n" {
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
			c, err := net.Dial("unix", path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for j := 0; j < calls; j++ {
				id := fmt.Sprintf("c%d-%d", i, j)
				for _, step := range []struct{ req, want string }{
					{"init\r\ncallid: " + id + "\r\nfrom: <sip:u" + fmt.Sprint(i) + "@x>\r\nruri: sip:d@x\r\n\r\n", "Limited\r\n"},
					{"start\r\ncallid: " + id + "\r\ndialogid: 1:2\r\n\r\n", "Ok\r\n"},
					{"stop\r\ncallid: " + id + "\r\n\r\n", "Ok\r\n"},
				} {
					io.WriteString(c, step.req)
					c.SetReadDeadline(time.Now().Add(30 * time.Second))
					got, err := r.ReadString('\n')
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
	slow, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "stop\r\ncallid: slow\r\n\r\n")

	fast, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	r := bufio.NewReader(fast)
	for i := 0; i < 10; i++ {
		if got := roundTrip(t, fast, r, "stop\r\ncallid: fast\r\n\r\n"); got != "Ok\r\n" {
			t.Fatalf("got %q", got)
		}
	}
	close(h.release)
	if got := roundTrip(t, slow, bufio.NewReader(slow), ""); got != "Ok\r\n" {
		t.Fatalf("slow: got %q", got)
	}
}
