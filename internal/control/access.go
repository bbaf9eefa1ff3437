package control

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Access is the control socket's rule for who may run operator commands:
// root, the daemon's own user, and members of one group (the peer
// process's primary group or the peer user's supplementary groups). The
// proxy socket's operator commands (debug, terminate) follow it too.
type Access struct {
	Group string // "" when no group is in force
	GID   int    // -1 when no group is in force
}

// LookupAccess returns the rule for group; a group that does not exist is
// an error, and the returned rule then admits root and the daemon's user.
func LookupAccess(group string) (Access, error) {
	a := Access{GID: -1}
	if group == "" {
		return a, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return a, err
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return a, err
	}
	return Access{Group: group, GID: gid}, nil
}

// Allowed says why the peer uid/gid may not run operator commands, or nil.
func (a Access) Allowed(uid, gid uint32) error {
	if uid == 0 || int64(uid) == int64(os.Getuid()) {
		return nil
	}
	if a.GID >= 0 {
		if int64(gid) == int64(a.GID) {
			return nil
		}
		if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
			if gids, err := u.GroupIds(); err == nil {
				want := strconv.Itoa(a.GID)
				for _, g := range gids {
					if g == want {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("permission denied: uid %d is not root, the daemon's user, or a member of group %s", uid, a.Group)
	}
	return fmt.Errorf("permission denied: uid %d is not root or the daemon's user (no control group configured)", uid)
}
