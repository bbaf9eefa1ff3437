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
	"strings"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// listenProxySocket opens the proxy socket, mode 0660 in group: never open
// to everyone, so a group that does not exist stops the start. A socket
// another daemon is serving is never stolen: if a connection to it
// succeeds, starting fails. A stale socket file (nobody listening) is
// replaced.
func listenProxySocket(cc config.CallControl, log *slog.Logger) (net.Listener, error) {
	path := cc.Socket
	// Without its group the proxy could not connect, and a socket open
	// to everyone would hand every local user the proxy's commands.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("[CallControl] socket = %q: %w", path, err)
	}
	group, gid, err := proxySocketGroup(cc, log)
	if err != nil {
		return nil, err
	}
	ln, err := unixsock.Listen(path, 0o660, gid)
	if errors.Is(err, unixsock.ErrGroup) {
		// Still 0660, in the daemon's own group: closed to everyone else.
		log.Warn("cannot give the proxy socket to its group: the proxy may not be able to connect", "socket", path, "group", group, "err", err)
		ln, err = unixsock.Listen(path, 0o660, -1)
	}
	if errors.Is(err, unixsock.ErrInUse) {
		return nil, fmt.Errorf("socket %s is in use by another running callcontrold; stop it first (or set another [CallControl] socket)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("[CallControl] socket = %q: %w", path, err)
	}
	return ln, nil
}

// proxySocketGroup resolves [CallControl] group as the proxy socket gets
// it: the group and its gid (-1: leave as is), or why the start must stop.
// --check-config asks it too, so it refuses what the start would.
func proxySocketGroup(cc config.CallControl, log *slog.Logger) (string, int, error) {
	group := cc.Group
	if group == "" {
		return "", -1, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil && cc.GroupDefault {
		// Not set in the file: the group of the proxy installed here.
		if found := proxyGroups(); len(found) > 0 {
			log.Info("[CallControl] group not set: using the installed proxy's group", "group", found[0], "default", group)
			group = found[0]
			g, err = user.LookupGroup(group)
		}
	}
	switch {
	case err != nil && cc.GroupDefault:
		return "", -1, fmt.Errorf("[CallControl] group is not set and neither opensips nor kamailio is a group here: set it to the group the proxy runs as")
	case err != nil:
		return "", -1, fmt.Errorf("[CallControl] group = %q: no such group; %s", group, proxyGroupsHint())
	}
	gid, _ := strconv.Atoi(g.Gid)
	return group, gid, nil
}

// proxyGroups lists the groups of the supported proxies' packages that
// exist here.
func proxyGroups() []string {
	var found []string
	for _, g := range []string{"opensips", "kamailio"} {
		if _, err := user.LookupGroup(g); err == nil {
			found = append(found, g)
		}
	}
	return found
}

// proxyGroupsHint names the proxy groups that exist on this host.
func proxyGroupsHint() string {
	found := proxyGroups()
	if len(found) == 0 {
		return "neither opensips nor kamailio exists here: set it to the group the proxy runs as"
	}
	return "groups of an installed proxy: " + strings.Join(found, ", ")
}
