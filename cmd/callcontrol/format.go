package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// Output formatting lives here, apart from the socket, so golden files can
// pin it down.

// Times carry their zone: an operator comparing with logs or another
// host's output must not guess it.
const timeLayout = "2006-01-02 15:04:05 MST"

// formatSeconds renders a number of seconds as 1h02m03s, 2m03s or 3s; a
// negative number (the protocol's "none") as "-".
func formatSeconds(sec int) string {
	if sec < 0 {
		return "-"
	}
	h, m, s := sec/3600, sec/60%60, sec%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

func formatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format(timeLayout)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sortSessions orders sessions oldest first, so a listing reads as a log.
func sortSessions(list []control.SessionInfo) {
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].Created.Equal(list[j].Created) {
			return list[i].Created.Before(list[j].Created)
		}
		return list[i].CallID < list[j].CallID
	})
}

// writeSessionsTable prints an aligned table of sessions.
func writeSessionsTable(w io.Writer, list []control.SessionInfo, loc *time.Location) error {
	t := newSessionsTable(w, loc)
	for _, s := range list {
		if err := t.add(s); err != nil {
			return err
		}
	}
	return t.finish()
}

// writeSession prints one session as aligned "key: value" lines.
func writeSession(w io.Writer, s control.SessionInfo, now time.Time, loc *time.Location) error {
	duration := "-"
	if !s.Answered.IsZero() {
		duration = formatSeconds(int(now.Sub(s.Answered) / time.Second))
	}
	prepaid := "no"
	if s.Prepaid {
		prepaid = "yes"
	}
	rows := [][2]string{
		{"Call-ID", s.CallID},
		{"Party", orDash(s.Party)},
		{"Destination", orDash(s.Destination)},
		{"State", orDash(s.State)},
		{"Prepaid", prepaid},
		{"Rating engine", orDash(s.Engine)},
		{"Diverter", orDash(s.Diverter)},
		{"Source IP", orDash(s.SourceIP)},
		{"From tag", orDash(s.FromTag)},
		{"Dialog ID", orDash(s.DialogID)},
		{"Created", formatTime(s.Created, loc)},
		{"Answered", formatTime(s.Answered, loc)},
		{"Duration", duration},
		{"Limit", formatSeconds(s.Limit)},
		{"Remaining", formatSeconds(s.Remaining)},
	}
	if s.EndAtAnswer != "" {
		rows = append(rows, [2]string{"Ends at answer", s.EndAtAnswer})
	}
	if !s.EndRequested.IsZero() {
		rows = append(rows, [2]string{"Dialog end asked", fmt.Sprintf("%s (%s ago), not confirmed by the proxy yet",
			formatTime(s.EndRequested, loc), formatSeconds(int(now.Sub(s.EndRequested)/time.Second)))})
	}
	return writeKeyValues(w, rows)
}

// writeStats prints the daemon's summary.
func writeStats(w io.Writer, st control.Stats) error {
	total := 0
	states := make([]string, 0, len(st.Sessions))
	for state, n := range st.Sessions {
		total += n
		states = append(states, state)
	}
	sort.Strings(states)
	byState := make([]string, 0, len(states))
	for _, state := range states {
		byState = append(byState, fmt.Sprintf("%d %s", st.Sessions[state], state))
	}
	sessions := fmt.Sprint(total)
	if len(byState) > 0 {
		sessions += " (" + strings.Join(byState, ", ") + ")"
	}
	rows := [][2]string{
		{"Version", orDash(st.Version)},
		{"Uptime", formatSeconds(int(st.Uptime / time.Second))},
		{"Requests", fmt.Sprint(st.Requests)},
		{"Sessions", sessions},
		{"Parties", fmt.Sprint(st.Parties)},
		{"Rating engines up", fmt.Sprintf("%d of %d", st.EnginesUp, st.EnginesTotal)},
	}
	if st.EngineSource != "" || len(st.Engines) > 0 {
		rows = append(rows, [2]string{"Rating engines", engineStates(st)})
	}
	rows = append(rows,
		[2]string{"Prepaid refused", fmt.Sprint(st.PrepaidRefused)},
		[2]string{"Debits waiting", fmt.Sprint(st.DebitsWaiting)},
		[2]string{"Dialog ends pending", dialogEnds(st)},
	)
	if m := st.ManagementSocket; m != nil {
		rows = append(rows, [2]string{"Management socket", managementSocket(m)})
	}
	rows = append(rows, [2]string{"State log", stateLog(st)})
	if !st.StateNotDurableSince.IsZero() {
		rows = append(rows, [2]string{"State durable", fmt.Sprintf("NO: calls served from memory only since %s (%s)",
			st.StateNotDurableSince.UTC().Format(time.RFC3339), st.StateFault)})
	}
	if err := writeKeyValues(w, rows); err != nil {
		return err
	}
	if len(st.DialogEnds) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w, "Dialog ends not confirmed by the proxy, oldest first:"); err != nil {
		return err
	}
	for _, p := range st.DialogEnds {
		if _, err := fmt.Fprintf(w, "  %s  dialog %s  asked %s ago\n", clean(p.CallID), orDash(p.DialogID),
			formatSeconds(int(p.AgeSeconds))); err != nil {
			return err
		}
	}
	return nil
}

func dialogEnds(st control.Stats) string {
	if st.DialogEndsPending == 0 {
		return "0"
	}
	return fmt.Sprintf("%d, oldest asked %s ago", st.DialogEndsPending, formatSeconds(int(st.DialogEndsOldestSeconds)))
}

// engineStates is each engine and its state on one line.
func engineStates(st control.Stats) string {
	if st.EngineSource == "none" {
		return "none: calls flagged prepaid are refused"
	}
	parts := make([]string, 0, len(st.Engines))
	for _, e := range st.Engines {
		p := e.Address + " " + e.State
		if e.Cause != "" {
			p += " (" + e.Cause + ")"
		}
		parts = append(parts, p)
	}
	out := strings.Join(parts, ", ")
	if st.EngineSource == "default" {
		out += " [default: [CDRTool] address not set]"
	}
	return out
}

func managementSocket(m *control.ManagementSocketStatus) string {
	out := m.Path + " (" + m.Proxy + "): "
	switch m.State {
	case control.SocketAnswering:
		out += "answering"
		if m.Version != "" {
			out += ", " + m.Version
		}
	case control.SocketFailing:
		out += "not answering: " + m.Cause
	case control.SocketUnchecked:
		out += "not checked yet"
	default:
		out += m.State
	}
	return out
}

func stateLog(st control.Stats) string {
	errs := fmt.Sprintf("%d write errors", st.StateWriteErrors)
	if st.StateWriteErrors == 1 {
		errs = "1 write error"
	}
	if !st.StateSync && st.StateFlushEveryMS > 0 {
		return fmt.Sprintf("written before each reply, flushed within %g ms (sync = interval), %d bytes not flushed yet, %s",
			st.StateFlushEveryMS, st.StateUnflushedBytes, errs)
	}
	if !st.StateSync {
		return "not fsync'd (sync = no), " + errs
	}
	if st.StateMaxSyncMS == 0 {
		return "no fsync yet, " + errs
	}
	return fmt.Sprintf("fsync %.1f ms last, %.1f ms max, %s", st.StateLastSyncMS, st.StateMaxSyncMS, errs)
}

func writeKeyValues(w io.Writer, rows [][2]string) error {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%-*s %s\n", width+1, r[0]+":", clean(r[1])); err != nil {
			return err
		}
	}
	return nil
}

// clean keeps values from the network (Call-IDs, URIs) from breaking the
// layout or writing control sequences to the operator's terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// writeJSON prints v as indented JSON, for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
