package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// Output formatting lives here, apart from the socket, so golden files can
// pin it down.

const timeLayout = "2006-01-02 15:04:05"

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
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "No sessions.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL-ID\tPARTY\tDESTINATION\tSTATE\tANSWERED\tLIMIT\tREMAINING")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(s.CallID), clean(orDash(s.Party)), clean(orDash(s.Destination)),
			clean(orDash(s.State)), formatTime(s.Answered, loc), formatSeconds(s.Limit), formatSeconds(s.Remaining))
	}
	return tw.Flush()
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
		{"Debits waiting", fmt.Sprint(st.DebitsWaiting)},
		{"Dialog ends pending", fmt.Sprint(st.DialogEndsPending)},
		{"State log", stateLog(st)},
	}
	if !st.StateNotDurableSince.IsZero() {
		rows = append(rows, [2]string{"State durable", fmt.Sprintf("NO: calls served from memory only since %s (%s)",
			st.StateNotDurableSince.UTC().Format(time.RFC3339), st.StateFault)})
	}
	return writeKeyValues(w, rows)
}

func stateLog(st control.Stats) string {
	errs := fmt.Sprintf("%d write errors", st.StateWriteErrors)
	if st.StateWriteErrors == 1 {
		errs = "1 write error"
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
