package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
)

// listOf is n sessions already oldest first, Call-IDs of one width.
func listOf(n int) []control.SessionInfo {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	list := make([]control.SessionInfo, n)
	for i := range list {
		list[i] = control.SessionInfo{CallID: fmt.Sprintf("%06d@host", i), Party: "sip:alice@example.com",
			Destination: "sip:123@example.com", State: "in-progress", Created: t0.Add(time.Duration(i) * time.Millisecond),
			Answered: t0, Limit: 3600, Remaining: 1200}
	}
	return list
}

// A listing bigger than a block is printed a block at a time, never
// held whole; for sessions the daemon sends oldest first (as it does)
// with columns no wider later, the output is byte for byte the one table
// (or JSON array) of the whole list.
func TestSessionsPrintedInBlocks(t *testing.T) {
	for _, n := range []int{0, 1, 3, sessionsBlock, 2*sessionsBlock + 1} {
		list := listOf(n)

		var want, got bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(sessionsHeader, "\t"))
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.CallID, s.Party, s.Destination, s.State,
				formatTime(s.Answered, time.UTC), formatSeconds(s.Limit), formatSeconds(s.Remaining))
		}
		tw.Flush()
		fmt.Fprintf(&want, "%s (%d in-progress).\n", plural(n, "session", "sessions"), n)
		if n == 0 {
			want.Reset()
			want.WriteString("No sessions.\n")
		}
		table := newSessionsTable(&got, time.UTC)
		printed := 0
		for i, s := range list {
			if err := table.add(s); err != nil {
				t.Fatal(err)
			}
			if i == sessionsBlock { // the first block is out before the rest is read
				printed = got.Len()
			}
		}
		if err := table.finish(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d sessions: the table differs from tabwriter's of the whole list (%d and %d bytes)", n, got.Len(), want.Len())
		}
		if n > sessionsBlock && printed == 0 {
			t.Errorf("%d sessions: nothing printed after %d read", n, sessionsBlock+1)
		}

		want.Reset()
		got.Reset()
		if list == nil {
			list = []control.SessionInfo{}
		}
		writeJSON(&want, list)
		j := newSessionsJSON(&got)
		for _, s := range list {
			if err := j.add(s); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.finish(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d sessions: --json differs from the whole list's:\n got %.300q\nwant %.300q", n, got.String(), want.String())
		}
	}
}

// A later block's longer value widens its column from there on; the
// rows already printed stay as they were.
func TestSessionsTableWidensLaterBlocks(t *testing.T) {
	list := listOf(sessionsBlock + 1)
	list[sessionsBlock].Party = "sip:a-much-longer-party-name@example.com"
	var got bytes.Buffer
	table := newSessionsTable(&got, time.UTC)
	for _, s := range list {
		table.add(s)
	}
	table.finish()
	lines := strings.Split(got.String(), "\n")
	last := lines[len(lines)-3] // then the count line and ""
	if !strings.Contains(last, "sip:a-much-longer-party-name@example.com  sip:123") {
		t.Errorf("the widened row: %q", last)
	}
	if !strings.Contains(lines[1], "sip:alice@example.com  sip:123") {
		t.Errorf("a first-block row: %q", lines[1])
	}
}
