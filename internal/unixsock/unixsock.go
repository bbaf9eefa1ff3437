// Package unixsock reclaims the path of a Unix socket before a server binds
// it: a socket file left by a dead process is removed, one a live process
// still serves is never stolen. It also reads a peer's credentials, and
// tells whether a peer hung up.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrInUse is returned (wrapped) when a live server answers on the path.
var ErrInUse = errors.New("in use by a running process")

// Reclaim makes path free for a new listener: nothing there, or a stale
// socket file, which it removes. A socket is stale only when a connect to
// it is refused (nobody has it bound), whatever its type, stream or
// datagram; any other outcome leaves the file alone: a live server
// (ErrInUse, also when its backlog is full), a connect that cannot tell
// (e.g. permission denied), or a file that is not a socket.
func Reclaim(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	switch alive, err := served(path); {
	case alive:
		return fmt.Errorf("%s: %w", path, ErrInUse)
	case err != nil:
		return fmt.Errorf("%s: cannot tell whether a running process serves it, leaving it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// served connects to path as a stream socket, then as a datagram socket
// when the type is wrong. It reports true when something is bound there,
// false with a nil error when nothing is (ECONNREFUSED, or gone meanwhile).
func served(path string) (bool, error) {
	for _, network := range []string{"unix", "unixgram"} {
		c, err := net.DialTimeout(network, path, time.Second)
		if err == nil {
			c.Close()
			return true, nil
		}
		switch {
		case errors.Is(err, syscall.EPROTOTYPE):
			continue // a socket of the other type: try that one
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
			return false, nil
		case errors.Is(err, syscall.EAGAIN):
			return true, nil // a stream server with its backlog full
		default:
			return false, err
		}
	}
	return false, errors.New("neither a stream nor a datagram socket")
}
