package daemon

import (
	"net"
	"time"
)

// sdNotify tells systemd (Type=notify) how the daemon is doing: READY=1
// once the proxy socket is served, RELOADING=1 then READY=1 around a
// reload, STOPPING=1 when it stops. The protocol is one datagram to
// $NOTIFY_SOCKET (sd_notify(3)); a leading "@" is an abstract socket, which
// Go's net package maps itself. Written here rather than imported: it is
// these few lines.
type sdNotify struct{ socket string }

// send is a no-op without a socket (not started by systemd). A failure is
// returned for the log, never fatal: systemd then times the start out,
// which says more than a daemon that refuses to run.
func (n sdNotify) send(state string) error {
	if n.socket == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = c.Write([]byte(state))
	return err
}
