package session_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	. "github.com/callcontrol/callcontrol/internal/session"
)

// A call the proxy flags prepaid is refused when nothing can rate it; a
// question that never reached the engine is not released, one that may
// have reached it is.
func TestPrepaidFailsClosed(t *testing.T) {
	notSent := func(rating.Request) (rating.MaxTime, error) {
		return rating.MaxTime{}, fmt.Errorf("rating e: %w: %w", rating.ErrNotSent, syscall.ECONNREFUSED)
	}
	deadlineBeforeSend := func(rating.Request) (rating.MaxTime, error) {
		return rating.MaxTime{}, fmt.Errorf("rating e: %w: %w", rating.ErrNotSent, context.DeadlineExceeded)
	}
	sentNoAnswer := func(rating.Request) (rating.MaxTime, error) {
		return rating.MaxTime{}, fmt.Errorf("rating e: no reply: %w", context.DeadlineExceeded)
	}
	errorAnswer := func(rating.Request) (rating.MaxTime, error) {
		_, err := rating.ParseMaxSessionTime("Error: database down")
		return rating.MaxTime{}, err
	}
	tests := []struct {
		name        string
		limit       int
		answer      func(rating.Request) (rating.MaxTime, error) // nil: no engine configured
		prepaid     string
		want        Reply
		wantRefused uint64
		wantDebits  int // 0 s releases owed
	}{
		{"flagged prepaid, no engine", 60, nil, "true", ReplyError, 1, 0},
		{"flagged prepaid, no engine, no limit", NoLimit, nil, "TRUE", ReplyError, 1, 0},
		{"no flag (Kamailio), no engine: postpaid as before", 60, nil, "", ReplyLimited, 0, 0},
		{"unknown, no engine: postpaid as before", NoLimit, nil, "unknown", ReplyNoLimit, 0, 0},
		{"flagged prepaid, engine refuses the connection", 60, notSent, "true", ReplyError, 1, 0},
		{"no flag, engine refuses the connection", 60, notSent, "", ReplyError, 1, 0},
		{"deadline before the question was sent", 60, deadlineBeforeSend, "true", ReplyError, 1, 0},
		{"sent, no answer: released", 60, sentNoAnswer, "true", ReplyError, 1, 1},
		{"engine answered Error: released", 60, errorAnswer, "true", ReplyError, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: tt.limit, PrepaidLimit: NoLimit}, tt.answer)
			if got := f.m.Init(initReq("c1", "alice", tt.prepaid), time.Now()); got != tt.want {
				t.Fatalf("reply %q, want %q", got, tt.want)
			}
			if n := f.m.PrepaidRefused(); n != tt.wantRefused {
				t.Errorf("refused count %d, want %d", n, tt.wantRefused)
			}
			if d := f.j.Debits(); len(d) != tt.wantDebits || (len(d) == 1 && (d[0].Debit.Duration != 0 || d[0].Debit.CallID != "c1")) {
				t.Errorf("debits %+v, want %d release(s)", d, tt.wantDebits)
			}
			if n := f.j.Unsettled(); n != 0 {
				t.Errorf("%d asked marks left unsettled", n)
			}
		})
	}
}

// A call set up again after an init the engine did count carries that
// question's release: a second question that never left does not drop it.
func TestNotSentReinitStillReleasesTheCarriedQuestion(t *testing.T) {
	var mu sync.Mutex
	fail := false
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, func(rating.Request) (rating.MaxTime, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return rating.MaxTime{}, fmt.Errorf("%w: %w", rating.ErrNotSent, syscall.ECONNREFUSED)
		}
		return rating.MaxTime{Kind: rating.Limited, Seconds: 600, Prepaid: true}, nil
	})
	if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyLimited {
		t.Fatal(got)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	if got := f.m.Init(initReq("c1", "alice", "true"), time.Now()); got != ReplyError {
		t.Fatal(got)
	}
	if d := f.j.Debits(); len(d) != 1 || d[0].Debit.CallID != "c1" || d[0].Debit.Duration != 0 {
		t.Fatalf("debits %+v, want the first question released once", d)
	}
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(level string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, "level="+level) {
			out = append(out, l)
		}
	}
	return out
}

// Every refused call has its INFO line; the ERROR line naming the cause and
// the fix comes at most once per cause every RefusalLogEvery.
func TestRefusalErrorLinesAreRateLimited(t *testing.T) {
	f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
	var buf syncBuffer
	f.m.SetLog(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1700000000, 0)
	f.m.SetNow(func() time.Time { return now })
	for i := 0; i < 5; i++ {
		f.m.Init(initReq(fmt.Sprint("c", i), "alice", "true"), time.Now())
	}
	errs := buf.lines("ERROR")
	if len(errs) != 1 || !strings.Contains(errs[0], `cause="no rating engine configured"`) ||
		!strings.Contains(errs[0], "[CDRTool] address") || !strings.Contains(errs[0], "callid=c0") {
		t.Fatalf("ERROR lines %q", errs)
	}
	if infos := buf.lines("INFO"); len(infos) != 5 {
		t.Fatalf("%d INFO lines, want one per refused call: %q", len(infos), infos)
	}
	now = now.Add(RefusalLogEvery)
	f.m.Init(initReq("c5", "alice", "true"), time.Now())
	errs = buf.lines("ERROR")
	if len(errs) != 2 || !strings.Contains(errs[1], "also_refused_since_last_line=4") {
		t.Fatalf("ERROR lines %q", errs)
	}
	if n := f.m.PrepaidRefused(); n != 6 {
		t.Fatalf("refused %d, want 6", n)
	}
}

func TestBillingPartyFoldsAsTheEngine(t *testing.T) {
	for _, tt := range []struct{ from, diverter, want string }{
		{`"Frank" <sip:Frank@Example.com>;tag=1`, "None", "sip:frank@example.com"},
		{`<SIP:FRANK@EXAMPLE.COM:5060;transport=tcp>`, "None", "sip:frank@example.com"},
		{`<sip:alice@example.com>`, "Dave@Example.ORG", "sip:dave@example.org"},
		{`<sip:Jürgen@example.com>`, "None", "sip:jürgen@example.com"},
		{`<sip:JÜRGEN@example.com>`, "None", "sip:jÜrgen@example.com"}, // PHP folds ASCII only
	} {
		if got, err := BillingParty(tt.from, tt.diverter); err != nil || got != tt.want {
			t.Errorf("%q/%q: %q %v, want %q", tt.from, tt.diverter, got, err, tt.want)
		}
	}
	if s := "sip:frank@example.com"; FoldParty(s) != s {
		t.Fatal("folded party changed")
	}
}

// A state log written before parties were folded holds the party as the
// From header spelled it: it is read back folded, and a debit journaled
// then re-times the folded party.
func TestOldRecordsReadBackFolded(t *testing.T) {
	old := &Session{CallID: "old", Party: "sip:Frank@Example.com", RURI: "sip:0031@example.com", Limit: 60, Cap: NoLimit}
	got, err := Unmarshal(old.Marshal())
	if err != nil || got.Party != "sip:frank@example.com" {
		t.Fatalf("read back %+v %v", got, err)
	}

	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(600))
	f.m.Init(initReq("c1", "frank", "true"), time.Now())
	f.m.Start("c1", "1:1", time.Now())
	f.m.Debited(Owed{Engine: "engine1", Debit: rating.Debit{CallID: "gone", From: "sip:FRANK@example.com", Duration: 10}},
		rating.DebitReply{OK: true, MaxSessionTime: 7})
	s, _ := f.m.Get("c1")
	if r := s.Remaining(time.Now()); r < 6 || r > 7 {
		t.Fatalf("remaining %d after a debit reply of 7 s for the old spelling", r)
	}
}

// Two spellings of one account, rated by the fake engine (which folds From
// as CDRTool does): both calls are one party, re-timed together when the
// second is answered and when one ends.
func TestTwoSpellingsOfOneAccountRetimedTogether(t *testing.T) {
	eng := ratingtest.New(t)
	now := time.Unix(1700000000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	eng.SetClock(clock)
	eng.SetAccount("frank@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("", ratingtest.PerMinute(0.10)) // 600 s for 1.00
	pool := rating.NewPool([]string{eng.Addr()}, rating.Options{Timeout: 5 * time.Second}, nil)
	t.Cleanup(pool.Close)

	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit, ProxyTimeout: 5 * time.Second}, nil)
	f.m.SetRater(pool)
	f.m.SetNow(clock)
	req := func(id, from string) *InitRequest {
		return &InitRequest{CallID: id, RURI: "sip:0031650@example.com", Diverter: "None", SourceIP: "10.0.0.1",
			From: from, FromTag: "t-" + id, Prepaid: "true"}
	}
	if got := f.m.Init(req("a", "<sip:Frank@Example.com>;tag=1"), time.Now()); got != ReplyLimited {
		t.Fatalf("a: %s", got)
	}
	f.m.Start("a", "1:1", time.Now()) // alone: 600 s
	if got := f.m.Init(req("b", "<sip:frank@example.com>;tag=2"), time.Now()); got != ReplyLimited {
		t.Fatalf("b: %s", got)
	}
	f.m.Start("b", "1:2", time.Now()) // the engine counts both: 300 s for each, from now

	a, _ := f.m.Get("a")
	b, _ := f.m.Get("b")
	want := now.Add(300 * time.Second)
	if a.Party != b.Party || !a.EndAt.Equal(want) || !b.EndAt.Equal(want) {
		t.Fatalf("after b answered: a %s ends %v, b %s ends %v; want both at %v", a.Party, a.EndAt.Sub(now), b.Party, b.EndAt.Sub(now), want.Sub(now))
	}

	// b ends after 60 s; its debit reply re-times a, which is alone again.
	advance(60 * time.Second)
	f.m.Stop("b")
	var owed Owed
	for _, d := range f.j.Debits() {
		if d.Debit.CallID == "b" {
			owed = d
		}
	}
	reply, err := pool.DebitBalance(context.Background(), owed.Engine, owed.Debit)
	if err != nil || !reply.OK {
		t.Fatalf("debit: %+v %v", reply, err)
	}
	f.m.Debited(owed, reply)
	a, _ = f.m.Get("a")
	// 1.00 - 2 x 60 s at 0.10/min = 0.80 left: 480 s for a alone.
	if want := now.Add(480 * time.Second); !a.EndAt.Equal(want) {
		t.Fatalf("a ends in %v after b's debit, want %v (engine said %d)", a.EndAt.Sub(now), want.Sub(now), reply.MaxSessionTime)
	}
}

// call_limit counts the calls of one account whatever the spelling.
func TestCallLimitCountsBothSpellings(t *testing.T) {
	f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
	r := initReq("c1", "Frank", "false")
	r.CallLimit = "1"
	if got := f.m.Init(r, time.Now()); got != ReplyLimited {
		t.Fatal(got)
	}
	r = initReq("c2", "frank", "false")
	r.CallLimit = "1"
	if got := f.m.Init(r, time.Now()); got != ReplyCallLimitReached {
		t.Fatalf("second spelling of one account: %q, want %q", got, ReplyCallLimitReached)
	}
}
