package acct

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
)

func TestLastMonth(t *testing.T) {
	tests := []struct{ now, want string }{
		{"2026-03-31", "2026-02"},
		{"2026-01-01", "2025-12"},
		{"2026-12-15", "2026-11"},
	}
	for _, tt := range tests {
		now, _ := time.Parse(time.DateOnly, tt.now)
		if got := lastMonth(now).Format("2006-01"); got != tt.want {
			t.Errorf("lastMonth(%s) = %s, want %s", tt.now, got, tt.want)
		}
	}
}

func TestNewPollerRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  DBConfig
	}{
		{"no database", DBConfig{}},
		{"quote in table", DBConfig{Database: "d", Table: "rad`acct"}},
		{"bad directive", DBConfig{Database: "d", Table: "radacct%H"}},
		{"bad column", DBConfig{Database: "d", Columns: Columns{FromTag: "a) OR (1"}}},
	}
	for _, tt := range tests {
		if _, err := NewPoller(tt.cfg, newTracker(), testLogger(t)); err == nil {
			t.Errorf("%s: NewPoller accepted %+v", tt.name, tt.cfg)
		}
	}
}

func TestMySQLConfigHost(t *testing.T) {
	tests := []struct{ host, net, addr string }{
		{"", "tcp", "127.0.0.1:3306"},
		{"db.example.com", "tcp", "db.example.com:3306"},
		{"db:3307", "tcp", "db:3307"},
		{"::1", "tcp", "[::1]:3306"},
		{"[::1]:3307", "tcp", "[::1]:3307"},
		{"/run/mysqld/mysqld.sock", "unix", "/run/mysqld/mysqld.sock"},
	}
	for _, tt := range tests {
		c := DBConfig{Host: tt.host, Database: "d"}
		c.setDefaults()
		mc := c.mysqlConfig(testLogger(t))
		if mc.Net != tt.net || mc.Addr != tt.addr || mc.ReadTimeout != 3*time.Second || mc.Timeout != 3*time.Second {
			t.Errorf("host %q: net %q addr %q timeouts %v/%v", tt.host, mc.Net, mc.Addr, mc.Timeout, mc.ReadTimeout)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		r    row
		kind Kind
		ok   bool
	}{
		{"running", row{stopTime: "0000-00-00 00:00:00"}, 0, false},
		{"null stop", row{}, 0, false},
		{"stopped", row{stopTime: "2026-03-01 10:00:00"}, Terminated, true},
		{"bye", row{connectInfoStop: "BYE"}, Terminated, true},
		{"media timeout", row{mediaInfo: "timeout"}, TimedOut, true},
		{"media timeout then bye", row{mediaInfo: "timeout", connectInfoStop: "BYE"}, Terminated, true},
		{"other media info", row{mediaInfo: "ok"}, 0, false},
	}
	for _, tt := range tests {
		kind, ok := tt.r.classify()
		if kind != tt.kind || ok != tt.ok {
			t.Errorf("%s: classify = %v, %v; want %v, %v", tt.name, kind, ok, tt.kind, tt.ok)
		}
	}
}

// march is the poller's clock in the DB tests: this month's table is
// radacct202603, last month's radacct202602.
var march = time.Date(2026, 3, 1, 0, 30, 0, 0, time.Local)

const evilCallID = "x'; DROP TABLE radacct202603; -- \"`"

func setupDB(t *testing.T, name string) DBConfig {
	t.Helper()
	m := needDB(t)
	db, err := m.CreateDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, tb := range []string{"radacct202603", "radacct202602"} {
		if err := accttest.CreateRadacct(db, tb); err != nil {
			t.Fatal(err)
		}
	}
	err = accttest.Insert(db, "radacct202603",
		accttest.Row{CallID: "stopped", FromTag: "a", Stopped: true, SessionTime: 42, ConnectInfoStop: "BYE"},
		accttest.Row{CallID: "bye-only", FromTag: "a", ConnectInfoStop: "BYE"},
		accttest.Row{CallID: "media-timeout", FromTag: "a", MediaInfo: "timeout"},
		accttest.Row{CallID: "timeout-then-bye", FromTag: "a", MediaInfo: "timeout", Stopped: true, SessionTime: 7, ConnectInfoStop: "BYE"},
		accttest.Row{CallID: "running", FromTag: "a"},
		accttest.Row{CallID: "other-tag", FromTag: "old", Stopped: true, SessionTime: 99},
		accttest.Row{CallID: "untracked", FromTag: "a", Stopped: true, SessionTime: 1},
		accttest.Row{CallID: evilCallID, FromTag: "a", Stopped: true, SessionTime: 3},
	)
	if err != nil {
		t.Fatal(err)
	}
	err = accttest.Insert(db, "radacct202602",
		accttest.Row{CallID: "last-month", FromTag: "a", Stopped: true, SessionTime: 3600},
	)
	if err != nil {
		t.Fatal(err)
	}
	return DBConfig{User: "root", Host: m.Addr(), Database: name, QueryTimeout: 2 * time.Second}
}

func newTestPoller(t *testing.T, cfg DBConfig, tr Tracker, now time.Time) *Poller {
	t.Helper()
	p, err := NewPoller(cfg, tr, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return now }
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPollerCheck(t *testing.T) {
	cfg := setupDB(t, "check")
	tracked := []Call{
		{CallID: "stopped", FromTag: "a"},
		{CallID: "bye-only", FromTag: "a"},
		{CallID: "media-timeout", FromTag: "a"},
		{CallID: "timeout-then-bye", FromTag: "a"},
		{CallID: "running", FromTag: "a"},
		{CallID: "other-tag", FromTag: "new"},
		{CallID: "no-row", FromTag: "a"},
		{CallID: "last-month", FromTag: "a"},
		{CallID: evilCallID, FromTag: "a"},
	}
	want := []Outcome{
		{CallID: "bye-only", FromTag: "a", Kind: Terminated, Duration: DurationUnknown},
		{CallID: "last-month", FromTag: "a", Kind: Terminated, Duration: 3600},
		{CallID: "media-timeout", FromTag: "a", Kind: TimedOut},
		{CallID: "stopped", FromTag: "a", Kind: Terminated, Duration: 42},
		{CallID: "timeout-then-bye", FromTag: "a", Kind: Terminated, Duration: 7},
		{CallID: evilCallID, FromTag: "a", Kind: Terminated, Duration: 3},
	}
	for _, batch := range []int{0, 1, 2, 1000} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			c := cfg
			c.BatchSize = batch
			tr := newTracker(tracked...)
			p := newTestPoller(t, c, tr, march)
			if err := p.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got := tr.Closed(); !reflect.DeepEqual(got, want) {
				t.Errorf("closed:\n got %+v\nwant %+v", got, want)
			}
			left := map[string]bool{}
			for _, c := range tr.TrackedCalls() {
				left[c.CallID] = true
			}
			if !left["running"] || !left["other-tag"] || !left["no-row"] || len(left) != 3 {
				t.Errorf("left tracked: %v", left)
			}
			// A second round finds nothing more to close.
			if err := p.Check(context.Background()); err != nil {
				t.Fatalf("second Check: %v", err)
			}
			if got := tr.Closed(); len(got) != len(want) {
				t.Errorf("second round closed more: %+v", got)
			}
		})
	}

	// The quoted Call-ID was data, not SQL: the table is still there.
	db, err := testDB.Open("check")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM radacct202603").Scan(&n); err != nil || n != 8 {
		t.Errorf("radacct202603 after the evil Call-ID: %d rows, %v", n, err)
	}
}

func TestPollerMissingTables(t *testing.T) {
	cfg := setupDB(t, "missing")
	tests := []struct {
		name string
		now  time.Time
		want int
	}{
		// April: radacct202604 missing, radacct202603 there.
		{"this month missing", time.Date(2026, 4, 2, 0, 0, 0, 0, time.Local), 1},
		// June: both missing: an error (TestPollerAllTablesMissingIsAnError).
		{"both missing", time.Date(2026, 6, 2, 0, 0, 0, 0, time.Local), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "stopped", FromTag: "a"}, Call{CallID: "running", FromTag: "a"})
			p := newTestPoller(t, cfg, tr, tt.now)
			if err := p.Check(context.Background()); (err != nil) != (tt.want == 0) {
				t.Fatalf("Check: %v", err)
			}
			if got := tr.Closed(); len(got) != tt.want {
				t.Errorf("closed %+v, want %d", got, tt.want)
			}
		})
	}
}

func TestPollerNoCallsNoQuery(t *testing.T) {
	// Nothing tracked: no query at all, so even an unreachable database is fine.
	p, err := NewPoller(DBConfig{Host: "127.0.0.1:1", Database: "d", QueryTimeout: time.Second}, newTracker(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Check(context.Background()); err != nil {
		t.Errorf("Check with no calls: %v", err)
	}
}

// TestPollerDatabaseDown stops and freezes the shared server: it must run
// alone (no t.Parallel anywhere in this package).
func TestPollerDatabaseDown(t *testing.T) {
	cfg := setupDB(t, "down")
	m := testDB
	// bound is generous: it only proves Check does not hang.
	const bound = 30 * time.Second

	checkFails := func(t *testing.T, p *Poller) {
		t.Helper()
		start := time.Now()
		err := p.Check(context.Background())
		if err == nil {
			t.Fatal("Check succeeded against a dead database")
		}
		if d := time.Since(start); d > bound {
			t.Errorf("Check took %v", d)
		}
		t.Logf("Check failed as expected after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}

	tr := newTracker(Call{CallID: "stopped", FromTag: "a"}, Call{CallID: "media-timeout", FromTag: "a"}, Call{CallID: "running", FromTag: "a"})
	p := newTestPoller(t, cfg, tr, march)
	// Warm the pool so the idle connection goes stale when the server stops.
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	tr.calls = append(tr.calls, Call{CallID: "last-month", FromTag: "a"})
	tr.mu.Unlock()

	t.Run("stopped", func(t *testing.T) {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		checkFails(t, p)
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		if err := p.Check(context.Background()); err != nil {
			t.Fatalf("Check after restart: %v", err)
		}
		if got := tr.Closed(); len(got) != 3 || got[0].CallID != "last-month" {
			t.Errorf("closed after restart: %+v", got)
		}
	})

	t.Run("frozen", func(t *testing.T) {
		tr.mu.Lock()
		tr.calls = append(tr.calls, Call{CallID: "bye-only", FromTag: "a"})
		tr.mu.Unlock()
		if err := m.Freeze(); err != nil {
			t.Fatal(err)
		}
		checkFails(t, p)
		if err := m.Thaw(); err != nil {
			t.Fatal(err)
		}
		// The pool may still hold a connection broken by the timeout;
		// the driver discards it and the round after works.
		var err error
		for range 3 {
			if err = p.Check(context.Background()); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("Check after thaw: %v", err)
		}
		if got := tr.Closed(); len(got) != 4 {
			t.Errorf("closed after thaw: %+v", got)
		}
	})
}

func TestPollerRun(t *testing.T) {
	cfg := setupDB(t, "run")
	tr := newTracker(Call{CallID: "stopped", FromTag: "a"})
	p := newTestPoller(t, cfg, tr, march)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, 50*time.Millisecond); close(done) }()
	if got := tr.waitClosed(t, 1); len(got) != 1 {
		t.Errorf("Run closed %+v", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestIsNoSuchTable(t *testing.T) {
	if isNoSuchTable(nil) || isNoSuchTable(errors.New("x")) {
		t.Error("plain errors taken for a missing table")
	}
}
