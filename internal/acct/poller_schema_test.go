package acct

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
)

// reviewDB creates database name with an empty radacct202603 (the march
// clock's table) and returns it open, with the poller's config.
func reviewDB(t *testing.T, name string) (*sql.DB, DBConfig) {
	t.Helper()
	m := needDB(t)
	db, err := m.CreateDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := accttest.CreateRadacct(db, "radacct202603"); err != nil {
		t.Fatal(err)
	}
	return db, DBConfig{User: "root", Host: m.Addr(), Database: name, QueryTimeout: 2 * time.Second}
}

// TestPollerStopWithoutSessionTime: FreeRADIUS writes a Stop that carries no
// Acct-Session-Time (OpenSIPS's acc sends none, see the listener) as
// AcctStopTime set and AcctSessionTime NULL. The poller must report the
// duration as unknown (the session layer then debits what the call lasted,
// as for the listener), not 0, which ends the call for free.
func TestPollerStopWithoutSessionTime(t *testing.T) {
	db, cfg := reviewDB(t, "nullduration")
	_, err := db.Exec("INSERT INTO radacct202603 (AcctSessionId, SipFromTag, AcctStartTime, AcctStopTime, AcctSessionTime, ConnectInfo_stop) VALUES " +
		"('stop-null', 'a', NOW() - INTERVAL 10 MINUTE, NOW(), NULL, ''), " +
		"('bye-null', 'a', NOW() - INTERVAL 10 MINUTE, '0000-00-00 00:00:00', NULL, 'BYE')")
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker(Call{CallID: "stop-null", FromTag: "a"}, Call{CallID: "bye-null", FromTag: "a"})
	p := newTestPoller(t, cfg, tr, march)
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	got := tr.Closed()
	if len(got) != 2 {
		t.Fatalf("closed %+v, want both calls", got)
	}
	for _, o := range got {
		if o.Kind != Terminated || o.Duration != DurationUnknown {
			t.Errorf("%s: %v with duration %d; want terminated with DurationUnknown (%d): a NULL AcctSessionTime is not 0 seconds",
				o.CallID, o.Kind, o.Duration, DurationUnknown)
		}
	}
}

// TestPollerOneBadCallIDDoesNotStopTheRest: Call-IDs come from the network
// (the proxy passes the header's bytes). radacct tables are often latin1 or
// utf8mb3 (old FreeRADIUS and CDRTool schemas); comparing such a column with
// a Call-ID it cannot hold (a 4-byte UTF-8 character, invalid UTF-8) fails
// the query with "Illegal mix of collations" (1270). One such tracked call
// must not make every round fail: the other calls must still be closed.
func TestPollerOneBadCallIDDoesNotStopTheRest(t *testing.T) {
	for _, charset := range []string{"latin1", "utf8mb3"} {
		for _, bad := range []string{"bad\xff\xfe@host", "emoji\U0001F600@host"} {
			t.Run(charset+"/"+bad, func(t *testing.T) {
				m := needDB(t)
				name := "badcallid_" + charset
				db, err := m.Open("")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for _, q := range []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name,
					"CREATE TABLE " + name + ".radacct202603 (AcctSessionId varchar(255) NOT NULL DEFAULT '', " +
						"SipFromTag varchar(128) NOT NULL DEFAULT '', SipToTag varchar(128) NOT NULL DEFAULT '', " +
						"AcctStopTime datetime NULL, AcctSessionTime int unsigned NULL, ConnectInfo_stop varchar(32) NULL, " +
						"MediaInfo varchar(32) NULL, KEY (AcctSessionId)) DEFAULT CHARSET=" + charset,
					"INSERT INTO " + name + ".radacct202603 (AcctSessionId, SipFromTag, AcctStopTime, AcctSessionTime, ConnectInfo_stop) " +
						"VALUES ('stopped', 'a', NOW(), 42, 'BYE')",
				} {
					if _, err := db.Exec(q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				cfg := DBConfig{User: "root", Host: m.Addr(), Database: name, QueryTimeout: 2 * time.Second}
				tr := newTracker(Call{CallID: "stopped", FromTag: "a"}, Call{CallID: bad, FromTag: "a"})
				p := newTestPoller(t, cfg, tr, march)
				err = p.Check(context.Background())
				got := tr.Closed()
				if len(got) != 1 || got[0].CallID != "stopped" || got[0].Duration != 42 {
					t.Errorf("closed %+v (Check: %v); want the stopped call closed with 42 s despite the other Call-ID", got, err)
				}
			})
		}
	}
}

// TestPollerDailyTablesYesterday: the table pattern may name daily tables
// (radacct.Table and the config accept %d). Just after midnight, a call
// that stopped in the last minutes of yesterday has its row in yesterday's
// table; reading today's and "last month's" (the last day of the previous
// month) misses it in every round, so the call is never ended.
func TestPollerDailyTablesYesterday(t *testing.T) {
	m := needDB(t)
	db, err := m.CreateDatabase("daily")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range []string{"radacct20260314", "radacct20260315"} {
		if err := accttest.CreateRadacct(db, tb); err != nil {
			t.Fatal(err)
		}
	}
	if err := accttest.Insert(db, "radacct20260314",
		accttest.Row{CallID: "before-midnight", FromTag: "a", Stopped: true, SessionTime: 42, ConnectInfoStop: "BYE"}); err != nil {
		t.Fatal(err)
	}
	cfg := DBConfig{User: "root", Host: m.Addr(), Database: "daily", Table: "radacct%Y%m%d", QueryTimeout: 2 * time.Second}
	tr := newTracker(Call{CallID: "before-midnight", FromTag: "a"})
	p := newTestPoller(t, cfg, tr, time.Date(2026, 3, 15, 0, 0, 30, 0, time.Local))
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got := tr.Closed(); len(got) != 1 || got[0].Duration != 42 {
		t.Errorf("closed %+v; want before-midnight ended with 42 s from yesterday's table", got)
	}
}

// TestPollerAllTablesMissingIsAnError: when none of the tables a round
// reads exists (a wrong table pattern or database), the poller can end no
// call at all. That round must fail (logged, and counted in
// accounting_poll_errors_total) instead of passing as a good round at
// debug level, which tells the operator accounting works.
func TestPollerAllTablesMissingIsAnError(t *testing.T) {
	_, cfg := reviewDB(t, "alltablesmissing")
	cfg.Table = "radacct_%Y_%m" // the tables are radacctYYYYMM
	tr := newTracker(Call{CallID: "stopped", FromTag: "a"})
	p := newTestPoller(t, cfg, tr, march)
	err := p.Check(context.Background())
	rounds, failed := p.Polls()
	if err == nil || failed != 1 {
		t.Errorf("Check = %v, polls %d failed %d; want an error naming the missing tables, counted as failed", err, rounds, failed)
	} else {
		t.Logf("Check: %v", err)
	}
}

// TestPollerUnixTimeStopColumn: stopTimeField may name a column of another
// schema that keeps the stop time as a unix time, 0 while the call runs.
// A 0 there is "not stopped" as much as the zero DATETIME is: reading it
// as a stop ends every running call.
func TestPollerUnixTimeStopColumn(t *testing.T) {
	m := needDB(t)
	db, err := m.CreateDatabase("unixstop")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE radacct202603 (AcctSessionId varchar(255) NOT NULL DEFAULT '', SipFromTag varchar(128) NOT NULL DEFAULT '', " +
			"SipToTag varchar(128) NOT NULL DEFAULT '', StopUnix int unsigned NOT NULL DEFAULT 0, AcctSessionTime int unsigned NULL, " +
			"ConnectInfo_stop varchar(32) NULL, MediaInfo varchar(32) NULL)",
		"INSERT INTO radacct202603 (AcctSessionId, SipFromTag, StopUnix, AcctSessionTime) VALUES " +
			"('running', 'a', 0, NULL), ('stopped', 'a', UNIX_TIMESTAMP(), 42)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := DBConfig{User: "root", Host: m.Addr(), Database: "unixstop", QueryTimeout: 2 * time.Second,
		Columns: Columns{StopTime: "StopUnix"}}
	tr := newTracker(Call{CallID: "running", FromTag: "a"}, Call{CallID: "stopped", FromTag: "a"})
	p := newTestPoller(t, cfg, tr, march)
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got := tr.Closed(); len(got) != 1 || got[0].CallID != "stopped" {
		t.Errorf("closed %+v; want only the stopped call (a 0 unix stop time is a running call)", got)
	}
}
