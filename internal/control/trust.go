package control

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// DaemonUser is the account the packaged daemon runs as.
const DaemonUser = "callcontrol"

// UntrustedError says the control socket is served by a process that is
// not the daemon's: in a runtime directory others can write, another user
// may have put an impostor there, whose answers must not be shown as the
// daemon's.
type UntrustedError struct {
	Path     string
	UID      uint32
	PID      int32
	Unknown  error // set when the server's credentials could not be read
	Accepted string
}

func (e *UntrustedError) Error() string {
	if e.Unknown != nil {
		return fmt.Sprintf("%s: cannot tell who serves it (%v); not trusting its answers", e.Path, e.Unknown)
	}
	return fmt.Sprintf("%s is served by uid %d (pid %d), not by %s: not trusting its answers", e.Path, e.UID, e.PID, e.Accepted)
}

// checkServer accepts a control socket served by root, by the daemon's
// user (DaemonUser), or by the caller's own uid (a daemon the caller
// started; an impostor with the caller's uid could do anything the
// caller can anyway).
func checkServer(path string, c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return &UntrustedError{Path: path, Unknown: fmt.Errorf("not a Unix socket")}
	}
	cred, err := unixsock.PeerCred(uc)
	if err != nil {
		return &UntrustedError{Path: path, Unknown: err}
	}
	accepted := "root, " + DaemonUser + " or uid " + strconv.Itoa(os.Getuid())
	if cred.UID == 0 || int64(cred.UID) == int64(os.Getuid()) {
		return nil
	}
	if u, err := user.Lookup(DaemonUser); err == nil && u.Uid == strconv.FormatUint(uint64(cred.UID), 10) {
		return nil
	}
	return &UntrustedError{Path: path, UID: cred.UID, PID: cred.PID, Accepted: accepted}
}
