package daemon

import (
	"log/slog"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// proxyDoor answers the proxy socket. Its group lets the proxy in for
// init, start and stop; the original's operator commands on it (debug,
// terminate) list phone numbers and end calls, so they are served only to
// whom the control socket would serve (root, the daemon's user,
// control_group), logged with the caller's uid, and can be switched off.
type proxyDoor struct {
	calls  session.Handler
	access control.Access
	legacy bool // legacy_commands
	log    *slog.Logger
}

func (p *proxyDoor) Handle(r *proxy.Request, received time.Time) string {
	if r.Command != "debug" && r.Command != "terminate" {
		return p.calls.Handle(r, received)
	}
	var peer *unixsock.Cred
	if r.Client != nil {
		peer = r.Client.Cred
	}
	uid := int64(-1)
	if peer != nil {
		uid = int64(peer.UID)
	}
	if !p.legacy {
		p.log.Warn("proxy socket: operator command refused: legacy_commands = no", "command", r.Command, "uid", uid)
		return "Error: " + r.Command + " is switched off on this socket (legacy_commands = no); use callcontrol\r\n"
	}
	if peer == nil {
		p.log.Warn("proxy socket: operator command refused: peer credentials unknown", "command", r.Command)
		return "Error: permission denied: cannot read peer credentials\r\n"
	}
	if err := p.access.Allowed(peer.UID, peer.GID); err != nil {
		p.log.Warn("proxy socket: operator command refused", "command", r.Command, "uid", uid, "pid", peer.PID, "callid", r.CallID, "reason", err.Error())
		return "Error: " + err.Error() + "\r\n"
	}
	reply := p.calls.Handle(r, received)
	if r.Command == "terminate" {
		p.log.Info("proxy socket: terminate by operator", "uid", uid, "callid", r.CallID, "reply", firstLine(reply))
	} else {
		p.log.Info("proxy socket: debug", "uid", uid, "show", r.Show, "user", r.User, "callid", r.CallID)
	}
	return reply
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

func newProxyDoor(cfg *config.Config, m *session.Manager, log *slog.Logger) *proxyDoor {
	cc := cfg.CallControl
	// A control_group that does not exist is logged by the control
	// socket; the rule then admits root and the daemon's user only.
	access, _ := control.LookupAccess(cc.ControlGroup)
	return &proxyDoor{calls: session.Handler{M: m}, access: access, legacy: cc.LegacyCommands, log: log}
}
