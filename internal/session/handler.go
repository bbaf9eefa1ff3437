package session

import (
	"fmt"
	"strings"
	"time"
	"unsafe"

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
		switch h.M.Terminate(r.CallID) {
		case TerminateRequested, TerminateAtAnswer:
			return ReplyOk + "\r\n"
		case TerminateShuttingDown:
			return "Error: callcontrold is stopping\r\n"
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
		return h.sessions(r)
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

// sessions answers debug show: sessions, one line per session in the
// order they were set up, by one listing at a time. Under the lock only
// what the lines need is copied, a chunk at a time (see eachChunked); the
// lines are written outside it, so the lock is held for a small part of
// the listing's work, and a listing thread the system preempts seldom
// holds it.
func (h Handler) sessions(r *proxy.Request) string {
	gone := r.Client.Gone
	if !h.M.acquireListing(gone) {
		return "" // the asker went away: nobody reads an answer
	}
	defer h.M.releaseListing()
	type row struct {
		callID, party, ruri string
		inProgress          bool
	}
	rows := make([]row, 0, listChunk)
	h.M.mu.Lock()
	n := len(h.M.calls)
	h.M.mu.Unlock()
	b := make([]byte, 0, 96*n) // a typical line's length
	if !h.M.eachChunked(gone, func(s *Session) {
		rows = append(rows, row{s.CallID, s.Party, s.RURI, s.InProgress()})
	}, func() {
		for _, l := range rows {
			user := strings.TrimPrefix(l.party, "sip:")
			if r.User != "" && !strings.HasPrefix(user, r.User) {
				continue
			}
			state := "pending"
			if l.inProgress {
				state = "in-progress"
			}
			b = append(b, "Call id "...)
			b = append(b, l.callID...)
			b = append(b, " of "...)
			b = append(b, user...)
			b = append(b, " to "...)
			b = append(b, l.ruri...)
			b = append(b, ": "...)
			b = append(b, state...)
			b = append(b, "\r\n"...)
		}
		clear(rows) // keep no strings of sessions gone meanwhile
		rows = rows[:0]
	}) || len(b) == 0 {
		return "" // nothing, or the asker went away: nobody reads an answer
	}
	// b is never written again: spare a copy of a reply that may be
	// megabytes long.
	return unsafe.String(&b[0], len(b))
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
