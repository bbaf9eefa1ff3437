package proxy

import (
	"net"

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
	cl := &Client{gone: func() bool { return unixsock.PeerGone(uc, false) }}
	if cred, err := unixsock.PeerCred(uc); err == nil {
		cl.Cred = &cred
	}
	return cl
}
