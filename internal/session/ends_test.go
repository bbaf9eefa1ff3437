package session_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	. "github.com/callcontrol/callcontrol/internal/session"
)

func newEarlyFixture(t *testing.T, lim Limits, answer func(rating.Request) (rating.MaxTime, error)) *fixture {
	f := newFixture(t, lim, answer)
	f.m.SetEnder(&dialogtest.Ender[dialog.Target]{C: f.ch, Early: true}) // a proxy that can end a ringing call (OpenSIPS)
	return f
}

// noEnd checks, once every goroutine of the test's bubble is blocked, that
// no dialog end was sent.
func noEnd(t *testing.T, f *fixture) {
	t.Helper()
	synctest.Wait()
	select {
	case tg := <-f.ch:
		t.Fatalf("dialog end sent: %+v", tg)
	default:
	}
}

// TestTerminateRinging: an operator ends a call still ringing. OpenSIPS
// ends it at once by Call-ID (the callee is CANCELed); Kamailio cannot, so
// it is ended the moment it is answered, never left to run unlimited.
func TestTerminateRinging(t *testing.T) {
	for _, early := range []bool{false, true} {
		name := "kamailio: at answer"
		if early {
			name = "opensips: by Call-ID"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := Limits{Limit: NoLimit, PrepaidLimit: NoLimit}
				f := newFixture(t, lim, limited(600))
				if early {
					f = newEarlyFixture(t, lim, limited(600))
				}
				if got := f.m.Init(initReq("ring", "alice", "true"), time.Now()); got != ReplyLimited {
					t.Fatal(got)
				}
				res := f.m.Terminate("ring")
				if early {
					if res != TerminateRequested {
						t.Fatalf("result %v, want requested", res)
					}
					tg := waitEnd(t, f, time.Second)
					if tg.CallID != "ring" || !tg.NoID || tg.Ref == 0 {
						t.Fatalf("ended %+v, want by Call-ID with a journal reference", tg)
					}
					if _, ok := f.m.Get("ring"); ok {
						t.Fatal("session still tracked")
					}
					// Kept aside, journaled: an answer may cross the CANCEL.
					if g, ok := f.m.AtAnswer("ring"); !ok || g.EndAtAnswer != EndAtAnswerOperator {
						t.Fatalf("kept aside: %+v %v, want to end at answer", g, ok)
					}
					if recorded, _ := f.j.AtAnswer("ring"); !recorded {
						t.Fatal("kept aside but not journaled")
					}
					if got := f.m.Stop("ring"); got != ReplyOk { // the CANCEL won: the call failed
						t.Fatalf("stop of the CANCELed call: %q", got)
					}
					if _, ok := f.m.AtAnswer("ring"); ok {
						t.Fatal("kept aside after its stop")
					}
				} else {
					if res != TerminateAtAnswer {
						t.Fatalf("result %v, want at answer", res)
					}
					noEnd(t, f)
					if _, ok := f.m.Get("ring"); ok {
						t.Fatal("still in the table: it would hold its place in the party's call limit")
					}
					g, ok := f.m.AtAnswer("ring")
					if !ok || g.EndAtAnswer != EndAtAnswerOperator {
						t.Fatalf("kept aside: %+v %v, want to end at answer", g, ok)
					}
					recorded, _ := f.j.AtAnswer("ring")
					_, saved := f.j.Saved("ring")
					journaled := recorded && !saved
					if !journaled {
						t.Fatal("the order to end at answer is not journaled in place of the session")
					}
					if res := f.m.Terminate("ring"); res != TerminateAtAnswer {
						t.Fatalf("terminate again: %v", res)
					}
					if got := f.m.Start("ring", "1079:6296", time.Now()); got != ReplyOk {
						t.Fatalf("start: %q", got)
					}
					noEnd(t, f) // not before the ACK can have confirmed the dialog
					tg := waitEnd(t, f, 5*time.Second)
					if tg.CallID != "ring" || tg.NoID || tg.Dialog != (dialog.ID{Entry: 1079, ID: 6296}) {
						t.Fatalf("ended %+v", tg)
					}
					if _, ok := f.m.AtAnswer("ring"); ok {
						t.Fatal("still kept aside after the answer")
					}
					_, left := f.j.AtAnswer("ring")
					if left != 0 {
						t.Fatal("the order to end at answer is still journaled after the answer")
					}
				}
				// Released with a 0 s debit either way: no second one.
				if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 0 {
					t.Fatalf("debits %+v", d)
				}
				if got := f.m.Stop("ring"); got != ReplyNotFound {
					t.Fatalf("stop after the end: %q", got)
				}
				if res := f.m.Terminate("ring"); res != TerminateUnknown {
					t.Fatalf("second terminate: %v", res)
				}
			})
		})
	}
}

// TestSetupTimeRinging: a call still ringing at the end of the setup time
// never runs unlimited when answered late.
func TestSetupTimeRinging(t *testing.T) {
	lim := Limits{Limit: 60, PrepaidLimit: NoLimit, SetupTime: time.Minute, StaleTimeout: time.Hour}
	t.Run("opensips: ended now, and at answer if the answer crossed the CANCEL", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newEarlyFixture(t, lim, nil)
			f.m.Init(initReq("slow", "alice", ""), time.Now().Add(-2*time.Minute))
			f.m.Housekeep()
			if tg := waitEnd(t, f, time.Second); tg.CallID != "slow" || !tg.NoID {
				t.Fatalf("ended %+v", tg)
			}
			if got := f.m.Start("slow", "1:2", time.Now()); got != ReplyOk {
				t.Fatalf("late start: %q", got)
			}
			if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "slow" || tg.Dialog != (dialog.ID{Entry: 1, ID: 2}) {
				t.Fatalf("the answered call ended %+v, want by its dialog", tg)
			}
		})
	})
	t.Run("kamailio: ended at answer, forgotten after the stale timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t, lim, nil)
			f.m.Init(initReq("slow", "alice", ""), time.Now().Add(-2*time.Minute))
			f.m.Init(initReq("never", "bob", ""), time.Now().Add(-2*time.Minute))
			f.m.Init(initReq("failed", "carol", ""), time.Now().Add(-2*time.Minute))
			f.m.Housekeep()
			noEnd(t, f)
			if pending, _, parties := f.m.Counts(); pending != 0 || parties != 0 {
				t.Fatalf("%d pending, %d parties after the setup time: want none", pending, parties)
			}
			if got := f.m.Stop("failed"); got != ReplyOk { // the call failed while ringing
				t.Fatalf("stop of a call kept aside: %q", got)
			}
			if _, ok := f.m.AtAnswer("failed"); ok {
				t.Fatal("kept aside after its stop")
			}
			if got := f.m.Start("slow", "5:6", time.Now()); got != ReplyOk {
				t.Fatalf("late start: %q", got)
			}
			if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "slow" || tg.Dialog != (dialog.ID{Entry: 5, ID: 6}) {
				t.Fatalf("ended %+v", tg)
			}
			if g, ok := f.m.AtAnswer("never"); !ok || g.EndAtAnswer != EndAtAnswerSetupTime {
				t.Fatalf("never: %+v %v", g, ok)
			}
			f.m.SetNow(func() time.Time { return time.Now().Add(lim.StaleTimeout) })
			f.m.Housekeep() // now past the stale timeout
			if _, ok := f.m.AtAnswer("never"); ok {
				t.Fatal("a call never answered is kept past the stale timeout")
			}
			noEnd(t, f)
		})
	})
}

// TestUnusableDialogID: Kamailio's dialogid that does not parse leaves a
// call that Kamailio cannot end: say so at start, and hand the dialog client
// a target without an id (it logs the ERROR), never dialog 0:0.
func TestUnusableDialogID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 1, PrepaidLimit: NoLimit}, nil)
		f.m.Init(initReq("garbled", "alice", ""), time.Now())
		if got := f.m.Start("garbled", "12x:7", time.Now()); got != ReplyOk {
			t.Fatal(got)
		}
		tg := waitEnd(t, f, 5*time.Second)
		if tg.CallID != "garbled" || !tg.NoID {
			t.Fatalf("ended %+v, want a target without a dialog id", tg)
		}
	})
}

// TestShutdownIsAStoppingPoint: after Shutdown no method changes the table
// or arms a timer; a debit reply arriving then re-times nothing, and a call
// falling due is left, journaled, for the next start.
func TestShutdownIsAStoppingPoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(60))
		f.m.Init(initReq("a1", "alice", "true"), time.Now())
		f.m.Start("a1", "1:1", time.Now())
		f.m.Init(initReq("a2", "alice", "true"), time.Now())
		f.m.Start("a2", "1:2", time.Now())
		f.m.Init(initReq("p1", "bob", "true"), time.Now())
		before, _ := f.m.Get("a1")
		saves := f.j.SavedCount()

		f.m.Shutdown()
		// The debit of a call ended just before, answered during shutdown.
		f.m.Debited(Owed{Engine: "engine1", Debit: rating.Debit{CallID: "a0", From: before.Party}},
			rating.DebitReply{OK: true, MaxSessionTime: 3600})
		f.m.Retime(before.Party, "engine1", 3600)
		after, _ := f.m.Get("a1")
		if !after.EndAt.Equal(before.EndAt) {
			t.Fatalf("re-timed after shutdown: %v -> %v", before.EndAt, after.EndAt)
		}
		for _, r := range []struct {
			what string
			got  Reply
		}{
			{"init", f.m.Init(initReq("new", "carol", "true"), time.Now())},
			{"start", f.m.Start("p1", "2:2", time.Now())},
			{"stop", f.m.Stop("a2")},
		} {
			if r.got != ReplyError {
				t.Errorf("%s after shutdown: %q, want Error", r.what, r.got)
			}
		}
		if res := f.m.Terminate("a2"); res != TerminateShuttingDown {
			t.Errorf("terminate after shutdown: %v", res)
		}
		f.m.Housekeep()
		f.m.Restore([]*Session{{CallID: "restored", Party: "sip:x@y", Limit: 5, Cap: NoLimit, Created: time.Now(),
			Answered: time.Now(), EndAt: time.Now().Add(time.Second)}})

		time.Sleep(2 * time.Minute) // every limit passes: no timer may fire
		synctest.Wait()
		noEnd(t, f)
		if _, _, n := f.m.Counts(); n != 2 {
			t.Errorf("parties %d after shutdown, want 2: the table changed", n)
		}
		if p, ip, _ := f.m.Counts(); p != 1 || ip != 2 {
			t.Errorf("sessions %d pending, %d in progress, want 1 and 2", p, ip)
		}
		if saved, debits := f.j.SavedCount(), f.j.Debits(); saved != saves || len(debits) != 0 {
			t.Errorf("journal changed after shutdown: %d saved (was %d), debits %+v", saved, saves, debits)
		}
	})
}

// TestSerialForkOfACallKeptAside: a ringing call kept aside to be ended at
// answer, set up again with the same token (a serial fork after the
// ringing branch failed, to voicemail say). An operator's terminate must
// reach the fork too: it is refused, and the call stays kept aside. A call
// kept aside at the end of its setup time was only slow to answer: its
// fork is set up as a call.
func TestSerialForkOfACallKeptAside(t *testing.T) {
	tests := []struct {
		name  string
		early bool // OpenSIPS: the ringing call was CANCELed by Call-ID
		keep  func(f *fixture)
		want  Reply
	}{
		{"kamailio, terminated by an operator", false, func(f *fixture) { f.m.Terminate("c1") }, ReplyError},
		{"opensips, terminated by an operator", true, func(f *fixture) { f.m.Terminate("c1") }, ReplyError},
		{"kamailio, past the setup time", false, func(f *fixture) {
			f.m.WithCall("c1", func(s *Session) { s.Created = s.Created.Add(-2 * time.Hour) })
			f.m.Housekeep()
		}, ReplyLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := Limits{Limit: NoLimit, PrepaidLimit: NoLimit}
				asked := 0
				answer := func(rating.Request) (rating.MaxTime, error) {
					asked++
					return rating.MaxTime{Kind: rating.Limited, Seconds: 600, Prepaid: true}, nil
				}
				f := newFixture(t, lim, answer)
				if tt.early {
					f = newEarlyFixture(t, lim, answer)
				}
				if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
					t.Fatalf("init: %s", got)
				}
				tt.keep(f)
				synctest.Wait()
				for len(f.ch) > 0 {
					<-f.ch // OpenSIPS's end by Call-ID
				}
				if _, kept := f.m.AtAnswer("c1"); !kept {
					t.Fatal("not kept aside")
				}
				askedBefore := asked
				if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != tt.want {
					t.Fatalf("init of the serial fork: %s, want %s", got, tt.want)
				}
				if tt.want != ReplyError {
					return
				}
				if asked != askedBefore {
					t.Fatal("the refused fork was rated")
				}
				if _, tracked := f.m.Get("c1"); tracked {
					t.Fatal("the refused fork is tracked")
				}
				if g, kept := f.m.AtAnswer("c1"); !kept || g.EndAtAnswer != EndAtAnswerOperator {
					t.Fatalf("kept aside: %+v %v, want still to be ended at answer", g, kept)
				}
				if got := f.m.Start("c1", "1079:6296", time.Now()); got != ReplyOk {
					t.Fatalf("start: %q", got)
				}
				if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "c1" || tg.Dialog != (dialog.ID{Entry: 1079, ID: 6296}) {
					t.Fatalf("ended %+v, want the answered call ended by its dialog", tg)
				}
			})
		})
	}
}

// TestStaleCallsKeptAsideExpireInChunks: of thousands of calls kept aside
// to be ended at answer (Kamailio), housekeeping forgets exactly those
// older than the stale timeout, a chunk at a time; the snapshot's walk
// (EachAtAnswer) lists every one kept, once.
func TestStaleCallsKeptAsideExpireInChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := Limits{Limit: 60, PrepaidLimit: NoLimit, SetupTime: time.Minute, StaleTimeout: time.Hour}
		f := newFixture(t, lim, nil)
		const n = 3000
		for i := range n {
			age := 2 * time.Minute // past the setup time: kept aside
			if i%3 == 0 {
				age = 50 * time.Minute // and past the stale timeout 15 minutes on
			}
			f.m.Init(initReq(fmt.Sprint("c", i), fmt.Sprint("u", i), ""), time.Now().Add(-age))
		}
		f.m.Housekeep() // keeps them aside
		listed := map[string]int{}
		f.m.EachAtAnswer(func(s *Session) { listed[s.CallID]++ })
		if len(listed) != n {
			t.Fatalf("%d kept aside listed, want %d", len(listed), n)
		}
		for id, k := range listed {
			if k != 1 {
				t.Fatalf("%s listed %d times", id, k)
			}
		}
		f.m.SetNow(func() time.Time { return time.Now().Add(15 * time.Minute) })
		f.m.Housekeep() // expires the stale ones
		for i := range n {
			_, kept := f.m.AtAnswer(fmt.Sprint("c", i))
			if want := i%3 != 0; kept != want {
				t.Fatalf("c%d kept aside: %v, want %v", i, kept, want)
			}
		}
		if _, got := f.j.AtAnswer(""); got != n-n/3 {
			t.Fatalf("%d kept aside in the journal, want %d", got, n-n/3)
		}
	})
}
