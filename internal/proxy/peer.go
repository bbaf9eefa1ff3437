package proxy

import (
	"errors"
	"net"
	"syscall"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// clientOf describes the process on the other end of c: its credentials
// (nil when they cannot be read: not a Unix socket, or not Linux) and a
// check of whether it has closed its end.
func clientOf(c net.Conn) *Client {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return &Client{}
	}
	cl := &Client{}
	if cred, err := unixsock.PeerCred(uc); err == nil {
		cl.Cred = &cred
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return cl
	}
	buf := make([]byte, 1)
	cl.gone = func() bool {
		gone := false
		raw.Read(func(fd uintptr) bool {
			// Peek without waiting: 0 bytes is the client's end of
			// stream; EAGAIN (nothing yet) or data means it is there.
			n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			gone = (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
			return true
		})
		return gone
	}
	return cl
}
