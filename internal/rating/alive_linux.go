//go:build linux

package rating

import (
	"errors"
	"net"
	"syscall"
)

// peerAlive peeks at an idle connection without blocking: EOF or an error
// means the engine closed it; pending bytes other than stray newlines mean
// the framing is lost. Either way the connection must not carry a request.
func peerAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		buf  [64]byte
		n    int
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait: this is a check, not a read
	})
	if err != nil {
		return false
	}
	if rerr != nil {
		return errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR)
	}
	if n == 0 {
		return false // orderly shutdown by the engine
	}
	for _, b := range buf[:n] {
		if b != '\n' && b != '\r' {
			return false
		}
	}
	return true
}
