package journal

import (
	"log/slog"
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

// TestRestoredExpiredCallWithMarkDebitedOnce: a crash leaves a prepaid
// call's record beside an asked mark for its Call-ID (a second init of the
// call, refused as a duplicate, asked the engine; the daemon died before
// that mark was settled). The call's time passed while the daemon was
// down, so the restore ends it, owing its debit. The mark is covered by
// that debit (ReleaseAsked: "a mark beside its session is covered by the
// session's own debit"): exactly one debit is owed for the Call-ID, not a
// second 0 s release.
func TestRestoredExpiredCallWithMarkDebitedOnce(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Store: store.Options{NoSync: true}}
	j, err := Open(dir, opts, quiet())
	if err != nil {
		t.Fatal(err)
	}
	answered := time.Now().Add(-2 * time.Hour)
	call := &session.Session{CallID: "x", Party: "sip:alice@example.com", RURI: "sip:0031@example.com", Token: "None",
		Application: "audio", Engine: "e:1", Prepaid: true, Owed: true, HasDialog: true, Dialog: dialog.ID{Entry: 1, ID: 2},
		Cap: session.NoLimit, Limit: 60, Created: answered, Answered: answered, EndAt: answered.Add(time.Minute)}
	j.Save(call)(time.Time{})
	j.Asked(&session.Session{CallID: "x", Party: call.Party, RURI: call.RURI, Application: "audio", Engine: "e:1",
		Limit: session.NoLimit, Cap: session.NoLimit, Created: time.Now()})(time.Time{})
	if err := j.Close(nil); err != nil { // a crash: no final snapshot, the log replays
		t.Fatal(err)
	}

	// The daemon's start-up, in its order (daemon.start).
	j, err = Open(dir, opts, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(nil)
	m := session.NewManager(session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 5 * time.Second}, nil, &dialogtest.Ender[dialog.Target]{}, j, quiet())
	defer m.Shutdown()
	j.StartDebits(&recordingEngine{got: make(chan struct{}, 1)}, debit.Options{MinBackoff: time.Hour}, m.Debited)
	sessions, asked := j.RestoredSessions()
	if len(sessions) != 1 {
		t.Fatalf("restored %d sessions, want 1", len(sessions))
	}
	m.Restore(sessions)
	m.ReleaseAsked(asked)

	var owed []int
	for _, st := range j.Spool().Status() {
		if st.Debit.CallID == "x" {
			owed = append(owed, st.Debit.Duration)
		}
	}
	if len(owed) != 1 || owed[0] != 60 {
		t.Fatalf("debits owed for x: durations %v, want one of 60 s (the limit)", owed)
	}
}

// TestUnknownRecordKindKeptAndReported: a state directory written by a
// newer version (then downgraded) holds a record of a kind this version
// does not know. It is reported, and kept as it is through snapshots, so
// the newer version finds it again: not dropped without a word at the
// first snapshot.
func TestUnknownRecordKindKeptAndReported(t *testing.T) {
	dir := t.TempDir()
	l, _, err := store.Open(dir, store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(store.Put("z/future", []byte("from a newer version"))).Wait(); err != nil {
		t.Fatal(err)
	}
	l.Close()

	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	j, err := Open(dir, Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := session.NewManager(session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 5 * time.Second}, nil, &dialogtest.Ender[dialog.Target]{}, j, quiet())
	j.StartDebits(&recordingEngine{got: make(chan struct{}, 1)}, debit.Options{MinBackoff: time.Hour}, m.Debited)
	j.RestoredAtAnswer()
	j.RestoredSessions()
	m.Shutdown()
	if err := j.Close(m); err != nil { // the final snapshot
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "z/future") {
		t.Errorf("nothing said of the record of an unknown kind; log: %q", logged.String())
	}
	l, live, err := store.Open(dir, store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if string(live["z/future"]) != "from a newer version" {
		t.Errorf("the record of an unknown kind was dropped by the snapshot: %q", live)
	}
}

// crashAfterBye is the journal, but it takes a crash image of the state
// directory as soon as the first batch that asks for a dialog end is
// durable: what a kill -9 right after that batch leaves.
type crashAfterBye struct {
	*Journal
	t     *testing.T
	dir   string
	image string
}

func (c *crashAfterBye) EndWithBye(callID string, owed *session.Owed, bye dialog.Target) (session.Wait, dialog.Target) {
	wait, bye := c.Journal.EndWithBye(callID, owed, bye)
	c.crash(wait)
	return wait, bye
}

func (c *crashAfterBye) EndWithByeAtAnswer(callID string, owed *session.Owed, bye dialog.Target, s *session.Session) (session.Wait, dialog.Target) {
	wait, bye := c.Journal.EndWithByeAtAnswer(callID, owed, bye, s)
	c.crash(wait)
	return wait, bye
}

func (c *crashAfterBye) crash(wait session.Wait) {
	if c.image != "" {
		return
	}
	if err := wait(time.Time{}); err != nil {
		c.t.Fatal(err)
	}
	c.image = storetest.CopyDir(c.t, c.dir)
}

// TestTerminateRingingCrashKeepsAtAnswer: an operator ends a ringing call
// on OpenSIPS (which can CANCEL it); the call is kept aside, to be ended
// if an answer crossed the CANCEL (keepForAnswerLocked). A crash right
// after the call's end is recorded must not lose that: the restarted
// daemon still ends the call when `start` comes, instead of answering Not
// found and leaving it unlimited.
func TestTerminateRingingCrashKeepsAtAnswer(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{}, quiet()) // sync = yes: a durable batch is on disk
	if err != nil {
		t.Fatal(err)
	}
	c := &crashAfterBye{Journal: j, t: t, dir: dir}
	lim := session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour, StaleTimeout: time.Hour,
		ProxyTimeout: 5 * time.Second}
	m := session.NewManager(lim, nil, &dialogtest.Ender[dialog.Target]{Early: true}, c, quiet())
	if got := m.Init(postpaidInit("ring"), time.Now()); got != session.ReplyLimited {
		t.Fatalf("init: %v", got)
	}
	if got := m.Terminate("ring"); got != session.TerminateRequested {
		t.Fatalf("terminate: %v", got)
	}
	if _, ok := m.AtAnswer("ring"); !ok {
		t.Fatal("the terminated ringing call is not kept to be ended at answer")
	}
	m.Shutdown()
	j.Close(nil)
	if c.image == "" {
		t.Fatal("no crash image taken")
	}

	j, err = Open(c.image, Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(nil)
	m = session.NewManager(lim, nil, &dialogtest.Ender[dialog.Target]{Early: true}, j, quiet())
	defer m.Shutdown()
	atAnswer := j.RestoredAtAnswer()
	sessions, _ := j.RestoredSessions()
	m.Restore(sessions)
	m.RestoreAtAnswer(atAnswer)
	if got := m.Start("ring", "1:2", time.Now()); got != session.ReplyOk {
		t.Fatalf("start after the crash answered %v: the call the operator ended runs unlimited", got)
	}
}
