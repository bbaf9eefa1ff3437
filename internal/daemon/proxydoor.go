package daemon

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unsafe"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// proxyDoor answers the proxy socket: the proxy package parses a request,
// Handle calls the session manager for it, and the manager's answer goes
// back as the line the module reads (proxy's words, see replyWords).
//
// The original's operator commands on this socket (debug, terminate) list
// phone numbers and end calls, so they are served only to whom the
// control socket would serve (root, the daemon's user, control_group),
// logged with the caller's uid, and can be switched off.
type proxyDoor struct {
	m      *session.Manager
	access control.Access
	legacy bool // legacy_commands
	log    *slog.Logger
}

func newProxyDoor(cfg *config.Config, m *session.Manager, log *slog.Logger) *proxyDoor {
	cc := cfg.CallControl
	// A control_group that does not exist is logged by the control
	// socket; the rule then admits root and the daemon's user only.
	access, _ := control.LookupAccess(cc.ControlGroup)
	return &proxyDoor{m: m, access: access, legacy: cc.LegacyCommands, log: log}
}

// ProxyHandler answers the proxy socket from m as the daemon does with
// legacy_commands = legacy and no control_group (the operator commands
// then serve root and the daemon's own user): ccbench measures the proxy
// path through it, and proxy's golden transcripts replay through it.
func ProxyHandler(m *session.Manager, legacy bool, log *slog.Logger) proxy.Handler {
	return &proxyDoor{m: m, access: control.Access{GID: -1}, legacy: legacy, log: log}
}

// replyWords are the module's words for the manager's answers.
var replyWords = [...]string{
	session.ReplyError:            proxy.Error,
	session.ReplyNoLimit:          proxy.NoLimit,
	session.ReplyLimited:          proxy.Limited,
	session.ReplyNoCredit:         proxy.NoCredit,
	session.ReplyLocked:           proxy.Locked,
	session.ReplyDuplicatedCallID: proxy.DuplicatedCallID,
	session.ReplyCallLimitReached: proxy.CallLimitReached,
	session.ReplyOk:               proxy.Ok,
	session.ReplyNotFound:         proxy.NotFound,
}

func words(r session.Reply) string {
	if int(r) < len(replyWords) {
		return replyWords[r]
	}
	return proxy.Error
}

// Handle implements proxy.Handler.
func (p *proxyDoor) Handle(r *proxy.Request, received time.Time) string {
	switch r.Command {
	case "init":
		return words(p.m.Init(&session.InitRequest{CallID: r.CallID, RURI: r.RURI, Diverter: r.Diverter, SourceIP: r.SourceIP,
			From: r.From, FromTag: r.FromTag, Prepaid: r.Prepaid, CallLimit: r.CallLimit, CallToken: r.CallToken,
			Application: r.Application}, received))
	case "start":
		if r.CallID == "" {
			return proxy.Error
		}
		return words(p.m.Start(r.CallID, r.DialogID, received))
	case "stop":
		if r.CallID == "" {
			return proxy.Error
		}
		return words(p.m.Stop(r.CallID))
	case "debug", "terminate":
		return p.operator(r, received)
	}
	p.log.Warn("proxy socket: unknown command", "command", r.Command)
	return proxy.Error
}

// operator serves debug and terminate to whom may use them. Their replies
// are lines ending in "\r\n"; the server adds the final empty line.
func (p *proxyDoor) operator(r *proxy.Request, received time.Time) string {
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
	if r.Command == "terminate" {
		reply := p.terminate(r.CallID)
		p.log.Info("proxy socket: terminate by operator", "uid", uid, "callid", r.CallID, "reply", firstLine(reply))
		return reply
	}
	p.log.Info("proxy socket: debug", "uid", uid, "show", r.Show, "user", r.User, "callid", r.CallID)
	return p.debug(r, received)
}

func (p *proxyDoor) terminate(callID string) string {
	switch p.m.Terminate(callID) {
	case session.TerminateRequested, session.TerminateAtAnswer:
		return proxy.Ok + "\r\n"
	case session.TerminateShuttingDown:
		return "Error: callcontrold is stopping\r\n"
	}
	return fmt.Sprintf("Call id %s does not exist\r\n", callID)
}

// debug answers the original's "debug show: sessions" and "debug show:
// session".
func (p *proxyDoor) debug(r *proxy.Request, now time.Time) string {
	switch strings.ToLower(r.Show) {
	case "sessions":
		return p.sessions(r)
	case "session":
		s, ok := p.m.Get(r.CallID)
		if !ok {
			return fmt.Sprintf("Call id %s does not exist\r\n", r.CallID)
		}
		var b strings.Builder
		for _, f := range sessionFields(&s, now) {
			fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
		}
		return b.String()
	}
	return proxy.Error + "\r\n" // an operator reply: the server adds the empty line that ends it
}

// sessions answers debug show: sessions, one line per session in the
// order they were set up, written outside the table's lock (WalkBrief).
func (p *proxyDoor) sessions(r *proxy.Request) string {
	b := make([]byte, 0, 96*p.m.Len()) // a typical line's length
	if !p.m.WalkBrief(r.Client.Gone, func(chunk []session.Brief) {
		for _, l := range chunk {
			user := strings.TrimPrefix(l.Party, "sip:")
			if r.User != "" && !strings.HasPrefix(user, r.User) {
				continue
			}
			state := "pending"
			if l.InProgress {
				state = "in-progress"
			}
			b = append(b, "Call id "...)
			b = append(b, l.CallID...)
			b = append(b, " of "...)
			b = append(b, user...)
			b = append(b, " to "...)
			b = append(b, l.RURI...)
			b = append(b, ": "...)
			b = append(b, state...)
			b = append(b, "\r\n"...)
		}
	}) || len(b) == 0 {
		return "" // nothing, or the asker went away: nobody reads an answer
	}
	// b is never written again: spare a copy of a reply that may be
	// megabytes long.
	return unsafe.String(&b[0], len(b))
}

// sessionFields lists a session's fields for people, in a stable order
// (debug show: session).
func sessionFields(s *session.Session, now time.Time) [][2]string {
	t := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	secs := func(n int) string {
		if n == session.NoLimit {
			return "None"
		}
		return fmt.Sprint(n)
	}
	dlg := "-"
	if s.HasDialog {
		dlg = s.Dialog.String()
	}
	return [][2]string{
		{"callid", s.CallID}, {"billing_party", s.Party}, {"ruri", s.RURI}, {"diverter", s.Diverter},
		{"sourceip", s.SourceIP}, {"fromtag", s.FromTag}, {"call_token", s.Token}, {"state", s.State()},
		{"prepaid", fmt.Sprint(s.Prepaid)}, {"engine", s.Engine}, {"dialogid", dlg},
		{"created", t(s.Created)}, {"answered", t(s.Answered)}, {"limit", secs(s.Limit)},
		{"ends", t(s.EndAt)}, {"remaining", secs(s.Remaining(now))},
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
