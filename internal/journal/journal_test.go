package journal

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/debit"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// recordingEngine takes note of each debit and answers that it was never
// sent, so the spool keeps it.
type recordingEngine struct {
	mu   sync.Mutex
	seen []rating.Debit
	got  chan struct{}
}

func (e *recordingEngine) DebitBalance(_ context.Context, _ string, d rating.Debit) (rating.DebitReply, error) {
	e.mu.Lock()
	e.seen = append(e.seen, d)
	e.mu.Unlock()
	select {
	case e.got <- struct{}{}:
	default:
	}
	return rating.DebitReply{}, rating.ErrNotSent
}

// TestOldStateDirLoads reads testdata/state-v1, written by the daemon
// before the journal was its own package (daemon/state.go at e139193,
// sync = yes): an answered call, an asked mark, a call to end when
// answered, a dialog end request and a debit owed. The layout and every
// record must still read the same.
func TestOldStateDirLoads(t *testing.T) {
	j, err := Open(storetest.CopyDir(t, "testdata/state-v1"), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(nil)
	ts := time.Unix(1700000000, 0)
	atAnswer := j.RestoredAtAnswer()
	want := &session.Session{CallID: "ringing@1", Party: "sip:carol@example.com", Limit: session.NoLimit,
		Cap: session.NoLimit, EndAtAnswer: session.EndAtAnswerOperator, Created: ts}
	if len(atAnswer) != 1 || !reflect.DeepEqual(atAnswer[0], want) {
		t.Fatalf("calls to end at answer: %+v", atAnswer)
	}
	eng := &recordingEngine{got: make(chan struct{}, 1)}
	j.StartDebits(eng, debit.Options{MinBackoff: time.Hour}, nil)
	sessions, asked := j.RestoredSessions()
	want = &session.Session{CallID: "answered@1", Party: "sip:alice@example.com", RURI: "sip:0031@example.com", Diverter: "None",
		SourceIP: "10.0.0.1", FromTag: "ft", Token: "None", Application: "audio", HasDialog: true, Dialog: dialog.ID{Entry: 1, ID: 2},
		Cap: session.NoLimit, Limit: 3600, Created: ts, Answered: ts.Add(time.Second), EndAt: ts.Add(3601 * time.Second)}
	if len(sessions) != 1 || !reflect.DeepEqual(sessions[0], want) {
		t.Fatalf("sessions: %+v", sessions)
	}
	want = &session.Session{CallID: "asked@1", Party: "sip:bob@example.com", RURI: "sip:0032@example.com", Engine: "127.0.0.1:9024",
		Limit: session.NoLimit, Cap: session.NoLimit, Created: ts}
	if len(asked) != 1 || !reflect.DeepEqual(asked[0], want) {
		t.Fatalf("asked marks: %+v", asked)
	}
	ends := j.DialogEnds().Oldest(-1)
	if len(ends) != 1 || ends[0].Target != (dialog.Target{CallID: "cut@1", Dialog: dialog.ID{Entry: 3, ID: 4}, Ref: 1}) {
		t.Fatalf("dialog ends: %+v", ends)
	}
	select {
	case <-eng.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the debit owed was not restored")
	}
	j.StopDebits()
	wantDebit := rating.Debit{CallID: "paid@1", From: "sip:dave@example.com", To: "sip:0033@example.com", Gateway: "10.0.0.2",
		Application: "audio", Duration: 42}
	if len(eng.seen) != 1 || eng.seen[0] != wantDebit {
		t.Fatalf("debits: %+v", eng.seen)
	}
	if j.DebitsWaiting() != 1 {
		t.Fatalf("%d debits waiting, want the one not sent", j.DebitsWaiting())
	}
}

// TestLayout pins the keys each journal call writes: what the next
// version reads.
func TestLayout(t *testing.T) {
	for _, sync := range []bool{false, true} {
		dir := t.TempDir()
		j, err := Open(dir, Options{Store: store.Options{NoSync: sync}}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		eng := &recordingEngine{got: make(chan struct{}, 1)}
		j.StartDebits(eng, debit.Options{MinBackoff: time.Hour}, nil)
		s := &session.Session{CallID: "c1", Party: "sip:a@b", Limit: 60, Cap: session.NoLimit}
		j.Asked(&session.Session{CallID: "c1"})(time.Time{})
		j.Asked(&session.Session{CallID: "probe"})(time.Time{})
		j.Save(s)(time.Time{}) // clears c1's mark
		j.EndAtAnswer("ring", nil, &session.Session{CallID: "ring", EndAtAnswer: session.EndAtAnswerSetupTime})(time.Time{})
		_, bye := j.EndWithBye("cut", nil, dialog.Target{CallID: "cut", NoID: true})
		j.Release("gone", &rating.Owed{Engine: "e:1", Debit: rating.Debit{CallID: "gone", From: "sip:a@b"}})
		j.StopDebits()
		if err := j.Close(nil); err != nil {
			t.Fatal(err)
		}
		l, live, err := store.Open(dir, store.Options{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		keys := map[string]bool{}
		for k := range live {
			keys[k] = true
		}
		var debitKey string
		for k := range keys {
			if len(k) == 18 && k[:2] == debit.Prefix {
				debitKey = k
			}
		}
		want := map[string]bool{"s/c1": true, "a/probe": true, "w/ring": true, dialogEndKey(bye.Ref): true, debitKey: true}
		if debitKey == "" || !reflect.DeepEqual(keys, want) {
			t.Fatalf("NoSync %v: keys %v, want %v", sync, keys, want)
		}
		if got, err := session.Unmarshal(live["s/c1"]); err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("s/c1: %+v %v", got, err)
		}
	}
}
