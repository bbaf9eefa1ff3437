package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	. "github.com/callcontrol/callcontrol/internal/session"
)

// Tests from the spec-conformance review of behaviour.md, one per rule
// that had no test or that the code did not follow.

// behaviour.md, "Deciding at init" 1, and rating-protocol.md: a call set up
// again (serial fork, same token) is a new request; every MaxSessionTime
// that returned a number is followed by exactly one DebitBalance. When the
// second init does not ask the engine again (the proxy now says prepaid:
// false), what the engine counts for the first one must still be released:
// otherwise the account keeps a phantom session that shortens its other
// calls and may answer Locked until the engine purges it.
func TestSerialForkReleasesWhatTheEngineCounts(t *testing.T) {
	tests := []struct {
		name      string
		prepaid   string // of the second init
		ruri      string // of the second init, "" the same destination
		callLimit string // of the second init
		want      Reply
	}{
		{"asked again, same destination", "true", "", "", ReplyLimited},
		{"asked again, other destination", "unknown", "sip:0031650999999@example.com", "", ReplyLimited},
		{"postpaid now, same destination, forgotten", "false", "", "", ReplyNoLimit},
		{"postpaid now, same destination, counted for call_limit", "false", "", "2", ReplyLimited},
		{"postpaid now, other destination", "false", "sip:0031650999999@example.com", "", ReplyNoLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ratingtest.New(t) // outside the bubble: its listener is real I/O
			e.SetAccount(account, ratingtest.Account{Balance: 1})
			e.SetRate("", ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				var wg sync.WaitGroup
				d := newDaemon(e, 0, &cutRecorder{}, &wg)
				first := &InitRequest{CallID: "fork", RURI: "sip:0031650222333@example.com", Diverter: "None",
					SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=a", FromTag: "a", Prepaid: "true"}
				if got := d.m.Init(first, time.Now()); got != ReplyLimited {
					t.Fatalf("first init: %s", got)
				}
				again := *first
				again.Prepaid, again.CallLimit = tt.prepaid, tt.callLimit
				if tt.ruri != "" {
					again.RURI = tt.ruri
				}
				if got := d.m.Init(&again, time.Now()); got != tt.want {
					t.Fatalf("init again: %s, want %s", got, tt.want)
				}
				if tt.want == ReplyLimited {
					d.m.Start("fork", "1:2", time.Now())
					time.Sleep(10 * time.Second)
					d.m.Stop("fork")
				}
				synctest.Wait()
				wg.Wait()
				if s := e.Sessions(account); len(s) != 0 {
					t.Errorf("the engine still counts %v: the first question was never released", s)
				}
				d.m.Shutdown()
			})
		})
	}
}

// behaviour.md, "Deciding at init" 4: Limited when a limit applies or
// call_limit > 0, otherwise No limit and the call is forgotten. A
// call_limit that is not above 0 limits nothing.
func TestCallLimitNotAboveZeroLimitsNothing(t *testing.T) {
	tests := []struct {
		callLimit string
		want      Reply
	}{
		{"", ReplyNoLimit},
		{"0", ReplyNoLimit},
		{"-1", ReplyNoLimit},
		{"None", ReplyNoLimit},
		{"garbage", ReplyNoLimit},
		{"1", ReplyLimited},
	}
	for _, tt := range tests {
		t.Run(tt.callLimit, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, nil)
			r := initReq("c1", "alice", "false")
			r.CallLimit = tt.callLimit
			if got := f.m.Init(r, time.Now()); got != tt.want {
				t.Fatalf("call_limit %q: %s, want %s", tt.callLimit, got, tt.want)
			}
			if _, tracked := f.m.Get("c1"); tracked != (tt.want == ReplyLimited) {
				t.Fatalf("tracked %v", tracked)
			}
		})
	}
}

// decisionLines returns the lines at INFO or above that name callID.
func decisionLines(buf *syncBuffer, callID string) []string {
	var out []string
	for _, level := range []string{"INFO", "WARN", "ERROR"} {
		for _, l := range buf.lines(level) {
			if strings.Contains(l, "callid="+callID+" ") || strings.HasSuffix(l, "callid="+callID) {
				out = append(out, l)
			}
		}
	}
	return out
}

// hasAll reports whether one of lines holds every key (as "key=").
func hasAll(lines []string, keys ...string) bool {
	for _, l := range lines {
		ok := true
		for _, k := range keys {
			if !strings.Contains(l, " "+k+"=") {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// behaviour.md, "Logging": every decision and action goes to the log (at
// INFO or above: syslog's default) with the Call-ID, the caller and the
// destination, and for ended calls the reason and duration (the price
// comes with the debit's delivery, internal/debit). One row per decision
// of an init, and per way a call ends.
func TestEveryDecisionLoggedWithCallerAndDestination(t *testing.T) {
	locked := func(rating.Request) (rating.MaxTime, error) {
		return rating.MaxTime{Kind: rating.Locked, Prepaid: true}, nil
	}
	initC1 := func(prepaid string) func(f *fixture) {
		return func(f *fixture) { f.m.Init(initReq("c1", "alice", prepaid), time.Now()) }
	}
	answered := func(f *fixture) { // 42 s ago
		f.m.Init(initReq("c1", "alice", "true"), time.Now())
		f.m.Start("c1", "1:2", time.Now())
		f.m.WithCall("c1", func(s *Session) { s.Answered = s.Answered.Add(-42 * time.Second) })
	}
	tests := []struct {
		name   string
		answer func(rating.Request) (rating.MaxTime, error)
		setup  func(f *fixture) // not logged
		act    func(f *fixture) // acts on call "c1"; its lines are read
		keys   []string         // besides callid
	}{
		{"init Limited", limited(60), nil, initC1("true"), []string{"party", "to", "limit"}},
		{"init No limit", nil, nil, initC1("false"), []string{"party", "to"}},
		{"init No credit", limited(0), nil, initC1("true"), []string{"party", "to"}},
		{"init Locked", locked, nil, initC1("true"), []string{"party", "to"}},
		{"init Error: cannot be rated", nil, nil, initC1("true"), []string{"party", "to"}},
		{"init Error: no billing party", nil, nil, func(f *fixture) {
			r := initReq("c1", "alice", "false")
			r.From = `"nobody"`
			f.m.Init(r, time.Now())
		}, []string{"from", "to"}},
		{"init Duplicated callid", nil, func(f *fixture) {
			r := initReq("c1", "alice", "false")
			r.CallLimit = "5"
			f.m.Init(r, time.Now())
		}, func(f *fixture) {
			r := initReq("c1", "alice", "false")
			r.CallLimit, r.CallToken = "5", "other"
			f.m.Init(r, time.Now())
		}, []string{"party", "to"}},
		{"init Call limit reached", nil, func(f *fixture) {
			r := initReq("c0", "alice", "false")
			r.CallLimit = "1"
			f.m.Init(r, time.Now())
		}, func(f *fixture) {
			r := initReq("c1", "alice", "false")
			r.CallLimit = "1"
			f.m.Init(r, time.Now())
		}, []string{"party", "to", "call_limit"}},
		{"ended by stop", limited(60), answered, func(f *fixture) { f.m.Stop("c1") },
			[]string{"party", "to", "reason", "duration"}},
		{"ended by operator", limited(60), answered, func(f *fixture) { f.m.Terminate("c1") },
			[]string{"party", "to", "reason", "duration"}},
		{"ringing, ordered ended by an operator (Kamailio: at answer)", limited(60), initC1("true"),
			func(f *fixture) { f.m.Terminate("c1") }, []string{"party", "to"}},
		{"not answered within the setup time (Kamailio)", limited(60), func(f *fixture) {
			f.m.Init(initReq("c1", "alice", "true"), time.Now().Add(-2*time.Hour))
		}, func(f *fixture) { f.m.Housekeep() }, []string{"party", "to"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, tt.answer)
			if tt.setup != nil {
				tt.setup(f)
			}
			var buf syncBuffer
			f.m.SetLog(slog.New(slog.NewTextHandler(&buf, nil)))
			tt.act(f)
			if lines := decisionLines(&buf, "c1"); !hasAll(lines, tt.keys...) {
				t.Fatalf("no line at INFO or above names callid, %s:\n%s", strings.Join(tt.keys, ", "), strings.Join(lines, "\n"))
			}
		})
	}
}

// barrierRater answers no MaxSessionTime until n have been asked: n inits
// on n proxy connections all pass admission before any is tracked.
type barrierRater struct {
	*engineRater
	mu      sync.Mutex
	waiting int
	n       int
	open    chan struct{}
}

func (b *barrierRater) MaxSessionTime(ctx context.Context, engine string, q rating.Request) (rating.MaxTime, error) {
	b.mu.Lock()
	if b.waiting++; b.waiting == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	<-b.open
	return b.engineRater.MaxSessionTime(ctx, engine, q)
}

// behaviour.md, "Deciding at init" 4, with parallel inits: a party at its
// call_limit is answered Call limit reached, and what was asked of the
// engine for it is released, also when the inits race on several proxy
// connections (the limit is checked again when the call is tracked).
func TestParallelInitsKeepTheCallLimit(t *testing.T) {
	tests := []struct{ inits, callLimit int }{
		{5, 1},
		{5, 2},
		{4, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d inits, call_limit %d", tt.inits, tt.callLimit), func(t *testing.T) {
			e := ratingtest.New(t)
			e.SetAccount(account, ratingtest.Account{Balance: 100})
			e.SetRate("", ratingtest.PerMinute(0.10))
			synctest.Test(t, func(t *testing.T) {
				e.SetClock(time.Now)
				var wg sync.WaitGroup
				d := newDaemon(e, 0, &cutRecorder{}, &wg)
				d.m.SetRater(&barrierRater{engineRater: d.rater, n: tt.inits, open: make(chan struct{})})
				replies := make(chan Reply, tt.inits)
				for i := range tt.inits {
					go func() {
						id := fmt.Sprint("p", i)
						replies <- d.m.Init(&InitRequest{CallID: id, RURI: "sip:0031650222333@example.com", Diverter: "None",
							SourceIP: "10.0.0.1", From: "<sip:" + account + ">;tag=" + id, FromTag: id, Prepaid: "true",
							CallLimit: fmt.Sprint(tt.callLimit)}, time.Now())
					}()
				}
				counts := map[Reply]int{}
				for range tt.inits {
					counts[<-replies]++
				}
				if counts[ReplyLimited] != tt.callLimit || counts[ReplyCallLimitReached] != tt.inits-tt.callLimit {
					t.Fatalf("replies %v, want %d Limited and the rest Call limit reached", counts, tt.callLimit)
				}
				synctest.Wait()
				wg.Wait()
				if s := e.Sessions(account); len(s) != tt.callLimit {
					t.Errorf("the engine counts %v, want only the %d calls answered Limited", s, tt.callLimit)
				}
				d.m.Shutdown()
			})
		})
	}
}

// behaviour.md, "After init" and "Housekeeping": each way a prepaid call
// ends asks for a BYE or not as the rule says, and owes exactly one
// debit: the real duration (stop, operator), exactly the limit (timer), or
// 0 s for a call never answered (setup time); the proxy's stop that
// follows changes nothing. A repeated start changes nothing either: it
// does not re-ask the engine (which would restart its clock).
func TestEveryEndDebitsOnce(t *testing.T) {
	tests := []struct {
		name     string
		early    bool // the proxy can end a ringing call (OpenSIPS)
		answer   int  // the engine's seconds
		answered bool
		act      func(f *fixture)
		bye      bool
		debit    int
		stop     Reply // the proxy's stop after the end
	}{
		{"stop after 42 s", false, 600, true, func(f *fixture) {
			time.Sleep(42 * time.Second)
			f.m.Stop("c1")
		}, false, 42, ReplyNotFound},
		{"timer: exactly the limit", false, 5, true, func(f *fixture) {
			time.Sleep(time.Minute)
		}, true, 5, ReplyNotFound},
		{"operator after 42 s", false, 600, true, func(f *fixture) {
			time.Sleep(42 * time.Second)
			f.m.Terminate("c1")
		}, true, 42, ReplyNotFound},
		{"setup time, Kamailio: released, ended if answered", false, 600, false, func(f *fixture) {
			time.Sleep(91 * time.Second)
			f.m.Housekeep()
		}, false, 0, ReplyOk},
		{"setup time, OpenSIPS: released and CANCELed", true, 600, false, func(f *fixture) {
			time.Sleep(91 * time.Second)
			f.m.Housekeep()
		}, true, 0, ReplyOk},
		{"stop before an answer (486)", false, 600, false, func(f *fixture) {
			time.Sleep(3 * time.Second)
			f.m.Stop("c1")
		}, false, 0, ReplyNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := Limits{Limit: NoLimit, PrepaidLimit: NoLimit, SetupTime: 90 * time.Second, StaleTimeout: 24 * time.Hour}
				f := newFixture(t, lim, limited(tt.answer))
				if tt.early {
					f = newEarlyFixture(t, lim, limited(tt.answer))
				}
				if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
					t.Fatalf("init: %s", got)
				}
				if tt.answered {
					f.m.Start("c1", "1:2", time.Now())
					if got := f.m.Start("c1", "1:2", time.Now()); got != ReplyOk {
						t.Fatalf("repeated start: %s", got)
					}
					if n := len(f.r.requests); n != 2 {
						t.Fatalf("the engine was asked %d times, want init and one re-ask at start", n)
					}
				}
				tt.act(f)
				synctest.Wait()
				select {
				case tg := <-f.ch:
					if !tt.bye {
						t.Fatalf("dialog end sent: %+v", tg)
					}
				default:
					if tt.bye {
						t.Fatal("no dialog end sent")
					}
				}
				if got := f.m.Stop("c1"); got != tt.stop {
					t.Errorf("the proxy's stop after the end: %s, want %s", got, tt.stop)
				}
				synctest.Wait()
				d := f.j.Debits()
				if len(d) != 1 || d[0].Debit.CallID != "c1" || d[0].Debit.Duration != tt.debit {
					t.Fatalf("debits %+v, want one of %d s", d, tt.debit)
				}
			})
		})
	}
}

// behaviour.md, "After init": the timer fires, the dialog is ended through
// the proxy (BYE to both ends) and the limit is debited. Kamailio 5.6 may
// answer OK to a dlg.end_dlg that arrives right at the answer and send no
// BYE (README, "what the peers do"; ends.go atAnswerDelay, which is why a
// call ordered ended while ringing is ended 1 s after its start): a call
// due within that second, a limit of 0 or a prepaid re-ask at start
// answering 0 (the party's other calls spent the credit while it rang),
// would then be dropped from the table, debited, and talk on unlimited.
// Its end is asked for 1 s after the answer, as for a call ordered ended
// while ringing, and it is still debited exactly its limit. OpenSIPS
// sends BYEs for a dialog not yet ACKed (dlg_end_dlg: only early dialogs
// are CANCELed): its calls end at once. test/e2e TestLimitZeroCall runs
// limit = 0 through a real Kamailio.
func TestCallDueBeforeTheACKEndedOnceConfirmed(t *testing.T) {
	tests := []struct {
		name     string
		early    bool   // OpenSIPS
		prepaid  string // "false": postpaid with limit 0
		reask    int    // the engine's answer at start
		endAfter time.Duration
		debit    int // -1: none (postpaid)
	}{
		{"kamailio, limit 0", false, "false", 0, AtAnswerDelay, -1},
		{"kamailio, prepaid re-ask answers 0", false, "true", 0, AtAnswerDelay, 0},
		{"kamailio, prepaid re-ask answers 3", false, "true", 3, 3 * time.Second, 3},
		{"opensips, limit 0", true, "false", 0, 0, -1},
		{"opensips, prepaid re-ask answers 0", true, "true", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				asked := 0
				answer := func(rating.Request) (rating.MaxTime, error) {
					mu.Lock()
					defer mu.Unlock()
					asked++
					n := 600
					if asked > 1 {
						n = tt.reask
					}
					return rating.MaxTime{Kind: rating.Limited, Seconds: n, Prepaid: true}, nil
				}
				lim := Limits{Limit: 0, PrepaidLimit: NoLimit, SetupTime: 90 * time.Second, StaleTimeout: 24 * time.Hour}
				if tt.prepaid == "true" {
					lim.Limit = NoLimit
				}
				var f *fixture
				if tt.early {
					f = newEarlyFixture(t, lim, answer)
				} else {
					f = newFixture(t, lim, answer)
				}
				if got := f.m.Init(initReq("c1", "alice", tt.prepaid), time.Now()); got != ReplyLimited {
					t.Fatalf("init: %s", got)
				}
				answered := time.Now()
				if got := f.m.Start("c1", "1079:6296", answered); got != ReplyOk {
					t.Fatalf("start: %s", got)
				}
				tg := waitEnd(t, f, 10*time.Second)
				if took := time.Since(answered); took != tt.endAfter {
					t.Fatalf("end asked for %v after the answer, want %v", took, tt.endAfter)
				}
				if tg.CallID != "c1" || tg.Dialog != (dialog.ID{Entry: 1079, ID: 6296}) {
					t.Fatalf("ended %+v", tg)
				}
				synctest.Wait()
				d := f.j.Debits()
				switch {
				case tt.debit < 0 && len(d) != 0:
					t.Fatalf("debits %+v for a postpaid call", d)
				case tt.debit >= 0 && (len(d) != 1 || d[0].Debit.Duration != tt.debit):
					t.Fatalf("debits %+v, want one of %d s", d, tt.debit)
				}
			})
		})
	}
}

// behaviour.md, "Operator terminate": end the dialog through the proxy,
// debit the real duration. On Kamailio an end request right at the answer
// may be answered OK without a BYE (see
// TestCallDueBeforeTheACKEndedOnceConfirmed): a call terminated within a
// second of its answer would be closed here, the operator told it ended,
// and talk on. Its end is asked for 1 s after the answer; the debit is
// the time until the terminate.
func TestTerminateJustAfterTheAnswer(t *testing.T) {
	tests := []struct {
		name     string
		early    bool
		after    time.Duration // from the answer to the terminate
		endAfter time.Duration // from the answer to the end request
	}{
		{"kamailio, 200 ms after the answer", false, 200 * time.Millisecond, AtAnswerDelay},
		{"kamailio, 5 s after the answer", false, 5 * time.Second, 5 * time.Second},
		{"opensips, 200 ms after the answer", true, 200 * time.Millisecond, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := Limits{Limit: NoLimit, PrepaidLimit: NoLimit, SetupTime: 90 * time.Second, StaleTimeout: 24 * time.Hour}
				f := newFixture(t, lim, limited(600))
				if tt.early {
					f = newEarlyFixture(t, lim, limited(600))
				}
				f.m.Init(initReq("c1", "alice", "true"), time.Now())
				answered := time.Now()
				f.m.Start("c1", "1079:6296", answered)
				time.Sleep(tt.after)
				if res := f.m.Terminate("c1"); res != TerminateRequested {
					t.Fatalf("terminate: %v", res)
				}
				waitEnd(t, f, 10*time.Second)
				if took := time.Since(answered); took != tt.endAfter {
					t.Fatalf("end asked for %v after the answer, want %v", took, tt.endAfter)
				}
				if got := f.m.Stop("c1"); got != ReplyNotFound {
					t.Errorf("the proxy's stop after the end: %s", got)
				}
				synctest.Wait()
				want := int((tt.after + time.Second/2) / time.Second)
				if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != want {
					t.Fatalf("debits %+v, want one of %d s", d, want)
				}
			})
		})
	}
}

// behaviour.md, "Deciding at init" 1: a known Call-ID with another
// call_token is answered Duplicated callid, also when the call it names
// is ringing, kept aside to be ended at answer (an operator's terminate
// or the setup time on Kamailio): it is still in use at the proxy.
func TestInitOfACallIDKeptAsideWithAnotherToken(t *testing.T) {
	tests := []struct {
		name string
		keep func(f *fixture)
	}{
		{"terminated by an operator", func(f *fixture) { f.m.Terminate("c1") }},
		{"past the setup time", func(f *fixture) {
			f.m.WithCall("c1", func(s *Session) { s.Created = s.Created.Add(-2 * time.Hour) })
			f.m.Housekeep()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit}, nil) // Kamailio: ends no ringing call
			if got := f.m.Init(initReq("c1", "alice", "false"), time.Now()); got != ReplyLimited {
				t.Fatalf("init: %s", got)
			}
			tt.keep(f)
			if _, kept := f.m.AtAnswer("c1"); !kept {
				t.Fatal("not kept aside")
			}
			again := initReq("c1", "alice", "false")
			again.CallToken = "other"
			if got := f.m.Init(again, time.Now()); got != ReplyDuplicatedCallID {
				t.Fatalf("init with another token: %s, want %s", got, ReplyDuplicatedCallID)
			}
			if _, kept := f.m.AtAnswer("c1"); !kept {
				t.Fatal("the call kept aside was dropped")
			}
		})
	}
}
