package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ErrGroup is returned (wrapped) when the socket cannot be given the group
// asked for (e.g. the daemon is not root and not in that group).
var ErrGroup = errors.New("cannot give the socket its group")

// listenBacklog is what the kernel caps at net.core.somaxconn, as Go's
// own listeners ask.
const listenBacklog = 1<<16 - 1

// Listen serves a Unix stream socket at path with the given mode and, when
// gid >= 0, group. A stale socket file there is replaced, one a live process
// serves is not (see Reclaim). The file is removed when the listener closes.
//
// Nobody can connect while the file is more open than asked: the socket is
// bound (which creates the file under the process's umask), given its
// group and mode, and only then put to listen; until listen, a connect is
// refused. The umask itself is process-wide and so cannot be changed
// safely in a daemon with other goroutines.
func Listen(path string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	f, err := bind(path, syscall.SOCK_STREAM, mode, gid, func(fd int) error {
		return os.NewSyscallError("listen", syscall.Listen(fd, listenBacklog))
	})
	if err != nil {
		return nil, err
	}
	defer f.Close() // FileListener holds its own copy
	ln, err := net.FileListener(f)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return ul, nil
}

// ListenPacket binds a Unix datagram socket at path with the given mode and,
// when gid >= 0, group, replacing a stale socket file as Listen does. The
// caller removes the file after closing the socket (a datagram socket's
// file stays behind). A datagram socket receives as soon as it is bound, so
// anything that arrived before the mode was in force is discarded.
func ListenPacket(path string, mode os.FileMode, gid int) (*net.UnixConn, error) {
	f, err := bind(path, syscall.SOCK_DGRAM, mode, gid, drain)
	if err != nil {
		return nil, err
	}
	defer f.Close() // FilePacketConn holds its own copy
	c, err := net.FilePacketConn(f)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// bind reclaims path, binds a new socket of type typ there, gives the file
// its group and mode, then calls ready before anyone is let in.
func bind(path string, typ int, mode os.FileMode, gid int, ready func(fd int) error) (*os.File, error) {
	if err := Reclaim(path); err != nil {
		return nil, err
	}
	syscall.ForkLock.RLock() // no child may inherit fd before it is close-on-exec
	fd, err := syscall.Socket(syscall.AF_UNIX, typ, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		// Not ours to remove: e.g. another process bound it since Reclaim.
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	fail := func(err error) (*os.File, error) {
		syscall.Close(fd)
		os.Remove(path)
		return nil, err
	}
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			return fail(fmt.Errorf("%w %d: %w", ErrGroup, gid, err))
		}
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		return fail(err)
	}
	if err := ready(fd); err != nil {
		return fail(err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// drain discards the datagrams queued on fd.
func drain(fd int) error {
	var b [1]byte
	for {
		if _, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_DONTWAIT); err != nil {
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return nil
			}
			return os.NewSyscallError("recvfrom", err)
		}
	}
}
