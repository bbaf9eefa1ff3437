package session_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// A prepaid call answered while the daemon was down joins its party's
// calls on one balance: the engine gave it, at init, the party's common
// end counting the calls already running. A start whose re-ask fails
// brings the party's calls no later than that (retime onlySooner); the
// call answered meanwhile must do the same, or the party's older call
// talks on past the shared balance (with re-asks off, until its own,
// longer, end).
func TestMissedAnswerKeepsPartyOnOneBalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(298))
		now := time.Now()
		party := "alice@example.com"
		// A: answered 100 s ago with the whole balance, 600 s.
		a := &Session{CallID: "a", Party: party, RURI: "sip:x@example.com", Engine: "engine1",
			Prepaid: true, Owed: true, Limit: 600, Cap: NoLimit, Created: now.Add(-110 * time.Second),
			Answered: now.Add(-100 * time.Second), EndAt: now.Add(500 * time.Second),
			Dialog: sipdialog.ID{Entry: 1, ID: 1}, HasDialog: true}
		// B: set up 30 s ago, given 298 s (the common end with A); answered
		// 20 s ago while the daemon was down.
		b := &Session{CallID: "b", Party: party, RURI: "sip:y@example.com", Engine: "engine1",
			Prepaid: true, Owed: true, Limit: 298, Cap: NoLimit, Created: now.Add(-30 * time.Second)}
		ringing := Ringing([]*Session{a, b}, nil)
		f.m.Restore([]*Session{a, b})
		f.m.FindMissedAnswers(context.Background(), lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
			return sipdialog.Found{Exists: true, Answered: true, Dialog: sipdialog.ID{Entry: 2, ID: 2}, HasDialog: true,
				AnsweredAt: now.Add(-20 * time.Second)}, nil
		}), ringing)
		gb, _ := f.m.Get("b")
		ga, _ := f.m.Get("a")
		if gb.EndAt.IsZero() {
			t.Fatal("b not timed")
		}
		if ga.EndAt.After(gb.EndAt.Add(time.Second)) {
			t.Fatalf("a ends %v after b: the party talks past its common end (a in %v, b in %v)",
				ga.EndAt.Sub(gb.EndAt), time.Until(ga.EndAt), time.Until(gb.EndAt))
		}
	})
}

// A call answered while the daemon was down, 20 s into its setup, is not
// a call "not answered within the setup time". If housekeeping reaches it
// before the proxy's answer does (the proxy slow to answer after the
// restart), it must still be timed from the proxy's answer and debited,
// not cut a second later, free.
func TestMissedAnswerAfterSetupTimeHousekeeping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit, SetupTime: 60 * time.Second,
			StaleTimeout: 24 * time.Hour}, limited(3600))
		now := time.Now()
		s := &Session{CallID: "c1", Party: "alice@example.com", RURI: "sip:x@example.com", Engine: "engine1",
			Prepaid: true, Owed: true, Limit: 3600, Cap: NoLimit, Created: now.Add(-100 * time.Second)}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		asked, answer := make(chan struct{}), make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.m.FindMissedAnswers(context.Background(), lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
				close(asked)
				<-answer
				return sipdialog.Found{Exists: true, Answered: true, Dialog: sipdialog.ID{Entry: 2, ID: 2}, HasDialog: true,
					AnsweredAt: now.Add(-80 * time.Second)}, nil
			}), ringing)
		}()
		<-asked
		f.m.Housekeep() // its setup time passed while the daemon was down
		close(answer)
		<-done
		time.Sleep(10 * time.Second)
		select {
		case tg := <-f.ch:
			t.Errorf("a call answered within its setup time, with 3500 s left, was cut (by %v after the restore): %+v",
				time.Since(now), tg)
		default:
		}
		for _, d := range f.j.Debits() {
			if d.Debit.Duration == 0 && len(f.j.Debits()) == 1 {
				t.Errorf("the call that talked is debited only a 0 s release: %+v", f.j.Debits())
			}
		}
	})
}

// A proxy that never answers the lookups does not keep a call restored
// ringing in the table for ever: one more setup time after the restore,
// the setup time applies again (the call is released and, on Kamailio,
// kept aside to be ended if it is answered).
func TestUnheardRingingCallReleasedAfterOneMoreSetupTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit, SetupTime: 60 * time.Second,
			StaleTimeout: 24 * time.Hour}, limited(3600))
		now := time.Now()
		s := &Session{CallID: "c1", Party: "alice@example.com", RURI: "sip:x@example.com", Engine: "engine1",
			Prepaid: true, Owed: true, Limit: 3600, Cap: NoLimit, Created: now.Add(-100 * time.Second)}
		ringing := Ringing([]*Session{s}, nil)
		f.m.Restore([]*Session{s})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.m.FindMissedAnswers(ctx, lookerFunc(func(context.Context, string) (sipdialog.Found, error) {
				return sipdialog.Found{}, errors.New("proxy mute")
			}), ringing)
		}()
		time.Sleep(30 * time.Second)
		f.m.Housekeep()
		if _, ok := f.m.Get("c1"); !ok {
			t.Fatal("released 30 s after the restore, before the proxy's word and one more setup time")
		}
		time.Sleep(31 * time.Second)
		f.m.Housekeep()
		if _, ok := f.m.Get("c1"); ok {
			t.Fatal("still ringing in the table one setup time after the restore, the proxy still mute")
		}
		if _, kept := f.m.AtAnswer("c1"); !kept {
			t.Error("not kept aside to be ended if answered")
		}
		cancel()
		<-done
	})
}
