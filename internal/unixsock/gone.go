package unixsock

import (
	"net"

	"golang.org/x/sys/unix"
)

// PeerGone reports whether the process at the other end of c has closed
// its end (or shut it down both ways, or the connection failed): nothing
// written to c reaches anyone any more. A long answer (a listing) stops
// early then instead of being worked off for nobody.
//
// The kernel's hang-up flag (POLLHUP) says it, not a peek at the stream:
// a peer that only shut down its sending side, as a script's
// `echo '{"cmd":"sessions"}' | socat - UNIX-CONNECT:...` does after its
// request, still reads its answer; and requests a peer sent ahead,
// not read yet, do not hide that it closed.
//
// Without wait it answers at once. With wait it returns once the peer is
// gone (true), or when c's read deadline passes or c is closed (false); it
// reads nothing, so nothing else may read c meanwhile.
func PeerGone(c *net.UnixConn, wait bool) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	raw.Read(func(fd uintptr) bool {
		// POLLHUP and POLLERR are reported whatever is asked for.
		fds := []unix.PollFd{{Fd: int32(fd)}}
		n, err := unix.Poll(fds, 0)
		for err == unix.EINTR {
			n, err = unix.Poll(fds, 0)
		}
		gone = err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
		// false: wait until the socket has news (data, a shutdown, the
		// hang-up) and look again.
		return gone || !wait
	})
	return gone
}
