package fault

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

const (
	initialBalance = 1000.0
	perMinute      = 1.0
	// retryFor bounds how long a call keeps re-sending start or stop while
	// the daemon is down (it comes back within seconds).
	retryFor = 30 * time.Second
)

func account(i int) string { return fmt.Sprintf("user%d@example.com", i) }

// call is one call of the fake proxy: its plan and what happened to it.
type call struct {
	idx      int
	id       string
	account  string
	kamailio bool // Kamailio's init fields (no prepaid key) or OpenSIPS' with prepaid: true
	ring     time.Duration
	talk     time.Duration // when the caller hangs up, unless the daemon ends the call first
	dialog   string        // "h_entry:h_id" given at start
	entry    uint32        // of dialog, for the fake proxy's dialog list
	hid      uint32

	ended   chan struct{} // closed when the daemon asks to end the dialog
	endOnce sync.Once

	mu           sync.Mutex
	initSent     time.Time
	initAt       time.Time // when the init reply came
	initReply    string    // "" when the connection failed: the call is not made
	startLo      time.Time // first start sent
	startHi      time.Time // start answered
	startReply   string
	stopFirst    time.Time // first stop sent by the caller
	stopLast     time.Time // the stop attempt that was answered
	stopHi       time.Time
	stopReply    string
	hookAt       time.Time // the daemon asked to end the dialog
	hookReplies  []string
	startedAfter int // the daemon run in which the call was started
}

// world is one test's daemon, peers, fake proxy and calls.
type world struct {
	t     *testing.T
	eng   *ratingtest.Engine
	dlg   *dialogtest.Fake
	d     *daemon
	px    *proxytest.Pool
	limit int

	calls    []*call
	byDialog map[string]*call // read-only once the calls are planned
	wg       sync.WaitGroup
	done     chan struct{} // closed when the test ends: calls give up

	mu       sync.Mutex
	problems []string // seen by call goroutines, reported by the test
}

// newWorld starts a fake engine with nAccounts prepaid accounts, a fake
// Kamailio whose hook sends stop for each dialog the daemon ends, and the
// daemon.
func newWorld(t *testing.T, nAccounts, prepaidLimit int) *world {
	return newWorldSync(t, nAccounts, prepaidLimit, "yes")
}

// newWorldSync is newWorld with the daemon's [CallControl] sync setting.
func newWorldSync(t *testing.T, nAccounts, prepaidLimit int, sync string) *world {
	eng := ratingtest.New(t)
	eng.SetRate("", ratingtest.PerMinute(perMinute))
	for i := range nAccounts {
		eng.SetAccount(account(i), ratingtest.Account{Balance: initialBalance})
	}
	dlg := dialogtest.NewKamailio(t, filepath.Join(dialogtest.SocketDir(t), "kamailio.sock"))
	d := newDaemon(t, daemonConfig{PrepaidLimit: prepaidLimit, Engine: eng.Addr(), RPCSocket: dlg.Path(), Sync: sync})
	w := &world{t: t, eng: eng, dlg: dlg, d: d, px: newProxyPool(t, d.Socket, 8), limit: prepaidLimit,
		byDialog: make(map[string]*call), done: make(chan struct{})}
	// Runs before the daemon is killed: a test that stopped early leaves
	// no call goroutine behind.
	t.Cleanup(func() { close(w.done); w.wg.Wait() })
	d.Start()
	return w
}

func (w *world) problem(format string, args ...any) {
	w.mu.Lock()
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// plan makes n calls over nAccounts accounts with random ring and talk times.
func (w *world) plan(rng *rand.Rand, n, nAccounts int, talkMin, talkMax time.Duration) {
	for i := range n {
		c := &call{idx: i, id: fmt.Sprintf("%s-%d-%x@fault", w.t.Name(), i, rng.Uint32()),
			account: account(rng.IntN(nAccounts)), kamailio: i%2 == 0,
			ring:   time.Duration(rng.IntN(300)) * time.Millisecond,
			talk:   talkMin + time.Duration(rng.Int64N(int64(talkMax-talkMin))),
			dialog: fmt.Sprintf("%d:%d", 1+i%4096, 100000+i), entry: uint32(1 + i%4096), hid: uint32(100000 + i),
			ended: make(chan struct{})}
		w.calls = append(w.calls, c)
		w.byDialog[c.dialog] = c
	}
}

// launch starts the calls spread evenly over window; it returns at once.
func (w *world) launch(window time.Duration) {
	// Set now, after plan: SetHook orders byDialog's writes before the
	// fake's reads.
	w.dlg.SetHook(w.endDialog)
	w.wg.Add(len(w.calls))
	go func() {
		start := time.Now()
		for i, c := range w.calls {
			if !w.sleep(time.Until(start.Add(window * time.Duration(i) / time.Duration(len(w.calls))))) {
				w.wg.Add(i - len(w.calls)) // the calls never launched
				return
			}
			go func() { defer w.wg.Done(); w.run(c) }()
		}
	}()
}

// sleep waits d; false if the test ended meanwhile.
func (w *world) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.done:
		return false
	}
}

func (w *world) initRequest(c *call) string {
	from := fmt.Sprintf(`"Caller %d" <sip:%s>;tag=t%d`, c.idx, c.account, c.idx)
	ruri := fmt.Sprintf("sip:0031650%06d@example.com", c.idx)
	if c.kamailio {
		return proxytest.Request("init", "ruri", ruri, "diverter", "None", "sourceip", "10.0.0.1", "callid", c.id,
			"from", from, "fromtag", fmt.Sprintf("t%d", c.idx), "sip_application", "audio")
	}
	return proxytest.Request("init", "ruri", ruri, "diverter", "None", "sourceip", "10.0.0.1", "callid", c.id,
		"from", from, "fromtag", fmt.Sprintf("t%d", c.idx), "prepaid", "true", "call_limit", "0",
		"call_token", "None")
}

// send re-sends req until the daemon answers; it returns the reply, when
// the answered attempt was sent and when its reply came.
func (w *world) send(req string) (reply string, sent, answered time.Time, err error) {
	deadline := time.Now().Add(retryFor)
	for {
		sent = time.Now()
		reply, err = w.px.Call(req)
		if err == nil {
			return reply, sent, time.Now(), nil
		}
		if time.Now().After(deadline) || !w.sleep(50*time.Millisecond) {
			return "", sent, time.Now(), err
		}
	}
}

// run plays one call as the proxy would: init; if Limited, ring, start,
// talk, and the caller's stop unless the daemon ended the dialog first.
func (w *world) run(c *call) {
	c.mu.Lock()
	c.initSent = time.Now()
	c.mu.Unlock()
	// The proxy's dialog exists before it sends init, is answered before
	// it sends start, and is gone when it sends stop: a restarted daemon
	// asks the proxy about calls restored ringing, and about dialogs it
	// must end, by Call-ID.
	w.dlg.SetDialog(c.id, dialogtest.Dialog{State: 2, Entry: c.entry, ID: c.hid})
	reply, err := w.px.Call(w.initRequest(c))
	c.mu.Lock()
	c.initAt = time.Now()
	if err == nil {
		c.initReply = reply
	}
	c.mu.Unlock()
	switch {
	case err != nil, reply == "Error":
		// The proxy fails the call: nothing more comes for it.
		w.dlg.DeleteDialog(c.id)
		return
	case reply != "Limited":
		w.problem("call %s: init answered %q, want Limited or Error", c.id, reply)
		return
	}
	if !w.sleep(c.ring) {
		return
	}

	w.dlg.SetDialog(c.id, dialogtest.Dialog{State: 4, Entry: c.entry, ID: c.hid, StartTS: time.Now().Unix()})
	c.mu.Lock()
	c.startLo = time.Now()
	c.startedAfter = w.d.Runs()
	c.mu.Unlock()
	reply, _, answered, err := w.send(proxytest.Request("start", "callid", c.id, "dialogid", c.dialog))
	c.mu.Lock()
	c.startHi, c.startReply = answered, reply
	c.mu.Unlock()
	if err != nil || reply != "Ok" {
		w.problem("call %s: start answered %q (err %v), want Ok: the daemon lost a call it answered Limited", c.id, reply, err)
	}

	t := time.NewTimer(c.talk)
	defer t.Stop()
	select {
	case <-c.ended:
		return // the daemon ended it; the hook sent the proxy's stop
	case <-w.done:
		return
	case <-t.C:
	}
	c.mu.Lock()
	c.stopFirst = time.Now()
	c.mu.Unlock()
	w.dlg.DeleteDialog(c.id)
	reply, sent, answered, err := w.send(proxytest.Request("stop", "callid", c.id))
	c.mu.Lock()
	c.stopLast, c.stopHi, c.stopReply = sent, answered, reply
	c.mu.Unlock()
	if err != nil {
		w.problem("call %s: stop never answered: %v", c.id, err)
	}
}

// endDialog is the fake Kamailio's hook: the daemon asked to end a dialog,
// so Kamailio sends BYE and reports stop on the proxy socket before it
// answers the request.
func (w *world) endDialog(r dialogtest.Request) {
	c := w.byDialog[r.Key()]
	if c == nil {
		w.problem("the daemon ended dialog %q that no call has", r.Key())
		return
	}
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.hookAt = time.Now()
		c.mu.Unlock()
		close(c.ended)
	})
	w.dlg.DeleteDialog(c.id)
	reply, _, _, err := w.send(proxytest.Request("stop", "callid", c.id))
	if err != nil {
		reply = "error: " + err.Error()
	}
	c.mu.Lock()
	c.hookReplies = append(c.hookReplies, reply)
	c.mu.Unlock()
}

// waitDelivered waits until the daemon tracks no call and owes no debit.
func (w *world) waitDelivered(timeout time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sessions, err := w.px.Operator(proxytest.Request("debug", "show", "sessions"))
		waiting, werr := w.d.debitsWaiting()
		if err == nil && werr == nil && sessions == "" && waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("after %v the daemon still tracks calls or owes debits: debits_waiting %d (%v), sessions (%v):\n%s",
				timeout, waiting, werr, err, sessions)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// tally counts what happened to the calls.
type tally struct{ limited, refused, lost, byDaemon, byCaller, lostAtRestart int }

// resentUnforced reports whether the engine got callID's debit (a
// non-zero duration) at least twice, never forced: the daemon resent it
// because the fate of a send was unknown.
func resentUnforced(requests []string, callID string) bool {
	n := 0
	for _, r := range requests {
		f := strings.Fields(r)
		if len(f) == 0 || f[0] != "DebitBalance" || !slices.Contains(f, "CallId="+callID) {
			continue
		}
		if slices.Contains(f, "Force=1") {
			return false
		}
		if !slices.Contains(f, "Duration=0") {
			n++
		}
	}
	return n >= 2
}

// verify checks every call against the engine's debit records.
func (w *world) verify() tally {
	t := w.t
	t.Helper()
	w.mu.Lock()
	for _, p := range w.problems {
		t.Error(p)
	}
	w.mu.Unlock()

	var n tally
	debitedSecs := make(map[string]int)
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 40 {
			t.Errorf(format, args...)
		}
	}
	lim := float64(w.limit)
	requests := w.eng.Requests()
	for _, c := range w.calls {
		c.mu.Lock()
		deb := w.eng.Debited(c.id)
		for _, s := range deb {
			debitedSecs[c.account] += s
		}
		switch {
		case c.initReply == "" || c.initReply == "Error":
			// Refused (engine down) or the reply was lost (daemon down):
			// the proxy fails the call. A 0 s release is all it may cost.
			if c.initReply == "" {
				n.lost++
			} else {
				n.refused++
			}
			if len(deb) > 1 || (len(deb) == 1 && deb[0] != 0) {
				report("call %s refused at init (reply %q) was debited %v, want nothing or one 0 s release", c.id, c.initReply, deb)
			}
		case c.initReply == "Limited" && c.startReply == "Ok":
			n.limited++
			if len(deb) == 0 && resentUnforced(requests, c.id) {
				// design.md's known limit: a debit in flight when the engine
				// stopped (fate unknown) is resent without Force; an engine
				// that lost its sessions answers Failed, read as "already
				// applied". Lost, never doubled.
				n.lostAtRestart++
				t.Logf("call %s: debit lost to an engine restart that forgot its sessions while it was in flight (known limit)", c.id)
				break
			}
			if len(deb) != 1 {
				report("call %s: debited %v, want exactly one debit (%s)", c.id, deb, c.describe())
				break
			}
			d := float64(deb[0])
			if c.stopReply == "Ok" {
				// The caller's stop ended it: the time it measured, capped
				// by the limit, ±1 s.
				n.byCaller++
				lo := math.Min(c.stopLast.Sub(c.startHi).Seconds(), lim) - 1
				hi := math.Min(c.stopHi.Sub(c.startLo).Seconds(), lim) + 1
				if d < lo || d > hi {
					report("call %s stopped by the caller: debited %v s, want %.1f..%.1f (%s)", c.id, d, lo, hi, c.describe())
				}
				break
			}
			// The daemon ended it (the stop found nothing, or the dialog
			// was ended first): exactly its limit.
			n.byDaemon++
			if d == lim {
				break
			}
			if !c.stopFirst.IsZero() && c.stopFirst.Before(c.stopLast) {
				// An earlier attempt of the caller's stop may have been
				// applied before the daemon went down.
				lo := math.Min(c.stopFirst.Sub(c.startHi).Seconds(), lim) - 1
				hi := math.Min(c.stopHi.Sub(c.startLo).Seconds(), lim) + 1
				if d >= lo && d <= hi {
					break
				}
			}
			report("call %s ended by the daemon: debited %v s, want its limit %v s (%s)", c.id, d, lim, c.describe())
		default:
			// Problems already reported by the call's goroutine.
		}
		c.mu.Unlock()
	}
	if bad > 40 {
		t.Errorf("... and %d more wrong calls", bad-40)
	}

	// Balances agree with the debits: nothing charged outside them.
	var accounts []string
	for _, c := range w.calls {
		accounts = append(accounts, c.account)
	}
	sort.Strings(accounts)
	accounts = compact(accounts)
	for _, a := range accounts {
		want := initialBalance - float64(debitedSecs[a])*perMinute/60
		if got := w.eng.Balance(a); math.Abs(got-want) > 1e-6 {
			t.Errorf("account %s: balance %.4f, want %.4f from %d s debited", a, got, want, debitedSecs[a])
		}
		if s := w.eng.Sessions(a); len(s) > 0 {
			// Every MaxSessionTime the engine answered with a number is
			// followed by one DebitBalance: a question whose answer was
			// lost (engine down, daemon killed) is released with 0 s.
			t.Errorf("account %s: the engine still counts %d sessions never debited: %v", a, len(s), s)
		}
	}
	t.Logf("calls: %d limited and started (%d ended by the caller, %d by the daemon, %d debits lost to the known limit), %d refused with Error, %d init reply lost",
		n.limited, n.byCaller, n.byDaemon, n.lostAtRestart, n.refused, n.lost)
	return n
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// describe is the call's history, relative to its start, for failures.
func (c *call) describe() string {
	rel := func(t time.Time) string {
		if t.IsZero() || c.startLo.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%+.2fs", t.Sub(c.startLo).Seconds())
	}
	return fmt.Sprintf("talk %.2fs, start answered %s, stop sent %s/%s answered %s %q, dialog ended %s %s, started in run %d",
		c.talk.Seconds(), rel(c.startHi), rel(c.stopFirst), rel(c.stopLast), rel(c.stopHi), c.stopReply,
		rel(c.hookAt), strings.Join(c.hookReplies, ","), c.startedAfter)
}
