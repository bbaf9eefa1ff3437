package proxy_test

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
)

// seen hands each request's Client to the test, then answers once the
// test says so.
type seen struct {
	clients chan *proxy.Client
	answer  chan string
}

func (s seen) Handle(r *proxy.Request, _ time.Time) string {
	s.clients <- r.Client
	return <-s.answer
}

// The server tells a handler who is asking (SO_PEERCRED) and whether
// the asker is still there: a listing for a client that hung up is not
// worked off.
func TestClientCredentialsAndGone(t *testing.T) {
	dir, err := os.MkdirTemp("", "peer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	h := seen{clients: make(chan *proxy.Client), answer: make(chan string)}
	srv := proxy.NewServer(ln, h, slog.New(slog.DiscardHandler), false)
	go srv.Serve()
	defer srv.Close()

	c := dial(t, path)
	c.Send("debug\r\nshow: sessions\r\n\r\n")
	cl := <-h.clients
	if cl.Cred == nil || int(cl.Cred.UID) != os.Getuid() || int(cl.Cred.PID) != os.Getpid() {
		t.Fatalf("credentials %+v", cl.Cred)
	}
	if cl.Gone() {
		t.Fatal("a client waiting for its answer is gone")
	}
	h.answer <- "Ok"
	if line, err := c.Reply(); err != nil || line != "Ok" {
		t.Fatalf("%q %v", line, err)
	}

	c.Send("debug\r\nshow: sessions\r\n\r\n")
	cl = <-h.clients
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !cl.Gone() {
		if time.Now().After(deadline) {
			t.Fatal("a client that hung up is not gone")
		}
		time.Sleep(time.Millisecond)
	}
	h.answer <- "Ok"

	var none *proxy.Client
	if none.Gone() {
		t.Fatal("an unknown client is gone")
	}
}
