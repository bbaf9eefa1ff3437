// Package ratingtest is a fake CDRTool rating engine for tests: it speaks
// the protocol of ../../../shared/spec/rating-protocol.md (framing by
// socket read, single-threaded handling, replies ending "\n\n") and models
// prepaid accounts whose parallel calls end at one common moment.
package ratingtest

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account is a billing party as the engine sees it.
type Account struct {
	Balance     float64
	Postpaid    bool // MaxSessionTime answers "none\ntype=postpaid"
	MaxParallel int  // >0: at this many sessions the answer is "Locked"
}

type rate struct {
	perSecond float64
	free      bool
}

type session struct {
	callID, account string
	price           float64 // per second
	start           time.Time
	cap             int       // the Duration asked for
	expires         time.Time // purged after this (time ran out + 120 s)
}

// Engine is a fake rating engine listening on 127.0.0.1.
type Engine struct {
	addr string

	serve sync.Mutex // the real engine handles one request at a time

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]struct{}
	stopped  chan struct{} // closed by Stop: interrupts delayed answers
	running  bool
	hang     bool
	delay    time.Duration
	now      func() time.Time
	accounts map[string]*Account
	rates    map[string]rate
	sessions map[string]*session // by CallId
	debited  map[string][]int
	requests []string

	wg sync.WaitGroup
}

// Start listens on 127.0.0.1 on a free port.
func Start() (*Engine, error) {
	e := &Engine{
		now:      time.Now,
		accounts: make(map[string]*Account),
		rates:    make(map[string]rate),
		sessions: make(map[string]*session),
		debited:  make(map[string][]int),
	}
	if err := e.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return e, nil
}

// New starts an engine that is closed when the test ends.
func New(tb testing.TB) *Engine {
	tb.Helper()
	e, err := Start()
	if err != nil {
		tb.Fatalf("ratingtest: %v", err)
	}
	tb.Cleanup(e.Close)
	return e
}

func (e *Engine) listen(addr string) error {
	var (
		ln  net.Listener
		err error
	)
	// Re-listening on a just-closed port can race with the kernel; retry.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.ln = ln
	e.addr = ln.Addr().String()
	e.conns = make(map[net.Conn]struct{})
	e.stopped = make(chan struct{})
	e.running = true
	e.mu.Unlock()
	e.wg.Add(1)
	go e.accept(ln)
	return nil
}

// Addr is the engine's "host:port".
func (e *Engine) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Close stops the engine.
func (e *Engine) Close() { e.Stop() }

// Stop closes the listener and every connection, as a crashed engine would.
func (e *Engine) Stop() {
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		return
	}
	e.running = false
	e.ln.Close()
	for c := range e.conns {
		c.Close()
	}
	close(e.stopped)
	e.mu.Unlock()
	e.wg.Wait()
}

// Restart stops the engine if it runs and listens again on the same
// address. Balances persist (they live in CDRTool's database); sessions in
// progress persist only if keepSessions.
func (e *Engine) Restart(keepSessions bool) error {
	e.Stop()
	e.mu.Lock()
	if !keepSessions {
		e.sessions = make(map[string]*session)
	}
	addr := e.addr
	e.mu.Unlock()
	return e.listen(addr)
}

// ForgetSessions drops every session in progress, balances kept: what a
// restart does to the real engine (Restart(false)), for tests on a fake
// clock, where the listener cannot be opened again.
func (e *Engine) ForgetSessions() {
	e.mu.Lock()
	e.sessions = make(map[string]*session)
	e.mu.Unlock()
}

// Hang makes the engine read requests (and record them) without ever
// answering or acting on them, until Hang(false).
func (e *Engine) Hang(on bool) {
	e.mu.Lock()
	e.hang = on
	e.mu.Unlock()
}

// SetDelay makes every answer wait d; as the engine is single-threaded, a
// delayed request delays every other client too.
func (e *Engine) SetDelay(d time.Duration) {
	e.mu.Lock()
	e.delay = d
	e.mu.Unlock()
}

// SetClock replaces the engine's clock (for exact session arithmetic).
func (e *Engine) SetClock(now func() time.Time) {
	e.mu.Lock()
	e.now = now
	e.mu.Unlock()
}

// SetAccount creates or replaces an account; name is "user@domain" (a
// "sip:" prefix is accepted).
func (e *Engine) SetAccount(name string, a Account) {
	e.mu.Lock()
	e.accounts[accountName(name)] = &a
	e.mu.Unlock()
}

// SetRate prices destinations whose user part starts with prefix (the
// longest matching prefix wins); "" matches every destination.
func (e *Engine) SetRate(prefix string, perSecond float64) {
	e.mu.Lock()
	e.rates[strings.ToLower(prefix)] = rate{perSecond: perSecond}
	e.mu.Unlock()
}

// SetFree marks destinations under prefix as not charged ("none\ntype=prepaid").
func (e *Engine) SetFree(prefix string) {
	e.mu.Lock()
	e.rates[strings.ToLower(prefix)] = rate{free: true}
	e.mu.Unlock()
}

// PerMinute converts a price per minute (as CDRTool rates are written) to
// a price per second for SetRate.
func PerMinute(p float64) float64 { return p / 60 }

// Balance is the account's balance (debits applied, sessions in progress not).
func (e *Engine) Balance(account string) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.accounts[accountName(account)]; a != nil {
		return a.Balance
	}
	return 0
}

// Debited lists the seconds of each debit applied for callID.
func (e *Engine) Debited(callID string) []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.debited[callID]...)
}

// Sessions lists the CallIds the engine counts in progress for account.
func (e *Engine) Sessions(account string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.purgeLocked(e.now())
	var out []string
	for id, s := range e.sessions {
		if s.account == accountName(account) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Requests lists every request received, white space folded as the engine
// sees it.
func (e *Engine) Requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}

func (e *Engine) accept(ln net.Listener) {
	defer e.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		if !e.running {
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conns[c] = struct{}{}
		stopped := e.stopped
		e.wg.Add(1)
		e.mu.Unlock()
		go e.handleConn(c, stopped)
	}
}

func (e *Engine) handleConn(c net.Conn, stopped chan struct{}) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		// One read is one request: that is how the real engine frames.
		n, err := c.Read(buf)
		if n > 0 {
			if reply, ok := e.request(string(buf[:n]), stopped); ok {
				if _, werr := c.Write([]byte(reply)); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// request handles one read's worth of bytes; ok is false when there is no
// answer to send (hanging, stopped, or nothing but white space).
func (e *Engine) request(raw string, stopped chan struct{}) (string, bool) {
	line := strings.Join(strings.Fields(raw), " ")
	if line == "" {
		return "", false
	}
	e.serve.Lock()
	defer e.serve.Unlock()
	e.mu.Lock()
	e.requests = append(e.requests, line)
	hang, delay := e.hang, e.delay
	e.mu.Unlock()
	if hang {
		return "", false
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-stopped:
			t.Stop()
			return "", false
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.handleLocked(line), true
}

func (e *Engine) handleLocked(line string) string {
	fields := strings.Fields(line)
	params := make(map[string]string)
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		k = lowerASCII(k)
		if k != "callid" {
			v = lowerASCII(v) // every value but CallId, From included
		}
		params[k] = v
	}
	now := e.now()
	e.purgeLocked(now)
	var res string
	switch lowerASCII(fields[0]) {
	case "maxsessiontime":
		res = e.maxSessionTimeLocked(params, now)
	case "debitbalance":
		res = e.debitLocked(params, now)
	default:
		res = "0"
	}
	if res == "Failed" {
		return "Failed\n\n\n" // the real engine's stray extra newline
	}
	return res + "\n\n"
}

func missing(params map[string]string, names ...string) string {
	for _, n := range names {
		if _, ok := params[strings.ToLower(n)]; !ok {
			return "Error: missing " + n + " parameter"
		}
	}
	return ""
}

func (e *Engine) maxSessionTimeLocked(p map[string]string, now time.Time) string {
	if m := missing(p, "CallId", "From", "To", "Gateway"); m != "" {
		return m
	}
	if app, ok := p["application"]; ok && app != "audio" && app != "sms" {
		return "Error: unsupported application " + app
	}
	ds, ok := p["duration"]
	if !ok {
		return "0"
	}
	capSecs, err := strconv.Atoi(ds)
	if err != nil || capSecs < 0 {
		return "Error: invalid Duration " + ds
	}
	name := accountName(p["from"])
	acc := e.accounts[name]
	if acc == nil || acc.Postpaid {
		return "none\ntype=postpaid"
	}
	callID := p["callid"]
	if acc.MaxParallel > 0 && e.countLocked(name) >= acc.MaxParallel {
		return "Locked\ntype=prepaid" // even for a CallId already counted
	}
	r, ok := e.rateLocked(p["to"])
	if !ok {
		return "0\ntype=prepaid"
	}
	if r.free {
		return "none\ntype=prepaid"
	}
	s := &session{callID: callID, account: name, price: r.perSecond, start: now, cap: capSecs}
	// A re-ask restarts that session's clock: it takes part afresh.
	e.sessions[callID] = s
	// Counted even when it answers 0: every number, 0 included, is owed
	// a DebitBalance (rating-protocol.md), and the session counts until.
	return strconv.Itoa(e.commonLocked(name, now)) + "\ntype=prepaid"
}

func (e *Engine) debitLocked(p map[string]string, now time.Time) string {
	if m := missing(p, "CallId", "From", "To", "Gateway", "Duration"); m != "" {
		return m
	}
	secs, err := strconv.Atoi(p["duration"])
	if err != nil || secs < 0 {
		return "Error: invalid Duration " + p["duration"]
	}
	callID := p["callid"]
	name := accountName(p["from"])
	acc := e.accounts[name]
	if acc == nil || acc.Postpaid {
		e.debited[callID] = append(e.debited[callID], secs)
		return "Ok\nMaxSessionTime=0\n0.0000\ntype=postpaid"
	}
	var price float64
	if s := e.sessions[callID]; s != nil {
		price = s.price
		delete(e.sessions, callID)
	} else {
		if p["force"] != "1" {
			return "Failed"
		}
		r, ok := e.rateLocked(p["to"])
		if !ok {
			return "Failed" // cannot price the call
		}
		price = r.perSecond // 0 for a free destination
	}
	cost := float64(secs) * price
	acc.Balance -= cost
	e.debited[callID] = append(e.debited[callID], secs)
	t := e.commonLocked(name, now)
	return fmt.Sprintf("Ok\nMaxSessionTime=%d\n%.4f\nDuration=%d\nRate=%.4f/min", t, cost, secs, price*60)
}

// commonLocked is the moment, in seconds from now, at which all sessions of
// the account run out together: the balance left after what the sessions
// consumed so far, divided by their summed prices, capped by their caps.
// It is 0 when the account has no session.
func (e *Engine) commonLocked(name string, now time.Time) int {
	acc := e.accounts[name]
	var (
		ss          []*session
		left        = acc.Balance
		sum         float64
		capSecs     = math.MaxInt
		anySessions bool
	)
	for _, s := range e.sessions {
		if s.account != name {
			continue
		}
		anySessions = true
		ss = append(ss, s)
		left -= math.Max(0, now.Sub(s.start).Seconds()) * s.price
		sum += s.price
		capSecs = min(capSecs, s.cap)
	}
	if !anySessions {
		return 0
	}
	var t int
	switch {
	case left <= 0:
		t = 0
	case sum <= 0:
		t = capSecs
	default:
		t = int(math.Min(math.Floor(left/sum+1e-6), float64(capSecs)))
	}
	for _, s := range ss {
		s.expires = now.Add(time.Duration(t)*time.Second + 120*time.Second)
	}
	return t
}

// purgeLocked drops sessions 120 s after their time ran out, as the real
// engine does for sessions never debited.
func (e *Engine) purgeLocked(now time.Time) {
	for id, s := range e.sessions {
		if !s.expires.IsZero() && now.After(s.expires) {
			delete(e.sessions, id)
		}
	}
}

func (e *Engine) countLocked(name string) int {
	n := 0
	for _, s := range e.sessions {
		if s.account == name {
			n++
		}
	}
	return n
}

func (e *Engine) rateLocked(to string) (rate, bool) {
	user := lowerASCII(to)
	user = strings.TrimPrefix(strings.TrimPrefix(user, "sip:"), "sips:")
	user, _, _ = strings.Cut(user, "@")
	best, found := rate{}, false
	bestLen := -1
	for prefix, r := range e.rates {
		if strings.HasPrefix(user, prefix) && len(prefix) > bestLen {
			best, found, bestLen = r, true, len(prefix)
		}
	}
	return best, found
}

// accountName reduces a From URI to "user@domain", lower-cased whole as
// the engine lower-cases From: sip:Frank@Example.com and
// sip:frank@example.com are one account.
func accountName(from string) string {
	a := lowerASCII(strings.TrimSpace(from))
	a = strings.Trim(a, "<>")
	a = strings.TrimPrefix(strings.TrimPrefix(a, "sip:"), "sips:")
	a, _, _ = strings.Cut(a, ";")
	return a
}

// lowerASCII is the engine's fold: CDRTool is PHP, whose strtolower folds
// the ASCII letters A-Z only (rating-protocol.md: values are lower-cased).
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
