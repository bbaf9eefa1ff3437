package unixsock

import (
	"net"
	"syscall"
)

// Cred is a peer's credentials, as the kernel recorded them at connect
// (or listen) time: they cannot be forged.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// PeerCred reads the credentials of the process at the other end of c
// (SO_PEERCRED): for a server, the client that connected; for a client,
// the process that listens.
func PeerCred(c *net.UnixConn) (Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if credErr != nil {
		return Cred{}, credErr
	}
	return Cred{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}, nil
}
