package proxy_test

import (
	"log/slog"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
)

// emfileListener fails every Accept as a process out of file descriptors
// does, until closed.
type emfileListener struct{ closed chan struct{} }

func (l emfileListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: net.ErrClosed}
	default:
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: syscall.EMFILE}
	}
}
func (l emfileListener) Close() error   { close(l.closed); return nil }
func (l emfileListener) Addr() net.Addr { return &net.UnixAddr{Name: "emfile", Net: "unix"} }

// A proxy socket that accepts nothing says so, for the readiness check:
// the daemon runs, but a proxy that connects is not served.
func TestServerSaysWhenItAcceptsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := proxy.NewServer(emfileListener{closed: make(chan struct{})}, nil, slog.New(slog.DiscardHandler), false)
		if since, _ := srv.AcceptFailing(); !since.IsZero() {
			t.Fatal("failing before serving")
		}
		began := time.Now()
		done := make(chan struct{})
		go func() { srv.Serve(); close(done) }()
		time.Sleep(time.Second)
		if since, err := srv.AcceptFailing(); !since.Equal(began) || err == nil {
			t.Fatalf("accept failing since %v (want %v), err %v", since, began, err)
		}
		srv.Close()
		<-done
	})
}
