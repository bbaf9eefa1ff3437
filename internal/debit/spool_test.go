package debit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"

	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

var errBroken = errors.New("connection broken before the reply")

// fakeEngine keeps what a CDRTool engine keeps: the calls it counts and
// how often each was debited, and can fail in each way the spool must
// survive.
type fakeEngine struct {
	mu       sync.Mutex
	known    map[string]bool // CallIDs the engine counts (MaxSessionTime was asked)
	debited  map[string]int
	forced   int // forced requests received
	requests []rating.Debit
	down     bool // every request: ErrNotSent
	// faults are consumed one per request that reaches the engine:
	// "lost" = never arrives (fate unknown), "noreply" = applied but the
	// reply is lost, "" = normal.
	faults     []string
	callFaults map[string][]string  // like faults, per CallID
	refuse     bool                 // Failed even when forced
	notSent    int                  // requests refused while down
	onRequest  func(d rating.Debit) // runs before the engine acts
}

func newEngine(known ...string) *fakeEngine {
	e := &fakeEngine{known: map[string]bool{}, debited: map[string]int{}}
	for _, k := range known {
		e.known[k] = true
	}
	return e
}

func (e *fakeEngine) DebitBalance(ctx context.Context, engine string, d rating.Debit) (rating.DebitReply, error) {
	e.mu.Lock()
	if e.down {
		e.notSent++
		e.mu.Unlock()
		return rating.DebitReply{}, fmt.Errorf("dial %s: %w", engine, rating.ErrNotSent)
	}
	hook := e.onRequest
	e.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, d)
	fault := ""
	if len(e.faults) > 0 {
		fault, e.faults = e.faults[0], e.faults[1:]
	} else if f := e.callFaults[d.CallID]; len(f) > 0 {
		fault, e.callFaults[d.CallID] = f[0], f[1:]
	}
	if fault == "lost" {
		return rating.DebitReply{}, errBroken
	}
	if d.Force {
		e.forced++
	}
	var r rating.DebitReply
	if (e.known[d.CallID] && e.debited[d.CallID] == 0) || (d.Force && !e.refuse) {
		e.debited[d.CallID]++
		r = rating.DebitReply{OK: true, MaxSessionTime: 100, Price: "0.0100"}
	}
	if fault == "noreply" {
		return rating.DebitReply{}, errBroken
	}
	return r, nil
}

func (e *fakeEngine) set(f func(e *fakeEngine)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

func (e *fakeEngine) snapshot() (debited map[string]int, forced int, requests []rating.Debit, notSent int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	debited = map[string]int{}
	for k, v := range e.debited {
		debited[k] = v
	}
	return debited, e.forced, append([]rating.Debit(nil), e.requests...), e.notSent
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var fast = Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 30 * time.Second}

type doneLog struct {
	mu  sync.Mutex
	ids []string
}

func (d *doneLog) add(o Owed, r rating.DebitReply) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !r.OK || r.MaxSessionTime != 100 {
		panic("onDone with a reply that is not Ok")
	}
	d.ids = append(d.ids, o.Debit.CallID)
}

func (d *doneLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.ids...)
}

type rig struct {
	dir   string
	log   *store.Log
	spool *Spool
	done  *doneLog
	stop  func()
}

// start opens the spool in dir with fast, or the options given.
func start(t *testing.T, dir string, eng Engine, opts ...Options) *rig {
	t.Helper()
	o := fast
	if len(opts) > 0 {
		o = opts[0]
	}
	l, live, err := store.Open(dir, store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{dir: dir, log: l, done: &doneLog{}}
	r.spool = New(l, eng, Restore(live, store.BootID(), quiet()), o, r.done.add, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.spool.Run(ctx); close(ran) }()
	r.stop = func() {
		cancel()
		<-ran
		r.spool.Close()
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}
	return r
}

func owe(t *testing.T, s *Spool, engine, callID string) {
	t.Helper()
	d := Owed{Owed: rating.Owed{Engine: engine, Debit: rating.Debit{CallID: callID, From: "sip:a@x", To: "sip:b@x", Gateway: "10.0.0.1", Application: "audio", Duration: 59}}}
	if err := s.Owe(d, store.Delete("s/"+callID)).Wait(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func exactlyOnce(t *testing.T, e *fakeEngine, ids ...string) {
	t.Helper()
	debited, _, _, _ := e.snapshot()
	for _, id := range ids {
		if debited[id] != 1 {
			t.Errorf("%s debited %d times, want 1", id, debited[id])
		}
	}
}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name       string
		known      []string
		faults     []string
		callFaults map[string][]string // like faults, per CallID
		refuse     bool
		owed       []string
		debited    map[string]int
		forced     int
		requests   int
		onDone     int
		counters   Counters
		forceSeen  []bool // Force of each request, in order
	}{
		{name: "ok", known: []string{"c1", "c2"}, owed: []string{"c1", "c2"},
			debited: map[string]int{"c1": 1, "c2": 1}, requests: 2, onDone: 2,
			counters: Counters{Delivered: 2}, forceSeen: []bool{false, false}},
		{name: "fate unknown then Failed: no Force", known: []string{"c1"}, faults: []string{"noreply"}, owed: []string{"c1"},
			debited: map[string]int{"c1": 1}, requests: 2, onDone: 0,
			counters: Counters{AlreadyApplied: 1, Retries: 1}, forceSeen: []bool{false, false}},
		{name: "lost then Ok", known: []string{"c1"}, faults: []string{"lost"}, owed: []string{"c1"},
			debited: map[string]int{"c1": 1}, requests: 2, onDone: 1,
			counters: Counters{Delivered: 1, Retries: 1}, forceSeen: []bool{false, false}},
		{name: "never attempted then Failed: Force once", owed: []string{"purged"},
			debited: map[string]int{"purged": 1}, forced: 1, requests: 2, onDone: 1,
			counters: Counters{Delivered: 1, Forced: 1}, forceSeen: []bool{false, true}},
		{name: "forced send of unknown fate is not forced again", faults: []string{"", "noreply"}, owed: []string{"purged"},
			debited: map[string]int{"purged": 1}, forced: 1, requests: 3, onDone: 0,
			counters: Counters{AlreadyApplied: 1, Retries: 1}, forceSeen: []bool{false, true, false}},
		{name: "refused even forced", refuse: true, owed: []string{"bad"},
			debited: map[string]int{}, forced: 1, requests: 2, onDone: 0,
			counters: Counters{Refused: 1}, forceSeen: []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(tt.known...)
			e.faults, e.refuse = tt.faults, tt.refuse
			r := start(t, t.TempDir(), e)
			for _, id := range tt.owed {
				owe(t, r.spool, "eng1", id)
			}
			waitFor(t, "delivery", func() bool { return r.spool.Waiting() == 0 })
			r.stop()
			debited, forced, reqs, _ := e.snapshot()
			if fmt.Sprint(debited) != fmt.Sprint(tt.debited) || forced != tt.forced || len(reqs) != tt.requests {
				t.Fatalf("debited %v forced %d requests %d; want %v %d %d", debited, forced, len(reqs), tt.debited, tt.forced, tt.requests)
			}
			for i, f := range tt.forceSeen {
				if reqs[i].Force != f {
					t.Fatalf("request %d Force=%v, want %v", i, reqs[i].Force, f)
				}
			}
			if got := r.spool.Delivered(); got != tt.counters {
				t.Fatalf("counters %+v, want %+v", got, tt.counters)
			}
			if n := len(r.done.list()); n != tt.onDone {
				t.Fatalf("onDone called %d times, want %d", n, tt.onDone)
			}
			// Nothing owed is left in the store.
			l, live, err := store.Open(r.dir, store.Options{}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if p := Restore(live, store.BootID(), quiet()); len(p) != 0 {
				t.Fatalf("left in store: %+v", p)
			}
		})
	}
}

// On the synctest clock: after synctest.Wait every worker is blocked in its
// backoff, between attempts, so what the test reads is settled, never an
// attempt half done.
func TestEngineDownThenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ids := []string{"a1", "a2", "a3", "b1", "b2"}
		e := newEngine(ids...)
		e.down = true
		r := start(t, t.TempDir(), e)
		defer r.stop()
		for _, id := range ids {
			owe(t, r.spool, "eng-"+id[:1], id)
		}
		time.Sleep(10 * fast.MaxBackoff) // retries while down
		synctest.Wait()
		if _, _, _, n := e.snapshot(); n < 6 {
			t.Fatalf("%d attempts while down, want a few per engine", n)
		}
		if r.spool.Waiting() != len(ids) {
			t.Fatalf("waiting %d", r.spool.Waiting())
		}
		// While down nothing is marked attempted for good: a restart now
		// must not treat them as fate unknown.
		for _, o := range r.spool.Pending() {
			if o.Attempted {
				t.Fatalf("%s marked attempted between retries while the engine is down", o.Debit.CallID)
			}
		}
		// On disk too: the debits marked together with each head
		// (prepare) are unmarked when the head's round fails.
		l, live, err := store.Open(storetest.CopyDir(t, r.dir), store.Options{NoSync: true}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		restored := Restore(live, store.BootID(), quiet())
		l.Close()
		if len(restored) != len(ids) {
			t.Fatalf("%d debits in a copy of the state, want %d", len(restored), len(ids))
		}
		for _, o := range restored {
			if o.Attempted {
				t.Fatalf("%s marked attempted on disk between retries while the engine is down", o.Debit.CallID)
			}
		}
		e.set(func(e *fakeEngine) { e.down = false })
		time.Sleep(fast.MaxBackoff) // every backoff ends
		synctest.Wait()
		if n := r.spool.Waiting(); n != 0 {
			t.Fatalf("%d still waiting after the engine came back", n)
		}
		exactlyOnce(t, e, ids...)
		// Per engine, in the order owed.
		_, _, reqs, _ := e.snapshot()
		var a, b []string
		for _, d := range reqs {
			if d.CallID[0] == 'a' {
				a = append(a, d.CallID)
			} else {
				b = append(b, d.CallID)
			}
		}
		if fmt.Sprint(a) != "[a1 a2 a3]" || fmt.Sprint(b) != "[b1 b2]" {
			t.Fatalf("order a=%v b=%v", a, b)
		}
		if got := len(r.done.list()); got != len(ids) {
			t.Fatalf("onDone %d", got)
		}
	})
}

// An engine that is down must not hold up another engine's debits.
func TestEnginesIndependent(t *testing.T) {
	e := newEngine("x1", "y1")
	blocked := make(chan struct{})
	e.onRequest = func(d rating.Debit) {
		if d.CallID == "x1" {
			<-blocked
		}
	}
	r := start(t, t.TempDir(), e)
	owe(t, r.spool, "x", "x1")
	owe(t, r.spool, "y", "y1")
	waitFor(t, "engine y", func() bool { d, _, _, _ := e.snapshot(); return d["y1"] == 1 })
	close(blocked)
	waitFor(t, "engine x", func() bool { return r.spool.Waiting() == 0 })
	r.stop()
	exactlyOnce(t, e, "x1", "y1")
}

// crashingEngine stands between the first daemon run and the engine: at
// its crashAt-th request it copies the state directory (what kill -9 would
// leave), before or after the engine acts on the request, and from then on
// nothing of that run reaches the engine, as if the daemon had died.
type crashingEngine struct {
	t       *testing.T
	eng     *fakeEngine
	src     string
	after   bool
	crashAt int
	ready   chan struct{} // closed once every debit is owed

	mu     sync.Mutex
	n      int
	copied string
}

func (c *crashingEngine) DebitBalance(ctx context.Context, engine string, d rating.Debit) (rating.DebitReply, error) {
	<-c.ready
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.copied != "" {
		return rating.DebitReply{}, errBroken
	}
	c.n++
	if c.n < c.crashAt {
		return c.eng.DebitBalance(ctx, engine, d)
	}
	if c.after {
		c.eng.DebitBalance(ctx, engine, d)
	}
	c.copied = storetest.CopyDir(c.t, c.src)
	return rating.DebitReply{}, errBroken
}

// TestCrash kills the daemon at each request it makes, before or after the
// engine acts on it, restarts from what was on disk, and checks that every
// debit the engine knows is applied exactly once. A debit of a call the
// engine has purged is never applied twice; it can be lost only after a
// send of unknown fate (the protocol cannot tell "applied" from "never
// arrived" then: rating-protocol.md, Force=1).
func TestCrash(t *testing.T) {
	ids := []string{"k1", "k2", "p1", "k3", "p2", "k4"} // p*: purged at the engine, need Force
	known := []string{"k1", "k2", "k3", "k4"}
	faultSets := []map[string][]string{
		nil,
		{"k1": {"lost"}, "k3": {"noreply"}},
		{"p1": {"", "noreply"}, "k2": {"noreply", "lost"}},
		{"p2": {"noreply"}},
	}
	for _, after := range []bool{false, true} {
		for fi, faults := range faultSets {
			for crashAt := 1; crashAt <= 10; crashAt++ {
				t.Run(fmt.Sprintf("after=%v/faults%d/request%d", after, fi, crashAt), func(t *testing.T) {
					e := newEngine(known...)
					e.callFaults = faults
					src := t.TempDir()
					ce := &crashingEngine{t: t, eng: e, src: src, after: after, crashAt: crashAt, ready: make(chan struct{})}
					r := start(t, src, ce)
					for i, id := range ids {
						owe(t, r.spool, fmt.Sprint("eng", i%2), id)
					}
					close(ce.ready)
					waitFor(t, "the crash or the end", func() bool {
						ce.mu.Lock()
						defer ce.mu.Unlock()
						return ce.copied != "" || r.spool.Waiting() == 0
					})
					r.stop()
					dir := ce.copied
					if dir == "" {
						dir = src // all delivered before request crashAt
					}
					r2 := start(t, dir, e)
					waitFor(t, "delivery after restart", func() bool { return r2.spool.Waiting() == 0 })
					r2.stop()
					debited, _, _, _ := e.snapshot()
					for _, id := range ids {
						n := debited[id]
						if n > 1 || (n == 0 && id[0] == 'k') {
							t.Errorf("%s debited %d times", id, n)
						}
					}
				})
			}
		}
	}
}

// TestCrashMidBatchUnsentNotFateUnknown: a kill -9 while a prepared batch
// is being sent leaves only the debit in flight fate unknown. The others
// of the batch never left, and after the restart an engine that does not
// know their calls (it purged them, or it is another engine now) gets
// them forced, rather than having its Failed taken for "already applied".
// (k0 goes first and alone, as a batch is one debit until the engine
// answers; k1, p1 and p2 are then prepared together.)
func TestCrashMidBatchUnsentNotFateUnknown(t *testing.T) {
	for _, tc := range []struct {
		name        string
		route       bool   // after the restart engine "a" is gone: debits go to "b"
		wantApplied uint64 // k1, in flight at the crash: fate unknown at a
	}{{"same engine, calls purged", false, 0}, {"routed to a new engine", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newEngine("k0", "k1"), newEngine() // p1, p2: purged at a, unknown to b
			src := t.TempDir()
			ce := &crashingEngine{t: t, eng: a, src: src, crashAt: 2, ready: make(chan struct{})}
			close(ce.ready)
			l, live, err := store.Open(src, store.Options{NoSync: true}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			s := New(l, ce, Restore(live, store.BootID(), quiet()), fast, nil, quiet())
			for _, id := range []string{"k0", "k1", "p1", "p2"} {
				owe(t, s, "a", id) // queued before Run
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { s.Run(ctx); close(ran) }()
			waitFor(t, "the crash at k1's send", func() bool { ce.mu.Lock(); defer ce.mu.Unlock(); return ce.copied != "" })
			cancel()
			<-ran
			s.Close()
			l.Close()
			opts := fast
			if tc.route {
				cfg := &configured{}
				cfg.set("b", "b")
				opts.Route = cfg.route
			}
			l2, live, err := store.Open(ce.copied, store.Options{NoSync: true}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			s2 := New(l2, engines{"a": a, "b": b}, Restore(live, store.BootID(), quiet()), opts, nil, quiet())
			ctx2, cancel2 := context.WithCancel(context.Background())
			ran2 := make(chan struct{})
			go func() { s2.Run(ctx2); close(ran2) }()
			waitFor(t, "delivery after restart", func() bool { return s2.Waiting() == 0 })
			cancel2()
			<-ran2
			if c := s2.Delivered(); c.AlreadyApplied != tc.wantApplied {
				t.Errorf("counters %+v: debits that never left dropped as already applied", c)
			}
			got := a
			if tc.route {
				got = b
			}
			exactlyOnce(t, got, "p1", "p2")
		})
	}
}

// TestOutageMarksOneAtATime: while the engine does not answer, each
// round prepares the head alone, so a power cut during an outage can make
// one debit fate unknown, not a batch: at every send, a copy of the state
// read as after a power cut (prepared counts as fate unknown) holds at
// most one debit that may have left. Once the engine answers, the rest
// go in one batch.
func TestOutageMarksOneAtATime(t *testing.T) {
	ids := []string{"c1", "c2", "c3", "c4", "c5"}
	e := newEngine(ids...)
	e.faults = []string{"lost", "lost", "lost", "lost"} // mute for four sends
	dir := t.TempDir()
	var mu sync.Mutex
	var unknown []int // per send: debits fate unknown after a power cut then
	e.onRequest = func(rating.Debit) {
		l, live, err := store.Open(storetest.CopyDir(t, dir), store.Options{NoSync: true}, quiet())
		if err != nil {
			t.Error(err)
			return
		}
		n := 0
		for _, o := range Restore(live, "a boot before a power cut", quiet()) {
			if o.Attempted {
				n++
			}
		}
		l.Close()
		mu.Lock()
		unknown = append(unknown, n)
		mu.Unlock()
	}
	r := start(t, dir, e)
	defer r.stop()
	for _, id := range ids {
		owe(t, r.spool, "a", id)
	}
	waitFor(t, "delivery", func() bool { return r.spool.Waiting() == 0 })
	exactlyOnce(t, e, ids...)
	mu.Lock()
	defer mu.Unlock()
	// Sends 1-4 are lost (c1 each time: fate unknown, then resent plain);
	// the fifth is answered; the other four follow in one batch.
	if len(unknown) != 9 {
		t.Fatalf("%d sends, want 9 (%v)", len(unknown), unknown)
	}
	for i, n := range unknown[:5] {
		if n != 1 {
			t.Errorf("send %d, engine not answering: %d debits fate unknown after a power cut, want the head alone", i+1, n)
		}
	}
	if n := unknown[5]; n != 4 {
		t.Errorf("first send after the engine answered: %d debits prepared together, want the 4 left", n)
	}
}

func TestCompactKeepsOwed(t *testing.T) {
	e := newEngine("c1", "c2", "c3")
	e.down = true
	dir := t.TempDir()
	r := start(t, dir, e)
	owe(t, r.spool, "eng", "c1")
	owe(t, r.spool, "eng", "c2")
	if err := r.log.Compact(r.spool.Dump); err != nil {
		t.Fatal(err)
	}
	owe(t, r.spool, "eng", "c3")
	r.stop()
	e.set(func(e *fakeEngine) { e.down = false })
	r = start(t, dir, e)
	waitFor(t, "delivery", func() bool { return r.spool.Waiting() == 0 })
	r.stop()
	exactlyOnce(t, e, "c1", "c2", "c3")
	if got := r.done.list(); fmt.Sprint(got) != "[c1 c2 c3]" {
		t.Fatalf("delivered %v", got)
	}
}

func TestRestore(t *testing.T) {
	mk := func(o Owed) []byte { return encode(o) }
	d := rating.Debit{CallID: "c", From: "sip:a@x", Force: true, Duration: 5}
	records := map[string][]byte{
		"s/c":     []byte("session, not mine"),
		Key(7):    mk(Owed{ID: 7, Owed: rating.Owed{Engine: "e", Debit: d}, Attempted: true}),
		Key(3):    mk(Owed{ID: 3, Owed: rating.Owed{Engine: "e", Debit: d}}),
		Key(9):    []byte("{not json"),
		Key(10):   mk(Owed{ID: 11, Owed: rating.Owed{Engine: "e", Debit: d}}),
		"d/short": []byte("{}"),
		Key(12):   mk(Owed{ID: 12, Owed: rating.Owed{Engine: "e", Debit: d}, Prepared: "boot-A"}),
		Key(13):   mk(Owed{ID: 13, Owed: rating.Owed{Engine: "e", Debit: d}, Prepared: "boot-A", Attempted: true}),
	}
	for _, tc := range []struct {
		name string
		boot string // the running boot
		// what debit 12, prepared for a send but not marked attempted,
		// comes back as
		prepared12 bool // attempted: fate unknown, resent without Force
	}{
		{"after a kill -9 (same boot): a prepared debit never left", "boot-A", false},
		{"after a power cut (new boot): its attempted mark may be lost", "boot-B", true},
		{"no boot ID to compare: as after a power cut", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Restore(records, tc.boot, quiet())
			if len(got) != 4 || got[0].ID != 3 || got[1].ID != 7 || got[2].ID != 12 || got[3].ID != 13 {
				t.Fatalf("restored %+v", got)
			}
			if !got[0].Debit.Force {
				t.Error("a never-attempted forced debit must stay forced")
			}
			if got[1].Debit.Force || !got[1].Attempted {
				t.Error("an attempted debit is fate unknown: resend without Force")
			}
			if got[1].Debit.CallID != "c" || got[1].Debit.Duration != 5 || got[1].Debit.From != "sip:a@x" {
				t.Errorf("fields lost: %+v", got[1])
			}
			if p := got[2]; p.Attempted != tc.prepared12 || p.Debit.Force == tc.prepared12 || p.Prepared != "" {
				t.Errorf("prepared debit restored as attempted=%v force=%v prepared=%v, want attempted=%v",
					p.Attempted, p.Debit.Force, p.Prepared, tc.prepared12)
			}
			if p := got[3]; !p.Attempted || p.Debit.Force || p.Prepared != "" {
				t.Errorf("prepared and attempted debit restored as %+v, want fate unknown", p)
			}
		})
	}
}

// FuzzDecode: a stored record never panics the restore, and what decodes
// re-encodes to the same debit.
func FuzzDecode(f *testing.F) {
	f.Add(encode(Owed{ID: 1, Owed: rating.Owed{Engine: "e", Debit: rating.Debit{CallID: "c", Force: true}}, Attempted: true}))
	f.Add(encode(Owed{ID: 2, Owed: rating.Owed{Engine: "e", Debit: rating.Debit{CallID: "p"}}, Prepared: "boot-A"}))
	f.Add([]byte(`{"id":2,"callid":"x","created":"bad"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decode(b)
		if err != nil {
			return
		}
		o2, err := decode(encode(o))
		if err != nil || o2.Debit != o.Debit || o2.ID != o.ID || o2.Attempted != o.Attempted || o2.Prepared != o.Prepared {
			t.Fatalf("round trip: %+v -> %+v (%v)", o, o2, err)
		}
		Restore(map[string][]byte{Key(o.ID): b}, "boot-A", quiet())
	})
}

// invalidEngine refuses every debit as one its framing cannot carry.
type invalidEngine struct{}

func (invalidEngine) DebitBalance(context.Context, string, rating.Debit) (rating.DebitReply, error) {
	return rating.DebitReply{}, fmt.Errorf("value with a space: %w", rating.ErrInvalid)
}

func TestInvalidDebitDroppedNotRetried(t *testing.T) {
	r := start(t, t.TempDir(), invalidEngine{})
	defer r.stop()
	owe(t, r.spool, "e1", "bad")
	waitFor(t, "the invalid debit dropped", func() bool { return r.spool.Waiting() == 0 })
	if c := r.spool.Delivered(); c.Refused != 1 || c.Delivered != 0 || c.Retries != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// A 0 s release of a call the engine does not count has nothing to
// release: it is settled, never forced.
func TestZeroReleaseOfUnknownCallNotForced(t *testing.T) {
	e := newEngine() // knows nothing
	r := start(t, t.TempDir(), e)
	defer r.stop()
	d := Owed{Owed: rating.Owed{Engine: "e1", Debit: rating.Debit{CallID: "asked", From: "sip:a@x", To: "sip:b@x", Gateway: "10.0.0.1",
		Application: "audio", Duration: 0}}}
	if err := r.spool.Owe(d).Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the release settled", func() bool { return r.spool.Waiting() == 0 })
	if _, forced, reqs, _ := e.snapshot(); forced != 0 || len(reqs) != 1 {
		t.Fatalf("forced %d, requests %+v", forced, reqs)
	}
}
