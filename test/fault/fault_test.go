package fault

import (
	"sort"
	"testing"
	"time"
)

// TestEngineOutagesAndRestart (issue 3): 500 prepaid calls while the
// rating engine goes down and comes back at random moments (keeping its
// sessions, and at least once losing them) and the daemon is restarted
// once with SIGTERM. Every call answered Limited and started is debited
// exactly once, for the time the caller measured or exactly its limit.
func TestEngineOutagesAndRestart(t *testing.T) {
	const (
		nCalls    = 500
		nAccounts = 10
		limit     = 3 // prepaid_limit: calls talking longer run into it
		window    = 15 * time.Second
	)
	rng := seed(t)
	w := newWorld(t, nAccounts, limit)
	w.plan(rng, nCalls, nAccounts, time.Second, 4*time.Second)

	// The faults, at random moments while calls are being made.
	type event struct {
		at   time.Duration
		what string
		keep bool
		down time.Duration
	}
	var events []event
	nOutages := 4
	dropAt := rng.IntN(nOutages) // this outage loses the engine's sessions
	for i := range nOutages {
		events = append(events, event{at: time.Second + time.Duration(rng.Int64N(int64(window-2*time.Second))),
			what: "engine", keep: i != dropAt, down: time.Duration(100+rng.IntN(500)) * time.Millisecond})
	}
	events = append(events, event{at: 4*time.Second + time.Duration(rng.Int64N(int64(6*time.Second))), what: "daemon",
		down: time.Duration(rng.IntN(500)) * time.Millisecond})
	sort.Slice(events, func(i, j int) bool { return events[i].at < events[j].at })

	// When the engine or the daemon was down: refusals must fall near one.
	type outage struct{ from, to time.Time }
	var outages []outage
	start := time.Now()
	w.launch(window)
	for _, e := range events {
		time.Sleep(time.Until(start.Add(e.at)))
		switch e.what {
		case "engine":
			t.Logf("%5.2fs: rating engine down for %v (keep sessions: %v)", time.Since(start).Seconds(), e.down, e.keep)
			from := time.Now()
			w.eng.Stop()
			time.Sleep(e.down)
			if err := w.eng.Restart(e.keep); err != nil {
				t.Fatalf("restart the engine: %v", err)
			}
			outages = append(outages, outage{from, time.Now()})
		case "daemon":
			t.Logf("%5.2fs: daemon restart (SIGTERM), down for %v", time.Since(start).Seconds(), e.down)
			from := time.Now()
			w.d.Stop()
			time.Sleep(e.down)
			w.d.Start()
			outages = append(outages, outage{from, time.Now()})
		}
	}
	w.wg.Wait()
	t.Logf("%5.2fs: all calls over", time.Since(start).Seconds())
	w.waitDelivered(60 * time.Second)
	t.Logf("%5.2fs: everything delivered", time.Since(start).Seconds())

	n := w.verify()
	if n.limited <= nCalls/2 {
		t.Errorf("only %d of %d calls were made: most should be", n.limited, nCalls)
	}
	// The rating client waits up to 1 s (its longest reconnect backoff)
	// before it tries a restarted engine again; beyond that, with a wide
	// margin for a loaded machine, an engine that is up must be asked. An
	// init sent shortly before an outage may still be in flight when it
	// begins: up to the proxy timeout the daemon is given (2 s).
	const recovery = 7 * time.Second
	const inFlight = 2 * time.Second
	for _, c := range w.calls {
		c.mu.Lock()
		sent, reply := c.initSent, c.initReply
		c.mu.Unlock()
		if reply != "Error" {
			continue
		}
		near := false
		for _, o := range outages {
			if !sent.Before(o.from.Add(-inFlight)) && sent.Before(o.to.Add(recovery)) {
				near = true
			}
		}
		if !near {
			t.Errorf("call %s refused at %.2fs, more than %v after the last outage", c.id, sent.Sub(start).Seconds(), recovery)
		}
	}
	if n.byCaller == 0 || n.byDaemon == 0 {
		t.Errorf("want calls ended both by the caller (%d) and by the daemon at their limit (%d)", n.byCaller, n.byDaemon)
	}
}
