package control

import (
	"net"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// peerCred reads the connecting process's credentials (SO_PEERCRED): the
// kernel fills them in at connect time, so they cannot be forged.
func peerCred(c *net.UnixConn) (*unixsock.Cred, error) {
	cred, err := unixsock.PeerCred(c)
	if err != nil {
		return nil, err
	}
	return &cred, nil
}
