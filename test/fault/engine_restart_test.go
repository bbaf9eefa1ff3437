package fault

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestEngineRestartMidCallKeepsTheBalance: a rating engine that restarts
// forgets the sessions it counted, and answers the account's next call as
// if it were alone. The daemon binary, seeing the engine close its
// connection, must not let the account's two calls talk twice its
// balance: the running call is not stretched to the new call's answer,
// and the two share what was left.
func TestEngineRestartMidCallKeepsTheBalance(t *testing.T) {
	const alone = 12 // seconds the balance buys one call
	w := newWorldSync(t, 1, 3600, "interval")
	w.eng.SetAccount(account(0), ratingtest.Account{Balance: alone * perMinute / 60})
	mk := func(i int) *call {
		c := &call{idx: i, id: fmt.Sprintf("restart-%d@fault", i), account: account(0), kamailio: true,
			talk: time.Minute, dialog: fmt.Sprintf("1:%d", 100+i), entry: 1, hid: uint32(100 + i), ended: make(chan struct{})}
		w.calls = append(w.calls, c)
		w.byDialog[c.dialog] = c
		return c
	}
	first, second := mk(0), mk(1)
	w.dlg.SetHook(w.endDialog)
	run := func(c *call) {
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.run(c) }()
	}

	run(first)
	time.Sleep(2 * time.Second)
	if err := w.eng.Restart(false); err != nil { // sessions forgotten, balance kept
		t.Fatal(err)
	}
	run(second)
	for _, c := range []*call{first, second} {
		select {
		case <-c.ended:
		case <-time.After(3 * alone * time.Second):
			t.Fatalf("call %s not ended by the daemon within %d s", c.id, 3*alone)
		}
	}
	w.wg.Wait()
	w.waitDelivered(30 * time.Second)

	total := 0
	for _, c := range []*call{first, second} {
		c.mu.Lock()
		t.Logf("%s: init %q, start %q, ended by the daemon %.1f s after its start", c.id, c.initReply, c.startReply, c.hookAt.Sub(c.startHi).Seconds())
		c.mu.Unlock()
		d := w.eng.Debited(c.id)
		if len(d) != 1 {
			t.Fatalf("%s debited %v, want once", c.id, d)
		}
		total += d[0]
	}
	// Whole seconds, each call's rounded: a second of slack per call.
	if total > alone+2 {
		t.Errorf("the account talked %d s in all on a balance for %d s: the restarted engine's answer stretched its calls", total, alone)
	}
	if total < alone-4 {
		t.Errorf("the account talked %d s in all on a balance for %d s: its calls were cut well before the credit ran out", total, alone)
	}
}
