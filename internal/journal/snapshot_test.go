package journal

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

func postpaidInit(id string) *session.InitRequest {
	return &session.InitRequest{CallID: id, RURI: "sip:0031650222333@example.com", Diverter: "None",
		SourceIP: "10.0.0.1", From: "<sip:alice@example.com>", FromTag: "ft-" + id, Prepaid: "false"}
}

// TestSnapshotWhileTableChanges: the snapshot copies the session table in
// chunks, letting go of the lock between them, while calls are set up,
// answered and ended. A load (the snapshot, then the log written after
// its start) gives the table as it is at the end, record for record.
func TestSnapshotWhileTableChanges(t *testing.T) {
	for _, opts := range []store.Options{{NoSync: true}, {NoSync: true, FlushEvery: 20 * time.Millisecond}, {}} {
		dir := t.TempDir()
		j, err := Open(dir, Options{Store: opts}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
			StaleTimeout: time.Hour, ProxyTimeout: 5 * time.Second}, nil, &dialogtest.Ender[dialog.Target]{}, j, quiet())
		const n = 1200 // several chunks of the walk
		for i := range n {
			id := fmt.Sprintf("c%d", i)
			if m.Init(postpaidInit(id), time.Now()) != session.ReplyLimited {
				t.Fatal("init refused")
			}
			if i%2 == 0 && m.Start(id, "1:2", time.Now()) != session.ReplyOk {
				t.Fatal("start refused")
			}
		}
		puts := 0
		j.snapshotPut = func() {
			puts++
			if puts != n/2 {
				return
			}
			// Half the table is in the snapshot: change calls on both
			// sides of the walk's position, and add some.
			for i := 0; i < n; i += 7 {
				id := fmt.Sprintf("c%d", i)
				switch i % 3 {
				case 0:
					m.Stop(id)
				case 1:
					m.Start(id, "3:4", time.Now()) // answers a pending call; Ok or not, its record is the table's
				}
			}
			for i := range 300 {
				id := fmt.Sprintf("new%d", i)
				m.Init(postpaidInit(id), time.Now())
				if i%2 == 0 {
					m.Start(id, "5:6", time.Now())
				}
			}
		}
		if err := j.snapshot(m); err != nil {
			t.Fatal(err)
		}
		if puts < n {
			t.Fatalf("the snapshot put %d sessions, the table had %d before the changes", puts, n)
		}
		j.snapshotPut = nil
		want := map[string]string{}
		m.Each(func(s *session.Session) { want[s.CallID] = string(s.Marshal()) })
		m.Shutdown()
		if err := j.Close(nil); err != nil { // no final snapshot: the load replays the log
			t.Fatal(err)
		}

		j, err = Open(dir, Options{Store: opts}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		sessions, _ := j.RestoredSessions()
		got := map[string]string{}
		for _, s := range sessions {
			got[s.CallID] = string(s.Marshal())
		}
		if len(got) != len(want) {
			t.Errorf("%+v: %d sessions loaded, the table had %d", opts, len(got), len(want))
		}
		for id, rec := range want {
			if got[id] != rec {
				t.Errorf("%+v: %s loaded as %q, the table had %q", opts, id, got[id], rec)
			}
		}
		j.Close(nil)
	}
}
