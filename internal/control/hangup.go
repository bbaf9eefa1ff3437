package control

import (
	"context"
	"net"
	"time"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// aLongTimeAgo is a read deadline already passed: it wakes a wait on the
// connection.
var aLongTimeAgo = time.Unix(1, 0)

// watchHangup gives a long answer on c (a sessions listing, which may wait
// for the daemon's listing slot and then walks the whole table) a context
// cancelled when the client closes its end of the connection or the server
// stops: the daemon stops waiting, or walking, for nobody, and frees the
// slot for the operators behind it. A write failing would tell only once
// the first 64 KB leave.
//
// The watch waits on the socket for its hang-up, reading nothing: nothing
// else reads c meanwhile (the handler reads the next request only after
// the answer), and a request the client sent ahead stays for that read.
// stop ends the watch and returns once its goroutine has; c's read
// deadline is then passed: the caller sets it before reading again.
func (s *Server) watchHangup(c net.Conn) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(s.ctx)
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx, cancel
	}
	// The idle deadline set for reading the request must not end the
	// watch of a long listing.
	uc.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go awaitHangup(uc, cancel, done)
	return ctx, func() {
		uc.SetReadDeadline(aLongTimeAgo)
		<-done
		cancel()
	}
}

// awaitHangup cancels when the client of c goes, until c's read deadline
// passes or c is closed; it closes done when it returns.
func awaitHangup(c *net.UnixConn, cancel context.CancelFunc, done chan<- struct{}) {
	defer close(done)
	if unixsock.PeerGone(c, true) {
		cancel()
	}
}
