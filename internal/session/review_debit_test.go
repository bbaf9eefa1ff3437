package session_test

import (
	"testing"
	"testing/synctest"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// TestReviewByeLeavesAfterItsRecordIsWritten: the call's end, its debit
// and the request to end its dialog are one batch in the journal, so a
// kill -9 loses all three or none. The request must not reach the proxy
// before that batch is written: a kill -9 in between leaves a call the
// proxy ended (BYE sent, its `stop` lost with the daemon) restored at the
// next start as in progress, and debited later for its whole limit (an
// operator's terminate debits the real duration) or kept until the stale
// timeout. On a disk that does not write at all the request still goes,
// after a short bound (TestStalledDiskStartAnswersErrorInTimeAndKeepsTheCall):
// a call is never left uncut for the disk's sake.
func TestReviewByeLeavesAfterItsRecordIsWritten(t *testing.T) {
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
