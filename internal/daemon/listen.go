package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// listenProxySocket opens the proxy socket. A socket another daemon is
// serving is never stolen: if a connection to it succeeds, starting fails.
// A stale socket file (nobody listening) is replaced.
func listenProxySocket(path, group string, log *slog.Logger) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("[CallControl] socket = %q: %w", path, err)
	}
	if err := unixsock.Reclaim(path); err != nil {
		if errors.Is(err, unixsock.ErrInUse) {
			return nil, fmt.Errorf("socket %s is in use by another running callcontrold; stop it first (or set another [CallControl] socket)", path)
		}
		return nil, fmt.Errorf("[CallControl] socket = %q: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("[CallControl] socket = %q: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	mode := os.FileMode(0o660)
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			log.Warn("proxy socket group does not exist: the socket is world-writable (0666); set [CallControl] group to the proxy's group", "group", group, "socket", path)
			mode = 0o666
		} else {
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			log.Warn("cannot give the proxy socket to its group: the proxy may not be able to connect", "socket", path, "group", group, "err", err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("[CallControl] socket = %q: %w", path, err)
	}
	return ln, nil
}
