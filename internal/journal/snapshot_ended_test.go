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
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

// TestSnapshotCallEndedBeforeItsChunkKeepsItsDebit: a call that
// ends while the snapshot walks the table, before its chunk is copied,
// is in the snapshot neither as a call nor as a debit (its ID is after
// the walk's start: DumpUpTo leaves it to the log). The snapshot then
// replaces the old log, where the call still was. A power cut before the
// next flush (sync = interval) loses the log after the snapshot, so the
// call's end and its debit must be durable before the snapshot replaces
// the old log, or the debit is lost with nothing left to owe it.
//
// The power cut: the ring is never fsync'd, and a segment written since
// the last flush is lost (all of them, unless everything written was
// flushed: the flushed part of a segment is not told apart here).
func TestSnapshotCallEndedBeforeItsChunkKeepsItsDebit(t *testing.T) {
	dir := t.TempDir()
	opts := store.Options{NoSync: true, FlushEvery: time.Hour} // no flush but the snapshot's within the test
	j, err := Open(dir, Options{Store: opts}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	j.OpenDebits(&recordingEngine{got: make(chan struct{}, 1)}, debit.Options{MinBackoff: time.Hour}, nil) // not delivered
	m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 5 * time.Second}, nil, &dialogtest.Ender[dialog.Target]{}, owingJournal{j}, quiet())
	const n = 600 // three chunks of the walk (session.listChunk = 256)
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		if m.Init(postpaidInit(id), time.Now()) != session.ReplyLimited || m.Start(id, "1:2", time.Now()) != session.ReplyOk {
			t.Fatal("call refused")
		}
	}
	last := fmt.Sprintf("c%d", n-1) // in the last chunk the walk copies
	puts := 0
	j.snapshotPut = func() {
		if puts++; puts == 1 {
			if m.Stop(last) != session.ReplyOk {
				t.Error("stop refused")
			}
		}
	}
	if err := j.snapshot(m); err != nil {
		t.Fatal(err)
	}
	j.snapshotPut = nil
	if puts != n-1 {
		t.Fatalf("the snapshot put %d calls, want %d: %s was not ended before its chunk was copied", puts, n-1, last)
	}
	st := j.log.Stats()
	cut := storetest.CopyDir(t, dir)
	ents, _ := os.ReadDir(cut)
	for _, e := range ents {
		if e.Name() == "ring" || (strings.HasPrefix(e.Name(), "wal-") && st.Flushed < st.Bytes) {
			os.Remove(filepath.Join(cut, e.Name()))
		}
	}
	l, live, err := store.Open(cut, store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, call := live[sessionPrefix+last]
	owed := 0
	for _, o := range debit.Restore(live, "", quiet()) {
		if o.Debit.CallID == last {
			owed++
		}
	}
	if !call && owed == 0 {
		t.Errorf("after the cut, %s is neither a call nor a debit owed: its debit is lost", last)
	}
	if call && owed > 0 {
		t.Errorf("after the cut, %s is both a live call and %d debit owed: twice", last, owed)
	}
	m.Shutdown()
	j.StopDebits()
	j.Close(nil)
}
