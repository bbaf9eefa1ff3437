package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Amsterdam without the system's time zone data

	"github.com/callcontrol/callcontrol/internal/control"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var (
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now   = t0.Add(20 * time.Minute)
	alice = control.SessionInfo{CallID: "6432622xvv@1", Party: "sip:alice@example.com", Destination: "sip:0031650222333@example.com",
		State: "in-progress", DialogID: "3413:2147483647", FromTag: "a73kszlfl", SourceIP: "10.0.0.1", Engine: "10.0.0.5:9024",
		Prepaid: true, Created: t0, Answered: t0.Add(7 * time.Second), Limit: 3723, Remaining: 2530}
	bob = control.SessionInfo{CallID: "1-4711@127.0.0.1", Party: "sip:bob@example.org", Destination: "sip:limited@127.0.0.1:5060",
		State: "pending", SourceIP: "127.0.0.1", Diverter: "carol@example.org", Created: t0.Add(time.Minute), Limit: -1, Remaining: -1}
	tabby = control.SessionInfo{CallID: "evil\tid\x1b[2J", Party: "sip:x@example.com", Destination: "sip:y@example.com",
		State: "in-progress", Created: t0.Add(2 * time.Minute), Answered: t0.Add(3 * time.Minute), Limit: 45, Remaining: 0}
	ending = control.SessionInfo{CallID: "gone@1", State: "ending", DialogID: "1079:6296", Limit: -1, Remaining: -1,
		EndRequested: now.Add(-75 * time.Second)}
	ringing = control.SessionInfo{CallID: "ring@1", Party: "sip:carol@example.org", Destination: "sip:d@example.org",
		State: "ringing, ends at answer", Created: t0, Limit: 60, Remaining: -1,
		EndAtAnswer: "terminated by an operator before it was answered"}
	someStats = control.Stats{Sessions: map[string]int{"pending": 1, "in-progress": 2}, Parties: 3, EnginesUp: 1, EnginesTotal: 2,
		DebitsWaiting: 4, DialogEndsPending: 1, DialogEndsOldestSeconds: 75.2,
		DialogEnds: []control.PendingDialogEnd{{CallID: "gone@1", DialogID: "1079:6296", AgeSeconds: 75.2}}, Uptime: 26*time.Hour + 3*time.Minute + 4*time.Second + 500*time.Millisecond,
		Requests: 123456, Version: "1.0.0", StateSync: true, StateLastSyncMS: 0.6, StateMaxSyncMS: 12.3, StateWriteErrors: 1,
		EngineSource: "config", PrepaidRefused: 7, Engines: []control.EngineStatus{
			{Address: "10.0.0.5:9024", State: "connected"},
			{Address: "cdrtool2.example.com:9024", State: "unreachable", Cause: "connection refused"}},
		ManagementSocket: &control.ManagementSocketStatus{Path: "/run/kamailio/kamailio_rpc.sock", Proxy: "kamailio",
			State: "failing", Cause: "no such file", Checked: t0}}
)

var owed = []control.DebitInfo{
	{CallID: "6432622xvv@1", Party: "sip:alice@example.com", Engine: "10.0.0.9:9024", Seconds: 59, Configured: false,
		Created: t0.Add(-3 * time.Hour), Tries: 182, LastTry: now.Add(-time.Minute),
		LastError: "rating: request not sent: dial tcp 10.0.0.9:9024: connect: connection refused"},
	{CallID: "1-4711@127.0.0.1", Party: "sip:bob@example.org", Engine: "10.0.0.5:9024", Seconds: 3723, Configured: true,
		Created: t0.Add(15 * time.Minute), Tries: 0},
}

func amsterdam(t *testing.T) *time.Location {
	// time/tzdata (imported by this test) has it where the system has no
	// time zone data: the check never depends on the machine.
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from output:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	list := []control.SessionInfo{tabby, bob, alice}
	sortSessions(list)
	tests := []struct {
		name  string
		write func(b *bytes.Buffer) error
	}{
		{"sessions", func(b *bytes.Buffer) error { return writeSessionsTable(b, list, time.UTC) }},
		{"sessions_empty", func(b *bytes.Buffer) error { return writeSessionsTable(b, nil, time.UTC) }},
		{"sessions.json", func(b *bytes.Buffer) error { return writeJSON(b, list) }},
		{"sessions_empty.json", func(b *bytes.Buffer) error { return writeJSON(b, []control.SessionInfo{}) }},
		{"session", func(b *bytes.Buffer) error { return writeSession(b, alice, now, time.UTC) }},
		{"session_pending", func(b *bytes.Buffer) error { return writeSession(b, bob, now, time.UTC) }},
		{"session.json", func(b *bytes.Buffer) error { return writeJSON(b, alice) }},
		{"session_ending", func(b *bytes.Buffer) error { return writeSession(b, ending, now, time.UTC) }},
		{"session_at_answer", func(b *bytes.Buffer) error { return writeSession(b, ringing, now, time.UTC) }},
		{"stats", func(b *bytes.Buffer) error { return writeStats(b, someStats) }},
		{"stats_empty", func(b *bytes.Buffer) error { return writeStats(b, control.Stats{}) }},
		{"stats.json", func(b *bytes.Buffer) error { return writeJSON(b, someStats) }},
		{"parties", func(b *bytes.Buffer) error { return writePartiesTable(b, countParties(list)) }},
		{"parties_empty", func(b *bytes.Buffer) error { return writePartiesTable(b, countParties(nil)) }},
		{"parties.json", func(b *bytes.Buffer) error { return writeJSON(b, countParties(list)) }},
		{"debits", func(b *bytes.Buffer) error { return writeDebitsTable(b, owed, now, time.UTC) }},
		{"debits_zone", func(b *bytes.Buffer) error { return writeDebitsTable(b, owed[:1], now, amsterdam(t)) }},
		{"debits_empty", func(b *bytes.Buffer) error { return writeDebitsTable(b, nil, now, time.UTC) }},
		{"debits.json", func(b *bytes.Buffer) error { return writeJSON(b, owed) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		in   int
		want string
	}{
		{-1, "-"}, {-100, "-"}, {0, "0s"}, {9, "9s"}, {60, "1m00s"}, {123, "2m03s"},
		{3600, "1h00m00s"}, {3723, "1h02m03s"}, {90061, "25h01m01s"},
	}
	for _, tc := range tests {
		if got := formatSeconds(tc.in); got != tc.want {
			t.Errorf("formatSeconds(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSortSessions(t *testing.T) {
	a := control.SessionInfo{CallID: "b", Created: t0}
	b := control.SessionInfo{CallID: "a", Created: t0}
	c := control.SessionInfo{CallID: "0", Created: t0.Add(time.Second)}
	list := []control.SessionInfo{c, a, b}
	sortSessions(list)
	if list[0].CallID != "a" || list[1].CallID != "b" || list[2].CallID != "0" {
		t.Errorf("order = %v %v %v", list[0].CallID, list[1].CallID, list[2].CallID)
	}
}
