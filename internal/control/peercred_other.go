//go:build !linux

package control

import (
	"errors"
	"net"
)

// ucred mirrors the Linux credentials so the server compiles elsewhere.
type ucred struct {
	Pid      int32
	Uid, Gid uint32
}

// peerCred is Linux-only: elsewhere every peer is refused.
func peerCred(*net.UnixConn) (*ucred, error) {
	return nil, errors.New("peer credentials are only supported on Linux")
}
