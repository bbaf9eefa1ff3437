// Package unixsock reclaims the path of a Unix stream socket before a
// server listens on it: a socket file left by a dead process is removed,
// one a live process still answers on is never stolen.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// ErrInUse is returned (wrapped) when a live server answers on the path.
var ErrInUse = errors.New("in use by a running process")

// Reclaim makes path free for a new listener: nothing there, or a stale
// socket file (nobody answers on it), which it removes. Anything else is
// an error: a live server (ErrInUse), or a file that is not a socket.
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
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}
