package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/callcontrol/callcontrol/internal/control"
)

// Exit statuses of cmd/callcontrol, carried in JSON errors so a script can
// treat the API and the CLI alike.
const (
	exitNotFound    = 1
	exitUnreachable = 2 // also: access refused
	exitFailed      = 3
	exitUsage       = 64
)

// apiError is the body of every failed API request.
type apiError struct {
	OK         bool   `json:"ok"`
	Code       string `json:"code"`        // control's codes: not_found, denied, bad_request, failed
	ExitStatus int    `json:"exit_status"` // what `callcontrol` exits with for the same failure
	Error      string `json:"error"`
}

func exitStatus(code string) int {
	switch code {
	case control.CodeNotFound:
		return exitNotFound
	case control.CodeDenied, control.CodeBusy:
		return exitUnreachable
	case control.CodeBadRequest:
		return exitUsage
	}
	return exitFailed
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, ExitStatus: exitStatus(code), Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Code: control.CodeFailed, ExitStatus: exitFailed, Error: "cannot encode reply: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// filter selects sessions the way the page's filter does: party by prefix
// (like `callcontrol sessions PREFIX`, with or without "sip:"), state
// exactly.
type filter struct {
	Party string
	State string
}

func filterFrom(r *http.Request) filter {
	q := r.URL.Query()
	party := q.Get("party")
	if party == "" {
		party = q.Get("prefix")
	}
	st := q.Get("state")
	if st != "pending" && st != "in-progress" {
		st = ""
	}
	return filter{Party: strings.TrimSpace(party), State: st}
}

// The page and the API show at most limit sessions, the oldest: a page of
// 1,000,000 rows helps nobody, and what a request holds stays bounded
// (`callcontrol sessions` streams any number).
const (
	defaultLimit = 1000
	maxLimit     = 10000
)

// limitFrom reads ?limit=N (1..maxLimit; defaultLimit when absent).
func limitFrom(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("limit %q: a number of sessions from 1 to %d (callcontrol sessions lists any number)", v, maxLimit)
	}
	return n, nil
}

// listing is what a request shows: the oldest limit sessions matching the
// filter, and how many match.
type listing struct {
	Sessions []control.SessionInfo
	// Matched counts the sessions matching; -1 when the walk stopped
	// at limit without a party filter (the count is then the table's
	// size, or its count in that state, known from Stats without
	// walking on).
	Matched int
	// State is the state filter, for total.
	State string
}

// errEnough ends a walk that has all it needs.
var errEnough = errors.New("enough sessions")

// sessions lists for a request: ctx is the request's, so a client that
// goes away while the listing waits for the daemon's one listing slot (or
// walks) stops it.
func (f filter) sessions(ctx context.Context, b control.Backend, limit int) (listing, error) {
	l := listing{Sessions: make([]control.SessionInfo, 0, min(limit, 256)), State: f.State}
	err := b.Sessions(ctx, f.Party, func(chunk []control.SessionInfo) error {
		for _, s := range chunk {
			if f.State != "" && s.State != f.State {
				continue
			}
			if len(l.Sessions) == limit && f.Party == "" {
				return errEnough
			}
			l.Matched++
			if len(l.Sessions) < limit {
				l.Sessions = append(l.Sessions, s)
			}
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		l.Matched, err = -1, nil
	}
	return l, err
}

// total is how many sessions match: Matched, or the table's size (in the
// filter's state).
func (l listing) total(st func() control.Stats) int {
	if l.Matched >= 0 {
		return l.Matched
	}
	s := st().Sessions
	n := s["pending"] + s["in-progress"]
	if l.State != "" {
		n = s[l.State]
	}
	return max(n, len(l.Sessions))
}

// apiSessions lists sessions: the same JSON as `callcontrol --json
// sessions`, the oldest ?limit= of them; X-Total-Count says how many match.
func (s *Server) apiSessions(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	limit, err := limitFrom(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, control.CodeBadRequest, err.Error())
		return
	}
	l, err := filterFrom(r).sessions(r.Context(), s.opts.Backend, limit)
	if s.clientGone(r, err) {
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, control.CodeFailed, "listing sessions: "+err.Error())
		return
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(l.total(s.opts.Backend.Stats)))
	writeJSON(w, http.StatusOK, l.Sessions)
}

// apiSession shows (GET) or terminates (DELETE) one session.
func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodDelete) {
		return
	}
	// As it came, not cleaned: "x/../y" is a Call-ID, not a way to "y".
	callID := strings.TrimPrefix(r.URL.Path, sessionPrefix)
	if callID == "" {
		writeError(w, http.StatusBadRequest, control.CodeBadRequest, "a call id is required: /api/v1/sessions/{callid}")
		return
	}
	if r.Method == http.MethodDelete {
		res := s.terminate(r, callID)
		switch {
		case !res.found:
			writeError(w, http.StatusNotFound, control.CodeNotFound, res.Message)
		case res.Outcome == control.TerminateFailed:
			writeError(w, http.StatusInternalServerError, control.CodeFailed, res.Message)
		default:
			writeJSON(w, res.status(), res)
		}
		return
	}
	info, ok := s.opts.Backend.Session(callID)
	if !ok {
		writeError(w, http.StatusNotFound, control.CodeNotFound, notFound(callID))
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// apiStats is the same JSON as `callcontrol --json stats`.
func (s *Server) apiStats(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Backend.Stats())
}

// clientGone says whether err ended a listing because the client went
// away: nobody reads an answer, and the listing was not served.
func (s *Server) clientGone(r *http.Request, err error) bool {
	if err == nil || r.Context().Err() == nil {
		return false
	}
	s.log.Debug("http: client went away before its listing was done", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
	return true
}

func notFound(callID string) string { return fmt.Sprintf("call id %s does not exist", callID) }

// terminated says what a terminate did: the fields of `callcontrol --json
// terminate`, and the same sentence the CLI prints.
type terminated struct {
	CallID string `json:"call_id"`
	// Outcome is one of control.Terminate*: ended, gone, at_answer, pending.
	Outcome string `json:"outcome,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Terminated is true when the call is over: the proxy ended it, or it
	// had already ended.
	Terminated bool   `json:"terminated"`
	Message    string `json:"message"`
	found      bool
}

// terminate ends a call and says, truthfully, what that did.
func (s *Server) terminate(r *http.Request, callID string) terminated {
	ti, known := s.opts.Backend.Terminate(callID)
	if !known {
		s.log.Info("http: terminate of unknown call", "remote", r.RemoteAddr, "callid", callID)
		return terminated{CallID: callID, Message: notFound(callID)}
	}
	s.log.Info("http: terminate by operator", "remote", r.RemoteAddr, "user", user(r), "callid", callID, "outcome", ti.Outcome)
	res := terminated{CallID: callID, Outcome: ti.Outcome, Detail: ti.Detail, found: true,
		Terminated: ti.Outcome == control.TerminateEnded || ti.Outcome == control.TerminateGone}
	switch ti.Outcome {
	case control.TerminateEnded:
		res.Message = fmt.Sprintf("Call %s ended: the proxy confirmed and sends BYE (or CANCEL) to both ends.", callID)
	case control.TerminateGone:
		res.Message = fmt.Sprintf("Call %s had already ended: %s.", callID, ti.Detail)
	case control.TerminateAtAnswer:
		res.Message = fmt.Sprintf("Call %s is still ringing: it will be ended the moment it is answered (the proxy cannot end it before).", callID)
	case control.TerminateFailed:
		res.Message = fmt.Sprintf("Call %s was not ended: %s.", callID, ti.Detail)
	default:
		detail := ti.Detail
		if detail == "" {
			detail = "-"
		}
		res.Message = fmt.Sprintf("Call %s: asked the proxy to end it, not confirmed yet: %s.", callID, detail)
	}
	return res
}

// status is a terminate's HTTP status when the call is known and the end
// did not fail: 202 Accepted while the proxy has not confirmed (the CLI
// exits 3 for it: asked, kept and re-sent, not done yet).
func (t terminated) status() int {
	if t.Outcome == control.TerminatePending {
		return http.StatusAccepted
	}
	return http.StatusOK
}

func user(r *http.Request) string {
	u, _, _ := r.BasicAuth()
	return u
}
