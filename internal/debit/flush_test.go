package debit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
)

// statsAtSend is an engine that records the log's written and flushed
// positions, and the time, when each debit reaches it.
type statsAtSend struct {
	log *store.Log
	mu  sync.Mutex
	at  []store.Stats
	on  []time.Time
}

func (e *statsAtSend) DebitBalance(_ context.Context, _ string, d rating.Debit) (rating.DebitReply, error) {
	st := e.log.Stats()
	e.mu.Lock()
	e.at = append(e.at, st)
	e.on = append(e.on, time.Now())
	e.mu.Unlock()
	return rating.DebitReply{OK: true}, nil
}

// TestSendWaitsForFlush: with the interval flush (sync = interval), debits
// leave only once everything written before them, their "attempted"
// marks and the sessions' ends included, is flushed, so a power cut can
// never bring back a call whose debit was sent. Debits that ended within
// one interval share the flusher's round: one fdatasync for all of them
// (one each cost a prepaid call an fdatasync, BENCHMARKS.md), and none
// forced ahead of the interval.
func TestSendWaitsForFlush(t *testing.T) {
	const every = 20 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		l, live, err := store.Open(t.TempDir(), store.Options{NoSync: true, FlushEvery: every}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		eng := &statsAtSend{log: l}
		s := New(l, eng, Restore(live, quiet()), fast, func(Owed, rating.DebitReply) {}, quiet())
		defer s.Close()
		time.Sleep(2 * every) // Open's own writes flushed: an idle flusher
		synctest.Wait()
		base := l.Stats().Flushes
		start := time.Now()
		// Queued before Run, so that the first round finds them all.
		const calls = 50
		for i := range calls {
			owe(t, s, "e1", fmt.Sprintf("c%d@x", i))
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { s.Run(ctx); close(ran) }()
		defer func() { cancel(); <-ran }()
		for s.Waiting() > 0 {
			time.Sleep(time.Millisecond)
		}

		eng.mu.Lock()
		defer eng.mu.Unlock()
		if len(eng.at) != calls {
			t.Fatalf("%d sends, want %d", len(eng.at), calls)
		}
		if st := eng.at[0]; st.Flushed != st.Bytes {
			t.Errorf("first send: %d of %d written bytes flushed when the debit left", st.Flushed, st.Bytes)
		}
		for i, st := range eng.at {
			if n := st.Flushes - base; n != 1 {
				t.Errorf("send %d: %d flushes before it, want the one round all %d debits share", i+1, n, calls)
			}
			if d := eng.on[i].Sub(start); d != every {
				t.Errorf("send %d left %v after its call ended, want the flusher's round at %v", i+1, d, every)
			}
		}
	})
}
