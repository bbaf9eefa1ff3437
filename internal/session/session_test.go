package session_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

func TestBillingParty(t *testing.T) {
	tests := []struct{ from, diverter, want string }{
		{`"Alice" <sip:alice@example.com>;tag=a73kszlfl`, "None", "sip:alice@example.com"},
		{`"Caller" <sip:caller@127.0.0.1:5070>`, "None", "sip:caller@127.0.0.1"},
		{`<sips:bob@Example.COM;transport=tls>`, "", "sips:bob@example.com"[1:][:0] + "sip:bob@example.com"},
		{`sip:carol@example.com;tag=1`, "None", "sip:carol@example.com"},
		{`<sip:alice@example.com>`, "dave@example.org", "sip:dave@example.org"},
		{`<sip:alice@[2001:db8::1]:5060>`, "None", "sip:alice@[2001:db8::1]"},
		{`"no uri"`, "None", ""},
		{`<sip:example.com>`, "None", ""},
		{`<sip:alice@example.com`, "None", ""},
	}
	for _, tt := range tests {
		got, err := BillingParty(tt.from, tt.diverter)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: want error, got %q", tt.from, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q/%q: got %q %v, want %q", tt.from, tt.diverter, got, err, tt.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	full := &Session{CallID: "c@1", Party: "sip:a@b", RURI: "sip:d@e", Diverter: "sip:f@g", SourceIP: "10.0.0.1",
		FromTag: "t", Token: "tok", Application: "audio", Engine: "127.0.0.1:9024", Prepaid: true, Owed: true,
		HasDialog: true, Dialog: dialog.ID{Entry: 1079, ID: 6296}, CallLimit: 3, Cap: 7200, Limit: 600,
		Created: time.Unix(0, 1700000000123456789), Answered: time.Unix(0, 1700000001000000000),
		EndAt: time.Unix(0, 1700000601000000000)}
	for _, s := range []*Session{
		full,
		{CallID: "ringing", Party: "sip:a@b", Limit: NoLimit, Cap: NoLimit, CallLimit: -1,
			EndAtAnswer: EndAtAnswerOperator, Created: time.Unix(1700000000, 0)},
		{CallID: "late", Dialog: dialog.ID{Entry: 0xffffffff, ID: 0xffffffff}, Limit: NoLimit, Cap: NoLimit,
			EndAtAnswer: EndAtAnswerSetupTime, Created: time.Unix(0, 1)},
		{CallID: "x", Limit: NoLimit, Cap: NoLimit}, // pending: no times but zero
	} {
		got, err := Unmarshal(s.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		// Every field the record holds; the unexported ones are the
		// manager's, not saved, and zero on both sides here.
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", s.CallID, got, s)
		}
	}
	b := full.Marshal()
	for i := 0; i < len(b); i++ {
		if _, err := Unmarshal(b[:i]); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add((&Session{CallID: "c", Limit: 5}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Unmarshal(b)
		if err == nil && s.CallID == "" {
			t.Fatal("session without a Call-ID")
		}
	})
}

// fakeRater answers MaxSessionTime from a script and records requests.
type fakeRater struct {
	mu       sync.Mutex
	answer   func(r rating.Request) (rating.MaxTime, error)
	requests []rating.Request
	acquired map[string]int
}

func (f *fakeRater) Pick(party string) string { return "engine1" }
func (f *fakeRater) Acquire(party, engine string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquired[party]++
}
func (f *fakeRater) Release(party string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquired[party]--
}
func (f *fakeRater) MaxSessionTime(ctx context.Context, engine string, r rating.Request) (rating.MaxTime, error) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	answer := f.answer
	f.mu.Unlock()
	return answer(r)
}

func limited(n int) func(rating.Request) (rating.MaxTime, error) {
	return func(rating.Request) (rating.MaxTime, error) {
		return rating.MaxTime{Kind: rating.Limited, Seconds: n, Prepaid: true}, nil
	}
}

type fixture struct {
	m  *Manager
	r  *fakeRater
	j  *sessiontest.Journal
	ch chan dialog.Target
}

func newFixture(t *testing.T, lim Limits, answer func(rating.Request) (rating.MaxTime, error)) *fixture {
	f := &fixture{j: sessiontest.NewJournal(), ch: make(chan dialog.Target, 100)}
	var r Rater
	if answer != nil {
		f.r = &fakeRater{answer: answer, acquired: map[string]int{}}
		r = f.r
	}
	if lim.ProxyTimeout == 0 {
		lim.ProxyTimeout = 500 * time.Millisecond
	}
	if lim.SetupTime == 0 {
		lim.SetupTime, lim.StaleTimeout = time.Hour, 24*time.Hour
	}
	f.m = NewManager(lim, r, &dialogtest.Ender[dialog.Target]{C: f.ch}, f.j, slog.New(slog.DiscardHandler))
	t.Cleanup(f.m.Shutdown)
	t.Cleanup(func() { checkCounts(t, f.m) }) // runs first
	return f
}

func initReq(id, user, prepaid string) *InitRequest {
	return &InitRequest{CallID: id, RURI: "sip:dest@example.com", Diverter: "None", SourceIP: "10.0.0.1",
		From: "<sip:" + user + "@example.com>", FromTag: "ft-" + id, Prepaid: prepaid}
}

func TestInitRules(t *testing.T) {
	errEngine := errors.New("engine down")
	tests := []struct {
		name         string
		limit, plim  int
		answer       func(rating.Request) (rating.MaxTime, error)
		prepaid      string
		want         Reply
		wantLimit    int
		wantDuration int // Duration= sent; 0 when the engine must not be asked
		wantDebits   int
	}{
		{"postpaid, no engine, limit", 60, NoLimit, nil, "unknown", ReplyLimited, 60, 0, 0},
		{"postpaid, no engine, no limit", NoLimit, NoLimit, nil, "unknown", ReplyNoLimit, 0, 0, 0},
		{"limit 0 is a real limit", 0, NoLimit, nil, "", ReplyLimited, 0, 0, 0},
		{"prepaid 600", NoLimit, NoLimit, limited(600), "true", ReplyLimited, 600, DefaultMaxDuration, 0},
		{"prepaid absent (Kamailio) asks", NoLimit, NoLimit, limited(600), "", ReplyLimited, 600, DefaultMaxDuration, 0},
		{"prepaid capped by limit", 100, NoLimit, limited(600), "unknown", ReplyLimited, 100, 100, 0},
		{"prepaid capped by prepaid_limit over limit", 100, 300, limited(600), "unknown", ReplyLimited, 300, 300, 0},
		{"no credit debits 0", NoLimit, NoLimit, limited(0), "true", ReplyNoCredit, 0, DefaultMaxDuration, 1},
		{"locked", NoLimit, NoLimit, func(rating.Request) (rating.MaxTime, error) {
			return rating.MaxTime{Kind: rating.Locked, Prepaid: true}, nil
		}, "true", ReplyLocked, 0, DefaultMaxDuration, 0},
		{"postpaid by engine, no limit", NoLimit, NoLimit, func(rating.Request) (rating.MaxTime, error) {
			return rating.MaxTime{Kind: rating.Unlimited}, nil
		}, "unknown", ReplyNoLimit, 0, DefaultMaxDuration, 0},
		{"postpaid by engine, global limit", 60, NoLimit, func(rating.Request) (rating.MaxTime, error) {
			return rating.MaxTime{Kind: rating.Unlimited}, nil
		}, "unknown", ReplyLimited, 60, 60, 0},
		{"proxy says prepaid, engine postpaid", NoLimit, NoLimit, func(rating.Request) (rating.MaxTime, error) {
			return rating.MaxTime{Kind: rating.Unlimited}, nil
		}, "true", ReplyError, 0, DefaultMaxDuration, 0},
		{"engine fails: its fate unknown, released", NoLimit, NoLimit, func(rating.Request) (rating.MaxTime, error) {
			return rating.MaxTime{}, errEngine
		}, "true", ReplyError, 0, DefaultMaxDuration, 1},
		{"prepaid false does not ask", 60, NoLimit, limited(5), "false", ReplyLimited, 60, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: tt.limit, PrepaidLimit: tt.plim}, tt.answer)
			got := f.m.Init(initReq("c1", "alice", tt.prepaid), time.Now())
			if got != tt.want {
				t.Fatalf("reply %q, want %q", got, tt.want)
			}
			s, ok := f.m.Get("c1")
			if ok != (tt.want == ReplyLimited) {
				t.Fatalf("tracked %v for reply %q", ok, got)
			}
			if ok && s.Limit != tt.wantLimit {
				t.Errorf("limit %d, want %d", s.Limit, tt.wantLimit)
			}
			asked := f.r != nil && len(f.r.requests) > 0
			if asked != (tt.wantDuration != 0) {
				t.Fatalf("engine asked %v", asked)
			}
			if asked {
				r := f.r.requests[0]
				if r.Duration != tt.wantDuration || r.From != "sip:alice@example.com" || r.To != "sip:dest@example.com" ||
					r.Gateway != "10.0.0.1" || r.Application != "audio" || r.Connected {
					t.Errorf("request %+v", r)
				}
			}
			if d := f.j.Debits(); len(d) != tt.wantDebits || (len(d) == 1 && d[0].Debit.Duration != 0) {
				t.Errorf("debits %+v", d)
			}
			if n := f.j.Unsettled(); n != 0 {
				t.Errorf("%d asked marks left unsettled", n)
			}
		})
	}
}

func TestInitAnswersBeforeProxyTimeoutWhenEngineHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 300 * time.Millisecond}, nil)
		// The rater is handed a deadline under the proxy's timeout.
		now := time.Now()
		if by := AnswerBy(now, 300*time.Millisecond); !by.Before(now.Add(300*time.Millisecond)) || by.Before(now.Add(200*time.Millisecond)) {
			t.Fatalf("answer deadline %v after receipt", by.Sub(now))
		}
		ctxRater := &ctxRater{}
		f.m.SetRater(ctxRater)
		start := time.Now()
		if got := f.m.Init(initReq("c1", "alice", "true"), start); got != ReplyError {
			t.Fatalf("got %q", got)
		}
		if took := time.Since(start); took >= 300*time.Millisecond {
			t.Fatalf("answered after %v, the proxy gave up at 300ms", took)
		}
	})
}

// ctxRater never answers: it waits for the context like the real client.
type ctxRater struct{}

func (c *ctxRater) Pick(string) string     { return "e" }
func (c *ctxRater) Acquire(string, string) {}
func (c *ctxRater) Release(string)         {}
func (c *ctxRater) MaxSessionTime(ctx context.Context, _ string, _ rating.Request) (rating.MaxTime, error) {
	<-ctx.Done()
	return rating.MaxTime{}, ctx.Err()
}

func waitEnd(t *testing.T, f *fixture, within time.Duration) dialog.Target {
	t.Helper()
	select {
	case tg := <-f.ch:
		return tg
	case <-time.After(within):
		t.Fatal("no dialog end")
	}
	return dialog.Target{}
}

func TestTimerEndsCallAndDebitsExactlyTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(1))
		if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
			t.Fatal(got)
		}
		if got := f.m.Start("c1", "1079:6296", time.Now()); got != ReplyOk {
			t.Fatal(got)
		}
		tg := waitEnd(t, f, 5*time.Second)
		if tg.CallID != "c1" || tg.Dialog != (dialog.ID{Entry: 1079, ID: 6296}) {
			t.Fatalf("ended %+v", tg)
		}
		if _, ok := f.m.Get("c1"); ok {
			t.Fatal("session still tracked")
		}
		if got := f.m.Stop("c1"); got != ReplyNotFound {
			t.Fatalf("stop after expiry: %q", got)
		}
		d := f.j.Debits()
		if len(d) != 1 || d[0].Debit.Duration != 1 || d[0].Engine != "engine1" || d[0].Debit.CallID != "c1" {
			t.Fatalf("debits %+v", d)
		}
		// The re-ask at start carried State=Connected.
		if r := f.r.requests; len(r) != 2 || !r[1].Connected {
			t.Fatalf("requests %+v", r)
		}
		if f.r.acquired["sip:alice@example.com"] != 0 {
			t.Fatalf("affinity not released: %v", f.r.acquired)
		}
	})
}

func TestStopDebitsRealDurationOnce(t *testing.T) {
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
	f.m.Init(initReq("c1", "alice", "true"), time.Now())
	f.m.Start("c1", "1:2", time.Now())
	f.m.WithCall("c1", func(s *Session) { s.Answered = time.Now().Add(-42 * time.Second) }) // answered 42 s ago
	if got := f.m.Stop("c1"); got != ReplyOk {
		t.Fatal(got)
	}
	if got := f.m.Stop("c1"); got != ReplyNotFound {
		t.Fatal(got)
	}
	if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 42 {
		t.Fatalf("debits %+v", d)
	}
	select {
	case tg := <-f.ch:
		t.Fatalf("stop ended a dialog: %+v", tg)
	default:
	}
}

func TestParallelCallsEndTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		answers := []int{100, 50, 3} // init c1, init c2, re-asks
		next := func(rating.Request) (rating.MaxTime, error) {
			mu.Lock()
			defer mu.Unlock()
			n := answers[0]
			if len(answers) > 1 {
				answers = answers[1:]
			}
			return rating.MaxTime{Kind: rating.Limited, Seconds: n, Prepaid: true}, nil
		}
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, next)
		f.m.Init(initReq("c1", "alice", "true"), time.Now())
		f.m.Init(initReq("c2", "alice", "true"), time.Now())
		f.m.Start("c1", "1:1", time.Now()) // re-ask: 3 s for the party
		time.Sleep(300 * time.Millisecond)
		f.m.Start("c2", "1:2", time.Now()) // re-ask: 3 s from now, both calls
		a := waitEnd(t, f, 6*time.Second)
		at := time.Now()
		b := waitEnd(t, f, 2*time.Second)
		// c1 keeps its end 300 ms earlier: within the engine's whole second.
		if gap := time.Since(at); gap > 500*time.Millisecond {
			t.Fatalf("calls ended %v apart", gap)
		}
		if a.CallID == b.CallID {
			t.Fatal("same call ended twice")
		}
		if d := f.j.Debits(); len(d) != 2 {
			t.Fatalf("debits %+v", d)
		}
	})
}

func TestDebitReplyRetimesRemainingCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
		f.m.Init(initReq("c1", "alice", "true"), time.Now())
		f.m.Init(initReq("c2", "alice", "true"), time.Now())
		f.m.Start("c1", "1:1", time.Now())
		f.m.Start("c2", "1:2", time.Now())
		f.m.Stop("c1")
		d := f.j.Debits()
		f.m.Debited(d[0], rating.DebitReply{OK: true, MaxSessionTime: 1})
		if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "c2" {
			t.Fatalf("ended %+v", tg)
		}
	})
}

// A debit reply from an engine that does not count the party's remaining
// calls (forced: it had lost this one too; or MaxSessionTime=0) must not
// cut them: they keep the limit they have.
func TestDebitReplyFromEngineThatLostSessionsKeepsLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		force bool
		max   int
	}{
		{"forced debit", true, 1},
		{"forced debit, none remain", true, 0},
		{"plain debit, none remain", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
				f.m.Init(initReq("c1", "alice", "true"), time.Now())
				f.m.Init(initReq("c2", "alice", "true"), time.Now())
				f.m.Start("c1", "1:1", time.Now())
				f.m.Start("c2", "1:2", time.Now())
				f.m.Stop("c1")
				d := f.j.Debits()[0]
				d.Debit.Force = tc.force
				f.m.Debited(d, rating.DebitReply{OK: true, MaxSessionTime: tc.max})
				time.Sleep(2 * time.Second) // past the 1 s the reply would have left
				noEnd(t, f)
				if s, ok := f.m.Get("c2"); !ok || s.Limit != 600 {
					t.Fatalf("c2 after the reply: %+v, %v", s, ok)
				}
			})
		})
	}
}

func TestReinitForOtherDestinationReleasesOldRequest(t *testing.T) {
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
	f.m.Init(initReq("c1", "alice", "true"), time.Now())
	r := initReq("c1", "alice", "true")
	r.RURI = "sip:other@example.com"
	if got := f.m.Init(r, time.Now()); got != ReplyLimited {
		t.Fatal(got)
	}
	d := f.j.Debits()
	if len(d) != 1 || d[0].Debit.To != "sip:dest@example.com" || d[0].Debit.Duration != 0 {
		t.Fatalf("debits %+v", d)
	}
	f.m.Stop("c1")
	if d := f.j.Debits(); len(d) != 2 || d[1].Debit.To != "sip:other@example.com" {
		t.Fatalf("debits %+v", d)
	}
	// Same destination again: the engine restarts its session, no extra debit.
	f.m.Init(initReq("c2", "alice", "true"), time.Now())
	f.m.Init(initReq("c2", "alice", "true"), time.Now())
	f.m.Stop("c2")
	if d := f.j.Debits(); len(d) != 3 {
		t.Fatalf("debits %+v", d)
	}
}

func TestHousekeeping(t *testing.T) {
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit, SetupTime: time.Minute, StaleTimeout: time.Hour}, limited(600))
	f.m.Init(initReq("never-answered", "alice", "true"), time.Now().Add(-2*time.Minute))
	f.m.Init(initReq("fresh", "bob", "true"), time.Now())
	f.m.Housekeep()
	if _, ok := f.m.Get("never-answered"); ok {
		t.Fatal("unanswered call kept")
	}
	if _, ok := f.m.Get("fresh"); !ok {
		t.Fatal("fresh call dropped")
	}
	if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 0 || d[0].Debit.CallID != "never-answered" {
		t.Fatalf("debits %+v", d)
	}
	// The proxy of this fixture (as Kamailio) cannot end a ringing call:
	// it is kept aside, to be ended if answered (ends_test.go).
	if g, ok := f.m.AtAnswer("never-answered"); !ok || g.EndAtAnswer != EndAtAnswerSetupTime {
		t.Fatalf("unanswered call: %+v %v, want kept aside to end at answer", g, ok)
	}
}

func TestStaleUnlimitedCallEndedWithBye(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit, SetupTime: time.Minute, StaleTimeout: time.Hour}, nil)
		r := initReq("counted", "alice", "false")
		r.CallLimit = "5"
		if got := f.m.Init(r, time.Now().Add(-2*time.Hour)); got != ReplyLimited {
			t.Fatal(got)
		}
		f.m.Start("counted", "3:4", time.Now())
		f.m.Housekeep()
		if tg := waitEnd(t, f, time.Second); tg.CallID != "counted" {
			t.Fatalf("%+v", tg)
		}
	})
}

func TestRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
		now := time.Now()
		past := &Session{CallID: "past", Party: "sip:a@b", Limit: 10, Cap: NoLimit, HasDialog: true,
			Created: now.Add(-time.Minute), Answered: now.Add(-20 * time.Second), EndAt: now.Add(-10 * time.Second)}
		future := &Session{CallID: "future", Party: "sip:a@b", Limit: 60, Cap: NoLimit,
			Created: now.Add(-time.Minute), Answered: now, EndAt: now.Add(time.Second)}
		pending := &Session{CallID: "pending", Party: "sip:a@b", Limit: 60, Cap: NoLimit, Created: now}
		f.m.Restore([]*Session{past, future, pending})
		if tg := waitEnd(t, f, time.Second); tg.CallID != "past" {
			t.Fatalf("%+v", tg)
		}
		if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "future" {
			t.Fatalf("%+v", tg)
		}
		if _, ok := f.m.Get("pending"); !ok {
			t.Fatal("pending call lost")
		}
		r := initReq("x", "a", "false")
		r.From, r.CallLimit = "<sip:a@b>", "2"
		if got := f.m.Init(r, time.Now()); got != ReplyLimited {
			t.Fatalf("party count not rebuilt right: %q", got)
		}
		r.CallID = "y"
		if got := f.m.Init(r, time.Now()); got != ReplyCallLimitReached {
			t.Fatalf("party count not rebuilt: %q", got)
		}
	})
}

func TestAccountingEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
		for _, id := range []string{"term", "tout", "other-tag"} {
			f.m.Init(initReq(id, "alice", "true"), time.Now())
			f.m.Start(id, "1:1", time.Now())
		}
		f.m.EndUnseen("other-tag", "someone-else", 5)
		f.m.EndUnseen("term", "ft-term", 17)
		f.m.EndSilent("tout", "ft-tout")
		f.m.EndUnseen("term", "ft-term", 17) // again: ignored
		if _, ok := f.m.Get("other-tag"); !ok {
			t.Fatal("a call with another From tag was closed")
		}
		if tg := waitEnd(t, f, time.Second); tg.CallID != "tout" {
			t.Fatalf("%+v", tg)
		}
		d := f.j.Debits()
		if len(d) != 2 || d[0].Debit.CallID != "term" || d[0].Debit.Duration != 17 || d[1].Debit.CallID != "tout" {
			t.Fatalf("debits %+v", d)
		}
	})
}

// A Stop that carries no duration (a BYE's own accounting record) is
// debited what the daemon measured, until now: never 0, and never past the
// call's end.
func TestAccountingEndWithoutDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
		f.m.Init(initReq("bye", "alice", "true"), time.Now())
		f.m.Start("bye", "1:1", time.Now())
		time.Sleep(42 * time.Second)
		if !f.m.EndUnseen("bye", "ft-bye", -1) {
			t.Fatal("call not found")
		}
		noEnd(t, f) // its BYE passed: no end request
		if d := f.j.Debits(); len(d) != 1 || d[0].Debit.Duration != 42 {
			t.Fatalf("debits %+v, want the 42 s the call lasted", d)
		}
	})
}

// A call whose end is due when a re-time arrives keeps its end: it goes
// with the party's other calls that ended at the same moment.
func TestRetimeLeavesDueCallsAlone(t *testing.T) {
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
	f.m.Init(initReq("c1", "alice", "true"), time.Now())
	f.m.Start("c1", "1:1", time.Now())
	due := time.Now().Add(-time.Millisecond)
	f.m.WithCall("c1", func(s *Session) {
		f.m.StopTimerLocked(s) // as if the timer were about to fire
		s.EndAt = due
	})
	f.m.Retime("sip:alice@example.com", "engine1", 1)
	got, _ := f.m.Get("c1")
	if !got.EndAt.Equal(due) {
		t.Fatalf("a due call was moved from %v to %v", due, got.EndAt)
	}
}

// A prepaid call restored by a daemon now configured without an engine
// starts on the limit it was given (and its debit stays owed).
func TestRestoredPrepaidCallWithoutEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, nil)
		f.m.Restore([]*Session{{CallID: "p", Party: "sip:a@b", Engine: "e1", Prepaid: true, Owed: true,
			Limit: 1, Cap: NoLimit, Created: time.Now()}})
		if got := f.m.Start("p", "1:2", time.Now()); got != ReplyOk {
			t.Fatal(got)
		}
		if tg := waitEnd(t, f, 5*time.Second); tg.CallID != "p" {
			t.Fatalf("%+v", tg)
		}
		synctest.Wait() // the debit is journaled just after the BYE is asked for
		if d := f.j.Debits(); len(d) != 1 || d[0].Engine != "e1" || d[0].Debit.Duration != 1 {
			t.Fatalf("debits %+v", d)
		}
	})
}

// A mark left by a daemon that died between asking the engine and
// answering the proxy is released with a 0 s debit; one beside its
// session (the same call set up again) is only settled.
func TestReleaseAsked(t *testing.T) {
	f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
	f.m.Restore([]*Session{{CallID: "kept", Party: "sip:a@b", Engine: "e1", Prepaid: true, Owed: true,
		Limit: 60, Cap: NoLimit, Created: time.Now()}})
	f.m.ReleaseAsked([]*Session{
		{CallID: "orphan", Party: "sip:a@b", RURI: "sip:d@e", SourceIP: "10.0.0.1", Application: "audio", Engine: "e1"},
		{CallID: "kept", Party: "sip:a@b", Engine: "e1"},
	})
	d := f.j.Debits()
	if len(d) != 1 || d[0].Debit.CallID != "orphan" || d[0].Debit.Duration != 0 || d[0].Engine != "e1" ||
		d[0].Debit.From != "sip:a@b" || d[0].Debit.To != "sip:d@e" {
		t.Fatalf("debits %+v", d)
	}
	if _, ok := f.m.Get("kept"); !ok {
		t.Fatal("the session beside its mark was dropped")
	}
}

// checkCounts checks the manager's counters of ringing and answered calls
// against a walk of its table.
func checkCounts(t *testing.T, m *Manager) {
	t.Helper()
	pending, inProgress, _ := m.Counts()
	if wp, wi := m.WalkCounts(); pending != wp || inProgress != wi {
		t.Errorf("Counts says %d ringing and %d answered; the table holds %d and %d", pending, inProgress, wp, wi)
	}
	if listed, kept := m.AsideAndKept(); listed != kept {
		t.Errorf("%d calls kept aside to be ended at answer, %d listed for walks", kept, listed)
	}
}
