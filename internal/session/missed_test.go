package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// scriptedLooker answers each lookup of a Call-ID with the next of its
// answers (the last one repeats); an answer with err set fails.
type scriptedLooker struct {
	mu      sync.Mutex
	answers map[string][]lookupAnswer
	asked   map[string]int
}

type lookupAnswer struct {
	found sipdialog.Found
	err   error
}

func (l *scriptedLooker) Lookup(ctx context.Context, callID string) (sipdialog.Found, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked[callID]++
	a := l.answers[callID]
	if len(a) == 0 {
		return sipdialog.Found{}, errors.New("no script")
	}
	next := a[0]
	if len(a) > 1 {
		l.answers[callID] = a[1:]
	}
	return next.found, next.err
}

func (l *scriptedLooker) times(callID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.asked[callID]
}

// A call ringing when the daemon stopped, answered before it came back:
// the proxy dropped its `start`. After the restore, the proxy's word
// decides: answered calls are timed from the proxy's answer time, gone
// ones released, ringing ones left to their start.
func TestFindMissedAnswers(t *testing.T) {
	dlg := sipdialog.ID{Entry: 1079, ID: 6296}
	down := errors.New("proxy management socket: connection refused")
	for _, tc := range []struct {
		name    string
		limit   int
		keptFor string // kept aside to be ended at answer, not ringing in the table
		answers []lookupAnswer
		// want: the call cut at this offset from the restore (with a BYE to
		// dlg), and debited this many seconds; or not cut.
		cutAfter  time.Duration
		debit     int
		cut       bool
		tracked   bool // still in the table afterwards, ringing
		released  bool // 0 s debit, no BYE
		keptAside bool // still kept to be ended at answer
		// answeredAgo: the proxy's answer time, before the restore (0: not told).
		answeredAgo time.Duration
	}{
		{name: "answered 10 s into the outage", limit: 60, answeredAgo: 20 * time.Second,
			answers: []lookupAnswer{{found: sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true}}},
			cut:     true, cutAfter: 40 * time.Second, debit: 60},
		{name: "time ran out during the outage", limit: 10, answeredAgo: 20 * time.Second,
			answers: []lookupAnswer{{found: sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true}}},
			cut:     true, cutAfter: 0, debit: 10},
		{name: "answer time not told: timed from its setup", limit: 60,
			answers: []lookupAnswer{{found: sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true}}},
			cut:     true, cutAfter: 30 * time.Second, debit: 60},
		{name: "proxy down, then answers", limit: 60, answeredAgo: 20 * time.Second,
			answers: []lookupAnswer{{err: down}, {err: down}, {found: sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true}}},
			cut:     true, cutAfter: 40 * time.Second, debit: 60},
		{name: "ringing, then answered in the proxy's reconnect window", limit: 60, answeredAgo: -2 * time.Second,
			answers: []lookupAnswer{{found: sipdialog.Found{Exists: true}}, {found: sipdialog.Found{Exists: true}},
				{found: sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true}}},
			cut: true, cutAfter: 62 * time.Second, debit: 60},
		{name: "gone while the daemon was down", limit: 60,
			answers:  []lookupAnswer{{found: sipdialog.Found{}}},
			released: true},
		{name: "kept for answer, answered meanwhile", limit: 60, keptFor: EndAtAnswerOperator, answeredAgo: 20 * time.Second,
			answers: []lookupAnswer{{found: sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true}}},
			cut:     true, cutAfter: time.Second, debit: -1},
		{name: "kept for answer, gone", limit: 60, keptFor: EndAtAnswerSetupTime,
			answers: []lookupAnswer{{found: sipdialog.Found{}}}},
		{name: "kept for answer, ringing, then gone", limit: 60, keptFor: EndAtAnswerSetupTime,
			answers: []lookupAnswer{{found: sipdialog.Found{Exists: true}}, {found: sipdialog.Found{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: tc.limit, PrepaidLimit: NoLimit}, limited(tc.limit))
				restored := time.Now()
				s := &Session{CallID: "c1", Party: "sip:alice@example.com", RURI: "sip:bob@example.com", Engine: "engine1",
					Prepaid: true, Owed: tc.keptFor == "", Limit: tc.limit, Cap: NoLimit, Created: restored.Add(-30 * time.Second)}
				var ringing []string
				if tc.keptFor != "" {
					s.EndAtAnswer, s.Engine = tc.keptFor, ""
					ringing = Ringing(nil, []*Session{s})
					f.m.RestoreAtAnswer([]*Session{s})
				} else {
					ringing = Ringing([]*Session{s}, nil)
					f.m.Restore([]*Session{s})
				}
				answers := append([]lookupAnswer(nil), tc.answers...)
				for i := range answers {
					if answers[i].found.Answered && tc.answeredAgo != 0 {
						answers[i].found.AnsweredAt = restored.Add(-tc.answeredAgo)
					}
				}
				l := &scriptedLooker{answers: map[string][]lookupAnswer{"c1": answers}, asked: map[string]int{}}
				f.m.FindMissedAnswers(context.Background(), l, ringing)
				if got := l.times("c1"); got != len(tc.answers) {
					t.Errorf("proxy asked %d times, want %d", got, len(tc.answers))
				}
				var cut *dialog.Target
				var cutAt time.Time
				select {
				case tg := <-f.ch:
					cut, cutAt = &tg, time.Now()
				case <-time.After(time.Hour):
				}
				switch {
				case tc.cut && cut == nil:
					t.Fatal("never cut")
				case !tc.cut && cut != nil:
					t.Fatalf("cut %+v", *cut)
				case tc.cut:
					if cut.Dialog != dlg || cut.NoID {
						t.Errorf("cut dialog %+v, want %v", *cut, dlg)
					}
					// The limit runs from the proxy's answer, however long
					// the lookup's retries took.
					if got := cutAt.Sub(restored); got != tc.cutAfter {
						t.Errorf("cut %v after the restore, want %v", got, tc.cutAfter)
					}
				}
				_, tracked := f.m.Get("c1")
				if tracked != tc.tracked {
					t.Errorf("tracked %v, want %v", tracked, tc.tracked)
				}
				if _, kept := f.m.AtAnswer("c1"); kept != tc.keptAside {
					t.Errorf("kept aside %v, want %v", kept, tc.keptAside)
				}
				debits := f.j.Debits()
				switch {
				case tc.debit > 0:
					if len(debits) != 1 || debits[0].Debit.Duration != tc.debit {
						t.Errorf("debits %+v, want one of %d s", debits, tc.debit)
					}
				case tc.released:
					if len(debits) != 1 || debits[0].Debit.Duration != 0 {
						t.Errorf("debits %+v, want one of 0 s", debits)
					}
				default:
					if len(debits) != 0 {
						t.Errorf("debits %+v, want none", debits)
					}
				}
			})
		})
	}
}

// A start that comes while the lookup is in flight wins: the proxy's
// answer, older, changes nothing.
func TestMissedAnswerAfterStartChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
		s := &Session{CallID: "c1", Party: "sip:alice@example.com", Limit: 60, Cap: NoLimit, Created: time.Now().Add(-30 * time.Second)}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		l := lookerFunc(func(ctx context.Context, id string) (sipdialog.Found, error) {
			if got := f.m.Start(id, "1:2", time.Now()); got != ReplyOk {
				t.Errorf("start: %q", got)
			}
			return sipdialog.Found{Exists: true, Answered: true, Dialog: sipdialog.ID{Entry: 9, ID: 9}, HasDialog: true, AnsweredAt: time.Now().Add(-25 * time.Second)}, nil
		})
		f.m.FindMissedAnswers(context.Background(), l, ringing)
		got, ok := f.m.Get("c1")
		if !ok || got.Dialog != (sipdialog.ID{Entry: 1, ID: 2}) || time.Until(got.EndAt) != 60*time.Second {
			t.Fatalf("session %+v, want the start's dialog 1:2 and end in 60 s", got)
		}
	})
}

type lookerFunc func(ctx context.Context, callID string) (sipdialog.Found, error)

func (f lookerFunc) Lookup(ctx context.Context, callID string) (sipdialog.Found, error) {
	return f(ctx, callID)
}

// A call the proxy says is ringing is asked about until its start comes.
func TestMissedAnswerAskedUntilStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
		s := &Session{CallID: "c1", Party: "sip:alice@example.com", Limit: 60, Cap: NoLimit, Created: time.Now()}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		go func() {
			time.Sleep(5 * time.Second)
			f.m.Start("c1", "1:2", time.Now())
		}()
		n := 0
		f.m.FindMissedAnswers(context.Background(), lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
			n++
			return sipdialog.Found{Exists: true}, nil
		}), ringing)
		// Asked at 0, 1, 3 s; at 7 s its start had come.
		if n != 3 || time.Since(s.Created) != 7*time.Second {
			t.Fatalf("asked %d times over %v", n, time.Since(s.Created))
		}
	})
}

// Stopping the daemon stops the retries.
func TestFindMissedAnswersStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
		s := &Session{CallID: "c1", Party: "sip:alice@example.com", Limit: 60, Cap: NoLimit, Created: time.Now()}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		n := 0
		f.m.FindMissedAnswers(ctx, lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
			n++
			return sipdialog.Found{}, errors.New("down")
		}), ringing)
		if ctx.Err() == nil {
			t.Fatal("returned before its context ended, the call unsettled")
		}
		// 1+2+4+...+60 s waits: about 15 asks in 10 minutes, not thousands.
		if n < 5 || n > 20 {
			t.Fatalf("asked %d times in 10 minutes", n)
		}
		if _, ok := f.m.Get("c1"); !ok {
			t.Fatal("a call the proxy gave no word on was dropped")
		}
	})
}

// Kamailio still lists an ended dialog a while: a call answered and ended
// while the daemon was down is debited what the proxy says it lasted (up
// to its limit), not released free; no BYE is sent for it.
func TestAnsweredAndEndedMeanwhileDebited(t *testing.T) {
	for _, tc := range []struct {
		name            string
		limit           int
		answered, ended time.Duration // before the restore
		debit           int
	}{
		{name: "talked 15 s", limit: 60, answered: 20 * time.Second, ended: 5 * time.Second, debit: 15},
		{name: "talked past its limit", limit: 10, answered: 25 * time.Second, ended: 5 * time.Second, debit: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: tc.limit, PrepaidLimit: NoLimit}, limited(tc.limit))
				restored := time.Now()
				s := &Session{CallID: "c1", Party: "sip:alice@example.com", RURI: "sip:bob@example.com", Engine: "engine1",
					Prepaid: true, Owed: true, Limit: tc.limit, Cap: NoLimit, Created: restored.Add(-30 * time.Second)}
				ringing := Ringing([]*Session{s}, nil)
				f.m.Restore([]*Session{s})
				f.m.FindMissedAnswers(context.Background(), lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
					return sipdialog.Found{Ended: true, Dialog: sipdialog.ID{Entry: 1, ID: 2}, HasDialog: true,
						AnsweredAt: restored.Add(-tc.answered), EndedAt: restored.Add(-tc.ended)}, nil
				}), ringing)
				if _, ok := f.m.Get("c1"); ok {
					t.Fatal("still tracked")
				}
				select {
				case tg := <-f.ch:
					t.Fatalf("a BYE for a dialog that ended: %+v", tg)
				default:
				}
				if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != tc.debit {
					t.Fatalf("debits %+v, want one of %d s", d, tc.debit)
				}
			})
		})
	}
}

// A call restored ringing whose start is lost after the restart too (the
// proxy's processes wait before they reach a restarted daemon again) and
// whose stop comes between two lookups: the stop is held and the proxy
// asked at once, so the call is debited what it lasted, not released
// free; a proxy that gives no word about it gets the stop applied as it
// came (nothing owed is known), not held for ever.
func TestStopOfCallRestoredRingingAsksTheProxy(t *testing.T) {
	const answeredAt, stoppedAt, purgedAt = 16 * time.Second, 28 * time.Second, 30 * time.Second
	for _, tc := range []struct {
		name       string
		mute       bool // the proxy stops answering lookups after the stop
		stillLive  bool // the proxy still lists it answered after the stop
		neverAnswd bool // the proxy says it rang until its stop
		debit      int
	}{
		{name: "answered and ended, still listed", debit: 12},
		{name: "still listed answered after its stop", stillLive: true, debit: 12},
		{name: "never answered", neverAnswd: true, debit: 0},
		{name: "the proxy mute after the stop", mute: true, debit: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, limited(60))
				restored := time.Now()
				s := &Session{CallID: "c1", Party: "sip:alice@example.com", RURI: "sip:bob@example.com", Engine: "engine1",
					Prepaid: true, Owed: true, Limit: 60, Cap: NoLimit, Created: restored.Add(-5 * time.Second)}
				ringing := Ringing([]*Session{s}, nil)
				f.m.Restore([]*Session{s})
				dlg := sipdialog.ID{Entry: 1, ID: 2}
				looker := lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
					at := time.Since(restored)
					switch {
					case tc.neverAnswd && at < purgedAt, at < answeredAt:
						return sipdialog.Found{Exists: true, Dialog: dlg, HasDialog: true}, nil
					case at < stoppedAt, tc.stillLive && at < purgedAt:
						return sipdialog.Found{Exists: true, Answered: true, Dialog: dlg, HasDialog: true, AnsweredAt: restored.Add(answeredAt)}, nil
					case tc.mute:
						return sipdialog.Found{}, errors.New("proxy management socket: no answer")
					case at < purgedAt: // Kamailio lists an ended dialog a few seconds
						return sipdialog.Found{Ended: true, Dialog: dlg, HasDialog: true, AnsweredAt: restored.Add(answeredAt), EndedAt: restored.Add(stoppedAt)}, nil
					}
					return sipdialog.Found{}, nil
				})
				go func() {
					time.Sleep(stoppedAt)
					if got := f.m.Stop("c1"); got != ReplyOk {
						t.Errorf("stop: %q", got)
					}
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				f.m.FindMissedAnswers(ctx, looker, ringing)
				if ctx.Err() != nil {
					t.Fatal("the held stop was never settled")
				}
				if _, ok := f.m.Get("c1"); ok {
					t.Fatal("still tracked after its stop")
				}
				if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != tc.debit {
					t.Fatalf("debits %+v, want one of %d s", d, tc.debit)
				}
			})
		})
	}
}

// The daemon marks the calls restored ringing before the proxy socket
// serves: a stop that comes before the lookups begin is held as well.
func TestStopBeforeLookupsBeginIsHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, limited(60))
		restored := time.Now()
		s := &Session{CallID: "c1", Party: "sip:alice@example.com", RURI: "sip:bob@example.com", Engine: "engine1",
			Prepaid: true, Owed: true, Limit: 60, Cap: NoLimit, Created: restored.Add(-40 * time.Second)}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		f.m.ExpectMissedAnswers(ringing)
		if got := f.m.Stop("c1"); got != ReplyOk {
			t.Fatalf("stop: %q", got)
		}
		if _, ok := f.m.Get("c1"); !ok {
			t.Fatal("the stop was not held for the proxy's word")
		}
		f.m.FindMissedAnswers(context.Background(), lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
			return sipdialog.Found{Ended: true, AnsweredAt: restored.Add(-30 * time.Second), EndedAt: restored}, nil
		}), ringing)
		if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 30 {
			t.Fatalf("debits %+v, want one of 30 s", d)
		}
	})
}
