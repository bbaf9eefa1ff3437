package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/debit"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

// owingJournal ends every call with a debit owed, as the manager ends a
// prepaid call (End with its debit, under the manager's lock, with the
// session's removal from the table).
type owingJournal struct{ *Journal }

func (o owingJournal) End(callID string, d *session.Owed) session.Wait {
	if d == nil {
		d = &session.Owed{Engine: "e:1", Debit: rating.Debit{CallID: callID, From: "sip:alice@example.com", Duration: 30}}
	}
	return o.Journal.End(callID, d)
}

// TestSnapshotCallEndedMidWalkNotBothSessionAndDebit: a call that ends
// while the snapshot walks the table, after its session was put in the
// snapshot, must not also have its debit in the snapshot: a power cut
// that loses what was written after the snapshot's start (its end, in
// the interval's unflushed log) would bring back both the live call,
// which is ended (and debited) again, and its debit: twice.
func TestSnapshotCallEndedMidWalkNotBothSessionAndDebit(t *testing.T) {
	dir := t.TempDir()
	opts := store.Options{NoSync: true, FlushEvery: time.Hour} // no flush but the snapshot's within the test
	j, err := Open(dir, Options{Store: opts}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	j.OpenDebits(&recordingEngine{got: make(chan struct{}, 1)}, debit.Options{MinBackoff: time.Hour}, nil) // not delivered
	m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 5 * time.Second}, nil, &dialogtest.Ender[dialog.Target]{}, owingJournal{j}, quiet())
	for i := range 600 {
		id := fmt.Sprintf("c%d", i)
		if m.Init(postpaidInit(id), time.Now()) != session.ReplyLimited || m.Start(id, "1:2", time.Now()) != session.ReplyOk {
			t.Fatal("call refused")
		}
	}
	puts := 0
	j.snapshotPut = func() {
		if puts++; puts == 1 { // c0 is in the snapshot: it ends now
			if m.Stop("c0") != session.ReplyOk {
				t.Error("stop refused")
			}
		}
	}
	if err := j.snapshot(m); err != nil {
		t.Fatal(err)
	}
	j.snapshotPut = nil
	// The power cut: the snapshot is on disk, the log since its start is not.
	cut := storetest.CopyDir(t, dir)
	ents, _ := os.ReadDir(cut)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "wal-") || e.Name() == "ring" {
			os.Remove(filepath.Join(cut, e.Name()))
		}
	}
	l, live, err := store.Open(cut, store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, session := live[sessionPrefix+"c0"]
	owed := 0
	for _, o := range debit.Restore(live, "", quiet()) {
		if o.Debit.CallID == "c0" {
			owed++
		}
	}
	if session && owed > 0 {
		t.Errorf("after the cut, c0 is both a live call (ended and debited again) and %d debit owed", owed)
	}
	if !session && owed == 0 {
		t.Errorf("after the cut, c0 is neither a call nor a debit owed: its debit is lost")
	}
	m.Shutdown()
	j.StopDebits()
	j.Close(nil)
}
