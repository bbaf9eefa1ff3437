package debit

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

// engines routes each request to the fake engine of its name.
type engines map[string]*fakeEngine

func (e engines) DebitBalance(ctx context.Context, engine string, d rating.Debit) (rating.DebitReply, error) {
	f := e[engine]
	if f == nil {
		return rating.DebitReply{}, errors.New("test: no such engine " + engine)
	}
	return f.DebitBalance(ctx, engine, d)
}

// configured is the engines in the config, changed as a reload would.
type configured struct {
	mu    sync.Mutex
	names map[string]bool
	pick  string // every party's current engine
}

func (c *configured) route(engine, party string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names[engine] {
		return engine
	}
	return c.pick
}

func (c *configured) set(pick string, names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = map[string]bool{}
	for _, n := range names {
		c.names[n] = true
	}
	c.pick = pick
}

func startRouted(t *testing.T, dir string, eng Engine, cfg *configured) *rig {
	t.Helper()
	r := start(t, dir, eng)
	r.spool.opts.Route = cfg.route
	return r
}

// TestRemovedEngine: a debit owed to an engine no longer configured goes
// to the party's current engine, debited there exactly once: a debit that
// never reached the old engine is forced when the new one does not know
// the call; one whose fate on the old engine is unknown is sent plain, and
// a Failed then counts as applied (never twice).
func TestRemovedEngine(t *testing.T) {
	oldEng, newEng := newEngine(), newEngine()
	oldEng.set(func(e *fakeEngine) { e.down = true })
	cfg := &configured{}
	cfg.set("", "old", "new")
	r := startRouted(t, t.TempDir(), engines{"old": oldEng, "new": newEng}, cfg)
	defer r.stop()
	owe(t, r.spool, "old", "never-sent")
	waitFor(t, "a failed send", func() bool { _, _, _, n := oldEng.snapshot(); return n > 0 })
	st := r.spool.Status()
	if len(st) != 1 || st[0].LastErr == "" || st[0].Engine != "old" || st[0].Tries == 0 {
		t.Fatalf("status while the engine is down: %+v", st)
	}

	cfg.set("new", "new") // reload: "old" is removed
	r.spool.RetryNow()
	waitFor(t, "delivery on the new engine", func() bool { return r.spool.Waiting() == 0 })
	exactlyOnce(t, newEng, "never-sent")
	if debited, forced, _, _ := newEng.snapshot(); forced != 1 || debited["never-sent"] != 1 {
		t.Fatalf("new engine: debited %v, forced %d", debited, forced)
	}
}

func TestRemovedEngineFateUnknownIsNotForced(t *testing.T) {
	oldEng, newEng := newEngine("maybe"), newEngine()
	// The old engine applies it, but the reply is lost; then it goes away.
	oldEng.set(func(e *fakeEngine) { e.faults = []string{"noreply"} })
	cfg := &configured{}
	cfg.set("", "old", "new")
	hit := make(chan struct{})
	var once sync.Once
	oldEng.set(func(e *fakeEngine) {
		e.onRequest = func(rating.Debit) {
			once.Do(func() { cfg.set("new", "new"); close(hit) })
		}
	})
	r := startRouted(t, t.TempDir(), engines{"old": oldEng, "new": newEng}, cfg)
	defer r.stop()
	owe(t, r.spool, "old", "maybe")
	<-hit
	waitFor(t, "the debit settled", func() bool { return r.spool.Waiting() == 0 })
	if debited, forced, reqs, _ := newEng.snapshot(); forced != 0 || debited["maybe"] != 0 || len(reqs) != 1 {
		t.Fatalf("new engine: debited %v, forced %d, requests %d; want one plain request, no debit", debited, forced, len(reqs))
	}
	exactlyOnce(t, oldEng, "maybe")
}

func TestOperatorRerouteAndDrop(t *testing.T) {
	a, b := newEngine(), newEngine("c1", "c2")
	a.set(func(e *fakeEngine) { e.down = true })
	dir := t.TempDir()
	r := start(t, dir, engines{"a": a, "b": b})
	owe(t, r.spool, "a", "c1")
	owe(t, r.spool, "a", "c2")
	owe(t, r.spool, "a", "c3")
	waitFor(t, "a failed send", func() bool { _, _, _, n := a.snapshot(); return n > 0 })

	n, err := r.spool.Drop("c3")
	for errors.Is(err, ErrInFlight) {
		n, err = r.spool.Drop("c3")
	}
	if err != nil || n != 1 {
		t.Fatalf("drop: %d, %v", n, err)
	}
	if n, err := r.spool.Drop("nope"); n != 0 || err != nil {
		t.Fatalf("drop of an unknown call: %d, %v", n, err)
	}
	moved, inFlight := 0, 0
	for moved+inFlight < 2 || inFlight > 0 {
		rr := r.spool.Reroute("a", func(string) string { return "b" })
		if rr.NotWritten != 0 || rr.Err != nil {
			t.Fatalf("reroute: %+v", rr)
		}
		moved, inFlight = moved+rr.Moved, rr.InFlight
	}
	waitFor(t, "delivery on b", func() bool { return r.spool.Waiting() == 0 })
	exactlyOnce(t, b, "c1", "c2")
	if debited, _, _, _ := b.snapshot(); debited["c3"] != 0 {
		t.Fatal("a dropped debit was sent")
	}
	r.stop()
	// Nothing comes back after a restart: the drop and the moves were durable.
	r = start(t, dir, engines{"a": a, "b": b})
	defer r.stop()
	if w := r.spool.Waiting(); w != 0 {
		t.Fatalf("%d debits back after a restart", w)
	}
}

// TestRerouteUnmarksPrepared: debits marked attempted together with the
// one being sent (prepare), but not sent yet, are moved as never sent, on
// disk too: after a crash the new engine, which does not know the calls,
// gets them forced, rather than taking its Failed for "already applied".
func TestRerouteUnmarksPrepared(t *testing.T) {
	a, b := newEngine("c1", "c2", "c3"), newEngine()
	inFlight, release := make(chan struct{}), make(chan struct{})
	a.onRequest = func(d rating.Debit) {
		if d.CallID == "c1" {
			close(inFlight)
			<-release
		}
	}
	dir := t.TempDir()
	l, live, err := store.Open(dir, store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := New(l, engines{"a": a, "b": b}, Restore(live, store.BootID(), quiet()), fast, nil, quiet())
	for _, id := range []string{"c1", "c2", "c3"} {
		owe(t, s, "a", id) // queued before Run: prepared in one batch
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	<-inFlight
	// Stopping, so that no worker of engine b starts and marks them
	// again: what is on disk is what the move wrote.
	cancel()
	waitFor(t, "the spool stopping", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.stopping })
	if rr := s.Reroute("a", func(string) string { return "b" }); rr.Moved != 2 || rr.InFlight != 1 || rr.NotWritten != 0 {
		t.Fatalf("reroute: %+v; want 2 moved and 1 in flight", rr)
	}
	crashed, live, err := store.Open(storetest.CopyDir(t, dir), store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	restored := Restore(live, store.BootID(), quiet())
	crashed.Close()
	if len(restored) != 3 {
		t.Fatalf("%d debits in a copy of the state, want 3", len(restored))
	}
	for _, o := range restored {
		if o.Attempted != (o.Debit.CallID == "c1") || (o.Engine == "b") != (o.Debit.CallID != "c1") {
			t.Errorf("after the move, %s is saved to engine %s, attempted=%v", o.Debit.CallID, o.Engine, o.Attempted)
		}
	}
	close(release)
	<-ran
	s.Close()
}

// TestRerouteRacingAMoveQueuesOnce: a debit another reroute moved while
// this one was deciding is not moved again: queued twice, it would be
// sent twice, or read after its delivery deleted it.
func TestRerouteRacingAMoveQueuesOnce(t *testing.T) {
	l, live, err := store.Open(t.TempDir(), store.Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := newEngine(), newEngine("c1")
	s := New(l, engines{"a": a, "b": b}, Restore(live, store.BootID(), quiet()), fast, nil, quiet())
	defer s.Close()
	owe(t, s, "a", "c1") // not running: nothing is sent
	raced := false
	moved := s.Reroute("a", func(party string) string {
		if !raced {
			raced = true
			s.Reroute("a", func(string) string { return "b" }) // the other operator
		}
		return "b"
	}).Moved
	s.mu.Lock()
	var in []string
	for name, w := range s.workers {
		for e := w.q.head; e != nil; e = e.next {
			in = append(in, name)
		}
	}
	s.mu.Unlock()
	if len(in) != 1 {
		t.Errorf("one debit queued %d times (%v)", len(in), in)
	}
	if moved != 0 {
		t.Errorf("the first reroute says it moved %d, the other one had moved it", moved)
	}
}
