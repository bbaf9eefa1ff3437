package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// partyCount is one billing party's calls, for "callcontrol parties".
type partyCount struct {
	Party      string `json:"party"`
	Calls      int    `json:"calls"`
	InProgress int    `json:"in_progress"`
	Pending    int    `json:"pending"`
	Prepaid    int    `json:"prepaid"`
	Engine     string `json:"engine,omitempty"` // the rating engine of its prepaid calls
}

// countParties groups sessions by party, most calls first.
func countParties(list []control.SessionInfo) []partyCount {
	by := partyCounter{}
	for _, s := range list {
		by.add(s)
	}
	return by.sorted()
}

// sorted lists the parties, most calls first.
func (by partyCounter) sorted() []partyCount {
	out := make([]partyCount, 0, len(by))
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Party < out[j].Party
	})
	return out
}

func writePartiesTable(w io.Writer, parties []partyCount) error {
	if len(parties) == 0 {
		_, err := fmt.Fprintln(w, "No calls.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTY\tCALLS\tIN-PROGRESS\tPENDING\tPREPAID\tENGINE")
	calls := 0
	for _, p := range parties {
		calls += p.Calls
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", clean(orDash(p.Party)), p.Calls, p.InProgress, p.Pending, p.Prepaid, clean(orDash(p.Engine)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s, %s.\n", plural(len(parties), "party", "parties"), plural(calls, "call", "calls"))
	return err
}

// writeDebitsTable lists owed debits; an engine removed from the
// configuration is marked, its debits go to the party's current engine.
func writeDebitsTable(w io.Writer, list []control.DebitInfo, now time.Time, loc *time.Location) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "No debits owed.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL-ID\tPARTY\tENGINE\tDURATION\tOWED SINCE\tAGE\tTRIES\tLAST ERROR")
	removed := 0
	for _, d := range list {
		engine := orDash(d.Engine)
		if !d.Configured {
			engine += " (removed)"
			removed++
		}
		last := orDash(d.LastError)
		if d.Sending {
			last = "(sending now) " + d.LastError
		}
		if len(last) > 60 {
			last = last[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", clean(d.CallID), clean(orDash(d.Party)), clean(engine),
			formatSeconds(d.Seconds), formatTime(d.Created, loc), formatSeconds(int(now.Sub(d.Created)/time.Second)), d.Tries, clean(last))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	line := plural(len(list), "debit", "debits") + " owed."
	if removed > 0 {
		line += fmt.Sprintf(" %d to engines no longer configured: they go to each party's current engine.", removed)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// countLineOf is the line under the sessions table: n sessions, by state.
func countLineOf(n int, by map[string]int) string {
	states := make([]string, 0, len(by))
	for state := range by {
		states = append(states, state)
	}
	sort.Strings(states)
	parts := make([]string, 0, len(states))
	for _, state := range states {
		parts = append(parts, fmt.Sprintf("%d %s", by[state], state))
	}
	return fmt.Sprintf("%s (%s).", plural(n, "session", "sessions"), strings.Join(parts, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
