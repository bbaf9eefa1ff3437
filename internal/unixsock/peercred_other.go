//go:build !linux

package unixsock

import (
	"errors"
	"net"
)

// Cred is a peer's credentials.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// PeerCred is Linux-only: elsewhere it always fails, so peers are refused.
func PeerCred(*net.UnixConn) (Cred, error) {
	return Cred{}, errors.New("peer credentials are only supported on Linux")
}
