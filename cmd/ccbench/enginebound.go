package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/rating"
)

// engineBound answers the proxy after making exactly the engine round
// trips a prepaid call costs the daemon, and nothing else: MaxSessionTime
// at init, again at start, and the DebitBalance of stop sent in the
// background every 100 ms, as the daemon's spool does (one goroutine
// woken per debit costs more here than the round trip). It is the bound on prepaid
// cycles that the engine's round trips set on this machine, with the
// proxy, the server and the engine as three processes, which the engine
// measured alone in a tight loop (one process asking) does not show.
type engineBound struct {
	pool   *rating.Pool
	engine string
	mu     sync.Mutex
	debits []rating.Debit
	from   map[string]string // CallID -> billing party, from init to stop
}

func serveEngineBound(path, engine string) {
	eb := &engineBound{pool: rating.NewPool([]string{engine}, rating.Options{}, quiet), engine: engine, from: map[string]string{}}
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			eb.mu.Lock()
			debits := eb.debits
			eb.debits = nil
			eb.mu.Unlock()
			for _, d := range debits {
				eb.pool.DebitBalance(context.Background(), eb.engine, d)
			}
		}
	}()
	serveOn(path, eb)
}

func (eb *engineBound) Handle(r *proxy.Request, _ time.Time) string {
	from := r.From
	if i := strings.IndexByte(from, '<'); i >= 0 {
		from = from[i+1:]
		if j := strings.IndexByte(from, '>'); j >= 0 {
			from = from[:j]
		}
	}
	req := rating.Request{CallID: r.CallID, From: from, To: "sip:0031650222333@example.com",
		Gateway: "10.0.0.1", Application: "audio", Duration: 3600}
	eb.mu.Lock()
	if r.Command == "init" {
		eb.from[r.CallID] = from
	} else {
		from = eb.from[r.CallID]
	}
	eb.mu.Unlock()
	req.From = from
	switch r.Command {
	case "init", "start":
		req.Connected = r.Command == "start"
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := eb.pool.MaxSessionTime(ctx, eb.engine, req); err != nil {
			return proxy.Error
		}
		if r.Command == "init" {
			return proxy.Limited
		}
	case "stop":
		eb.mu.Lock()
		delete(eb.from, r.CallID)
		eb.debits = append(eb.debits, rating.Debit{CallID: r.CallID, From: from, To: req.To, Gateway: req.Gateway, Application: req.Application})
		eb.mu.Unlock()
	}
	return proxy.Ok
}
