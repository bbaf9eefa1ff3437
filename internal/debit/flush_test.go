package debit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/store"
)

// statsAtSend is an engine that records the log's written and flushed
// positions when each debit reaches it.
type statsAtSend struct {
	log *store.Log
	mu  sync.Mutex
	at  []store.Stats
}

func (e *statsAtSend) DebitBalance(_ context.Context, _ string, d rating.Debit) (rating.DebitReply, error) {
	st := e.log.Stats()
	e.mu.Lock()
	e.at = append(e.at, st)
	e.mu.Unlock()
	return rating.DebitReply{OK: true}, nil
}

// TestSendWaitsForFlush: with the interval flush (sync = interval), a
// debit leaves only once everything written before it, its own
// "attempted" mark and the session's end included, is flushed, without
// waiting for the interval (an hour here, so only Flush can do it). A
// power cut can then never bring back a call whose debit was sent.
func TestSendWaitsForFlush(t *testing.T) {
	l, live, err := store.Open(t.TempDir(), store.Options{NoSync: true, FlushEvery: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	eng := &statsAtSend{log: l}
	s := New(l, eng, Restore(live, quiet()), fast, func(Owed, rating.DebitReply) {}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran; s.Close() }()

	// One at a time: nothing else writes between a flush and its send.
	for _, id := range []string{"c1@x", "c2@x"} {
		owe(t, s, "e1", id)
		waitFor(t, "the debit delivered", func() bool { return s.Waiting() == 0 })
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if len(eng.at) != 2 {
		t.Fatalf("%d sends, want 2", len(eng.at))
	}
	for i, st := range eng.at {
		if st.Bytes == 0 || st.Flushed != st.Bytes {
			t.Errorf("send %d: %d of %d written bytes flushed when the debit left", i+1, st.Flushed, st.Bytes)
		}
	}
}
