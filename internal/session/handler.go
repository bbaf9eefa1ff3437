package session

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
)

// Handler answers the proxy socket's requests from the manager.
type Handler struct{ M *Manager }

// Handle implements proxy.Handler.
func (h Handler) Handle(r *proxy.Request, received time.Time) string {
	switch r.Command {
	case "init":
		return h.M.Init(&InitRequest{CallID: r.CallID, RURI: r.RURI, Diverter: r.Diverter, SourceIP: r.SourceIP,
			From: r.From, FromTag: r.FromTag, Prepaid: r.Prepaid, CallLimit: r.CallLimit, CallToken: r.CallToken,
			Application: r.Application}, received)
	case "start":
		if r.CallID == "" {
			return ReplyError
		}
		return h.M.Start(r.CallID, r.DialogID, received)
	case "stop":
		if r.CallID == "" {
			return ReplyError
		}
		return h.M.Stop(r.CallID)
	case "terminate":
		// An operator command: its reply ends with an empty line, like
		// debug's (the server adds the last "\r\n").
		if h.M.Terminate(r.CallID) {
			return ReplyOk + "\r\n"
		}
		return fmt.Sprintf("Call id %s does not exist\r\n", r.CallID)
	case "debug":
		return h.debug(r)
	}
	h.M.log.Warn("proxy socket: unknown command", "command", r.Command)
	return ReplyError
}

// debug answers the original's operator commands: lines ending in "\r\n";
// the server adds the final empty line.
func (h Handler) debug(r *proxy.Request) string {
	var b strings.Builder
	switch strings.ToLower(r.Show) {
	case "sessions":
		var lines []string
		if !h.M.Walk(r.Client.Gone, func(s *Session) {
			user := strings.TrimPrefix(s.Party, "sip:")
			if r.User == "" || strings.HasPrefix(user, r.User) {
				lines = append(lines, "Call id "+s.CallID+" of "+user+" to "+s.RURI+": "+s.State()+"\r\n")
			}
		}) {
			return "" // the asker went away: nobody reads the rest
		}
		sort.Strings(lines)
		for _, l := range lines {
			b.WriteString(l)
		}
	case "session":
		s, ok := h.M.Get(r.CallID)
		if !ok {
			return fmt.Sprintf("Call id %s does not exist\r\n", r.CallID)
		}
		for _, f := range Fields(&s, h.M.now()) {
			fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
		}
	default:
		return ReplyError
	}
	return b.String()
}

// Fields lists a session's fields for people, in a stable order.
func Fields(s *Session, now time.Time) [][2]string {
	t := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	secs := func(n int) string {
		if n == NoLimit {
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
