package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// The page, its script and its style live in the binary: no CDN, nothing
// to install beside the daemon.
//
//go:embed assets
var assetFS embed.FS

func (s *Server) assets(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	sub, _ := fs.Sub(assetFS, "assets")
	w.Header().Set("Cache-Control", "no-cache")
	http.StripPrefix("/assets/", http.FileServerFS(sub)).ServeHTTP(w, r)
}

// timeLayout is the CLI's (cmd/callcontrol): a time says its date and
// zone, so an operator comparing with logs, `callcontrol sessions` or
// another host need not guess them.
const timeLayout = "2006-01-02 15:04:05 MST"

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"duration": formatSeconds,
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format(timeLayout)
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"stateLabel": stateLabel,
	"limit": func(n int) string {
		if n < 0 {
			return "none"
		}
		return formatSeconds(n)
	},
}).ParseFS(assetFS, "assets/page.html"))

// formatSeconds renders a limit or remaining time: -1 is "none".
func formatSeconds(n int) string {
	if n < 0 {
		return "—"
	}
	h, m, sec := n/3600, n/60%60, n%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

func stateLabel(st string) string {
	if st == "in-progress" {
		return "in progress"
	}
	return st
}

type pageData struct {
	Filter   filter
	Sessions []control.SessionInfo
	Stats    control.Stats
	Token    string
	// Confirm is the call a script-less terminate asks about; Result is
	// what a terminate did.
	Confirm *control.SessionInfo
	Result  *terminated
	Chips   []chip
	Count   string
	// Limit is the page's own ?limit=, kept by the filter form (0: the
	// default).
	Limit int
	Now   string
}

// chip is one piece of the daemon's health in the page's header; app.js
// computes the same from /api/v1/stats.
type chip struct{ ID, Label, Value, Class string }

func chips(st control.Stats) []chip {
	up := enginesUp(st)
	engines := chip{ID: "engines", Label: "Rating engines", Value: fmt.Sprintf("%d/%d up", up, st.EnginesTotal), Class: "good"}
	switch {
	case st.EnginesTotal == 0:
		engines.Value, engines.Class = "none (all calls postpaid)", "muted"
	case up == 0:
		engines.Class = "bad"
	case up < st.EnginesTotal:
		engines.Class = "warn"
	}
	dialogs := chip{ID: "dialogs", Label: "Dialog ends pending", Value: fmt.Sprint(st.DialogEndsPending), Class: "good"}
	if st.DialogEndsPending > 0 {
		dialogs.Class = "warn"
	}
	debits := chip{ID: "debits", Label: "Debits waiting", Value: fmt.Sprint(st.DebitsWaiting), Class: "good"}
	if st.DebitsWaiting > 0 {
		debits.Class = "warn"
	}
	state := chip{ID: "statelog", Label: "State log", Value: fmt.Sprintf("durable, fsync %.1f ms", st.StateLastSyncMS), Class: "good"}
	switch {
	case st.StateWriteErrors > 0:
		state.Value, state.Class = fmt.Sprintf("%d write errors", st.StateWriteErrors), "bad"
	case !st.StateSync:
		state.Value, state.Class = "not fsynced (sync = no)", "warn"
	}
	return []chip{engines, dialogs, debits, state}
}

// enginesUp counts the engines not unreachable: an idle one (connection
// dropped, reopened by the next prepaid call) is up, as
// callcontrol_engine_up says; EnginesUp counts open connections only.
func enginesUp(st control.Stats) int {
	if len(st.Engines) == 0 {
		return st.EnginesUp
	}
	up := 0
	for _, e := range st.Engines {
		if e.State != control.EngineUnreachable {
			up++
		}
	}
	return up
}

// countLine says how many calls are shown and tracked; matched is how many
// match the filter (more than shown when the limit cut the list).
func countLine(shown, matched int, st control.Stats, filtered bool) string {
	total := st.Sessions["pending"] + st.Sessions["in-progress"]
	calls := func(n int) string {
		if n == 1 {
			return "1 call"
		}
		return fmt.Sprintf("%d calls", n)
	}
	line := fmt.Sprintf("%s: %d in progress, %d pending, %d parties", calls(total), st.Sessions["in-progress"], st.Sessions["pending"], st.Parties)
	switch {
	case shown < matched:
		line = fmt.Sprintf("%d oldest shown of %d matching; %s", shown, matched, line)
	case filtered:
		line = fmt.Sprintf("%d shown of %s", shown, line)
	}
	return line
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	d.Token = s.csrfToken()
	d.Stats = s.opts.Backend.Stats()
	matched := len(d.Sessions)
	if d.Sessions == nil && d.Confirm == nil {
		// A bad ?limit= shows the default: the page has no error to show it in.
		limit, err := limitFrom(r)
		if err != nil {
			limit = defaultLimit
		}
		if limit != defaultLimit {
			d.Limit = limit
		}
		l, err := d.Filter.sessions(r.Context(), s.opts.Backend, limit)
		if s.clientGone(r, err) {
			return
		}
		if err != nil {
			s.log.Warn("http: page: listing sessions", "err", err)
		}
		d.Sessions = l.Sessions
		matched = l.total(func() control.Stats { return d.Stats })
	}
	d.Chips = chips(d.Stats)
	d.Count = countLine(len(d.Sessions), matched, d.Stats, d.Filter != filter{})
	d.Now = time.Now().Format("15:04:05 MST")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, d); err != nil {
		s.log.Warn("http: page", "err", err)
	}
}

// page is the live calls page. Without JavaScript it refreshes itself
// every few seconds; with it, app.js updates it in place.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	s.render(w, r, http.StatusOK, pageData{Filter: filterFrom(r)})
}

// terminateForm is the page's terminate button. Without JavaScript the
// first POST shows a confirmation and the second (confirm=yes) acts; the
// script confirms in the page and posts with confirm=yes, asking for JSON.
func (s *Server) terminateForm(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, control.CodeBadRequest, "malformed form: "+err.Error())
		return
	}
	if !s.validToken(r.PostFormValue("token")) {
		s.log.Warn("http: terminate without a valid form token refused", "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, control.CodeDenied, "form token missing or stale: reload the page and try again")
		return
	}
	callID := r.PostFormValue("call_id")
	wantJSON := r.Header.Get("Accept") == "application/json"
	if callID == "" {
		writeError(w, http.StatusBadRequest, control.CodeBadRequest, "call_id is required")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		info, ok := s.opts.Backend.Session(callID)
		if !ok {
			res := terminated{CallID: callID, Message: notFound(callID)}
			s.render(w, r, http.StatusNotFound, pageData{Result: &res, Filter: filterFrom(r)})
			return
		}
		s.render(w, r, http.StatusOK, pageData{Confirm: &info})
		return
	}
	res := s.terminate(r, callID)
	status := res.status()
	failed := res.Outcome == control.TerminateFailed
	switch {
	case !res.found:
		status = http.StatusNotFound
	case failed:
		status = http.StatusInternalServerError
	}
	if wantJSON {
		if !res.found {
			writeError(w, status, control.CodeNotFound, res.Message)
			return
		}
		if failed {
			writeError(w, status, control.CodeFailed, res.Message)
			return
		}
		writeJSON(w, status, res)
		return
	}
	s.render(w, r, status, pageData{Result: &res, Filter: filterFrom(r)})
}
