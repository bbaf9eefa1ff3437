package fault

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
)

// TestKill9 (issue 4): with 300 calls in progress, callcontrold is killed
// with SIGKILL 3 to 5 times at random moments and started again on the same
// state directory. After each start, every call that had been answered
// Limited is still tracked; in the end each call expired or stopped
// normally and was debited exactly once. It runs in each durability
// setting (issue 12): the log is written before every reply in all of
// them, so none may lose an answered call to kill -9.
func TestKill9(t *testing.T) {
	for _, sync := range []string{"interval", "no", "yes"} {
		t.Run(sync, func(t *testing.T) { testKill9(t, sync) })
	}
}

func testKill9(t *testing.T, sync string) {
	const (
		nCalls    = 300
		nAccounts = 12
		limit     = 6
		window    = 3 * time.Second
	)
	rng := seed(t)
	w := newWorldSync(t, nAccounts, limit, sync)
	w.plan(rng, nCalls, nAccounts, 2*time.Second, 9*time.Second)

	nKills := 3 + rng.IntN(3)
	// The first kill while calls are still being set up, the others at
	// any moment while they talk.
	kills := []time.Duration{500*time.Millisecond + time.Duration(rng.Int64N(int64(window-time.Second)))}
	for range nKills - 1 {
		kills = append(kills, time.Second+time.Duration(rng.Int64N(int64(9*time.Second))))
	}
	sort.Slice(kills, func(i, j int) bool { return kills[i] < kills[j] })

	start := time.Now()
	w.launch(window)
	checked := 0
	for i, at := range kills {
		time.Sleep(time.Until(start.Add(at)))
		killedAt := time.Now()
		w.d.Kill()
		down := time.Duration(rng.IntN(400)) * time.Millisecond
		t.Logf("%5.2fs: kill -9 #%d, down for %v", time.Since(start).Seconds(), i+1, down)
		time.Sleep(down)
		w.d.Start()
		checked += w.checkTracked(killedAt, i+1)
	}
	w.wg.Wait()
	t.Logf("%5.2fs: all calls over; %d calls found tracked after restarts", time.Since(start).Seconds(), checked)
	if checked == 0 {
		t.Error("no call answered before a kill was found tracked after it: the test proves nothing")
	}
	w.waitDelivered(60 * time.Second)
	t.Logf("%5.2fs: everything delivered", time.Since(start).Seconds())

	n := w.verify()
	// Inits in flight at a kill fail (the proxy fails those calls); most
	// calls are made all the same.
	if n.limited <= nCalls/2 {
		t.Errorf("only %d of %d calls were made", n.limited, nCalls)
	}
}

// checkTracked asks the restarted daemon, over the proxy socket, about
// every call answered Limited before the kill that neither the caller nor
// the daemon has ended since: each must still be tracked. It returns how
// many of them it found tracked (not those excused as ended meanwhile).
func (w *world) checkTracked(killedAt time.Time, kill int) int {
	var todo []*call
	for _, c := range w.calls {
		c.mu.Lock()
		if c.initReply == "Limited" && c.initAt.Before(killedAt) && c.stopFirst.IsZero() && c.hookAt.IsZero() {
			todo = append(todo, c)
		}
		c.mu.Unlock()
	}
	lim := time.Duration(w.limit) * time.Second
	jobs := make(chan *call)
	var (
		wg      sync.WaitGroup
		tracked atomic.Int64
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				var (
					reply string
					err   error
				)
				for range 20 {
					if reply, err = w.px.Operator(proxytest.Request("debug", "show", "session", "callid", c.id)); err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				at := time.Now()
				if err != nil {
					w.problem("kill %d: show session %s: %v", kill, c.id, err)
					continue
				}
				if strings.Contains(reply, "callid: "+c.id+"\r\n") {
					tracked.Add(1)
					continue
				}
				// Its time may have run out while the daemon was down (the
				// engine's limit can be below prepaid_limit): ended at the
				// restore, its dialog end on its way to the fake proxy.
				select {
				case <-c.ended:
					continue
				case <-time.After(3 * time.Second):
				}
				c.mu.Lock()
				stopped := !c.stopFirst.IsZero() && c.stopFirst.Before(at)
				// Answered no earlier than the first start was sent, so it
				// cannot have run out before that plus its limit.
				mayHaveExpired := !c.startLo.IsZero() && at.After(c.startLo.Add(lim-100*time.Millisecond))
				desc := c.describe()
				c.mu.Unlock()
				if stopped || mayHaveExpired {
					continue
				}
				w.problem("kill %d: call %s answered Limited before the kill is not tracked after the restart: %q (%s)",
					kill, c.id, reply, desc)
			}
		}()
	}
	for _, c := range todo {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	w.t.Logf("kill %d: checked %d calls answered Limited before it, %d found tracked, the others ended meanwhile", kill, len(todo), tracked.Load())
	return int(tracked.Load())
}
