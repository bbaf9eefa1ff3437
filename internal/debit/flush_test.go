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
// leave only once everything written before them, their "prepared"
// marks and the sessions' ends included, is flushed, so a power cut can
// never bring back a call whose debit was sent. Once the engine answers,
// the debits that ended within one interval share the flusher's round:
// one fdatasync for all of them (one each cost a prepaid call an
// fdatasync, BENCHMARKS.md), and none forced ahead of the interval.
func TestSendWaitsForFlush(t *testing.T) {
	const every = 20 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		l, live, err := store.Open(t.TempDir(), store.Options{NoSync: true, FlushEvery: every}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		eng := &statsAtSend{log: l}
		s := New(l, eng, Restore(live, store.BootID(), quiet()), fast, func(Owed, rating.DebitReply) {}, quiet())
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
		// All but the first debit's own attempted mark, written to the
		// page cache just before it left: a frame of one record.
		mark := len(Key(1)) + len(encode(Owed{ID: 1, Owed: rating.Owed{Engine: "e1", Debit: rating.Debit{CallID: "c0@x"}},
			Attempted: true, Tries: 1, Created: time.Now()})) + 64
		if st := eng.at[0]; st.Bytes-st.Flushed > uint64(mark) {
			t.Errorf("first send: %d of %d written bytes flushed when the debit left", st.Flushed, st.Bytes)
		}
		// The first debit goes alone: until the engine answers, a batch
		// is the head alone. The other 49 share the next round.
		for i, st := range eng.at {
			round := uint64(1)
			if i > 0 {
				round = 2
			}
			if n := st.Flushes - base; n != round {
				t.Errorf("send %d: %d flushes before it, want %d", i+1, n, round)
			}
			if d := eng.on[i].Sub(start); d != time.Duration(round)*every {
				t.Errorf("send %d left %v after its call ended, want the flusher's round at %v", i+1, d, time.Duration(round)*every)
			}
		}
	})
}
