package session_test

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// TestByeLeavesAfterItsRecordIsWritten: the call's end, its debit
// and the request to end its dialog are one batch in the journal, so a
// kill -9 loses all three or none. The request must not reach the proxy
// before that batch is written: a kill -9 in between leaves a call the
// proxy ended (BYE sent, its `stop` lost with the daemon) restored at the
// next start as in progress, and debited later for its whole limit (an
// operator's terminate debits the real duration) or kept until the stale
// timeout. On a disk that does not write at all the request still goes,
// after a short bound (TestStalledDiskStartAnswersErrorInTimeAndKeepsTheCall):
// a call is never left uncut for the disk's sake.
func TestByeLeavesAfterItsRecordIsWritten(t *testing.T) {
	for _, how := range []string{"operator", "timer"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
				if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
					t.Fatal(got)
				}
				if got := f.m.Start("c1", "1079:6296", time.Now()); got != ReplyOk {
					t.Fatal(got)
				}
				if how == "timer" {
					time.Sleep(599*time.Second + 990*time.Millisecond)
				} else {
					// Past the second after the answer in which a terminate
					// waits for the timer (TestTerminateJustAfterTheAnswer).
					time.Sleep(AtAnswerDelay)
				}
				resume := f.j.Stall()
				defer resume()
				if how == "operator" {
					go f.m.Terminate("c1")
				} else {
					time.Sleep(20 * time.Millisecond) // the limit is reached: the timer fires
				}
				synctest.Wait() // no time passes: the write is not done
				select {
				case tg := <-f.ch:
					t.Fatalf("dialog end of %s requested before its record was written", tg.CallID)
				default:
				}
				resume()
				if tg := waitEnd(t, f, time.Second); tg.CallID != "c1" {
					t.Fatalf("ended %+v", tg)
				}
				if d := f.j.Debits(); len(d) != 1 {
					t.Fatalf("debits %+v", d)
				}
			})
		})
	}
}

// TestSerialForkRefusedAtCallLimitReleasesTheFirstQuestion: a call
// set up again for another destination owes the engine a 0 s debit for
// its first question (behaviour.md), held (releaseFirst) to be delivered
// before the engine is asked again. Refused at the call limit before that
// (the new init names another billing party, the diverter, who is at his
// limit), the call's old session is gone and nothing ever released the
// first question: the engine counts alice's session until it purges it,
// 120 s after its cap, shortening or Locking her other calls meanwhile.
func TestSerialForkRefusedAtCallLimitReleasesTheFirstQuestion(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 10})
	eng.SetAccount("bob@example.com", ratingtest.Account{Balance: 10})
	eng.SetRate("", ratingtest.PerMinute(0.1))
	pool := rating.NewPool([]string{eng.Addr()}, rating.Options{Timeout: 2 * time.Second}, nil)
	t.Cleanup(pool.Close)
	j := sessiontest.NewJournal()
	m := NewManager(Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 2 * time.Second, SetupTime: time.Hour, StaleTimeout: time.Hour},
		&poolRater{Pool: pool}, &dialogtest.Ender[dialog.Target]{C: make(chan dialog.Target, 10)}, j, slog.New(slog.DiscardHandler))
	t.Cleanup(m.Shutdown)

	bobs := initReq("b1", "bob", "true")
	bobs.CallLimit = "1"
	if got := m.Init(bobs, time.Now()); got != ReplyLimited {
		t.Fatalf("bob's call: %v", got)
	}
	first := initReq("c1", "alice", "true")
	first.RURI = "sip:gw1@example.com"
	if got := m.Init(first, time.Now()); got != ReplyLimited {
		t.Fatalf("first init: %v", got)
	}
	again := initReq("c1", "alice", "true")
	again.RURI, again.Diverter, again.CallLimit = "sip:gw2@example.com", "bob@example.com", "1"
	if got := m.Init(again, time.Now()); got != ReplyCallLimitReached {
		t.Fatalf("init again, billed to bob at his limit: %v", got)
	}
	for _, o := range j.Debits() { // the spool delivers what is owed
		if _, err := pool.DebitBalance(context.Background(), o.Engine, o.Debit); err != nil {
			t.Fatalf("debit %+v: %v", o, err)
		}
	}
	if s := eng.Sessions("alice@example.com"); len(s) != 0 {
		t.Fatalf("the engine still counts %v for alice after c1 was refused and every owed debit delivered (requests %q)", s, eng.Requests())
	}
}
