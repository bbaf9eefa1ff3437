package rating

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
)

// ErrNoEngine: the engine name is empty (no engine configured).
var ErrNoEngine = errors.New("rating: no engine")

// Pool is the client of several engines. All calls of one billing party go
// to one engine while the party has calls tracked (the engine keeps the
// party's sessions); new parties go to a healthy engine.
type Pool struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	addrs   []string         // configured engines, normalized, in order
	conns   map[string]*Conn // configured engines, plus removed ones still in use
	parties map[string]*affinity
	refs    map[string]int // engine -> parties with affinity to it
	closed  bool
	wg      sync.WaitGroup // background closes of removed engines
}

type affinity struct {
	engine string
	calls  int
	// asking: inits of the party between Reserve and Unreserve. They hold
	// the party on its engine while the engine is asked, before the call
	// is tracked (Acquire): a second call of the party in that window
	// must not be picked afresh onto another engine (a second balance).
	asking int
	// owed: debits of the party owed to the engine (Hold). Until the
	// engine has them, its balance there is the party's true one: a call
	// rated elsewhere meanwhile would be let talk what they owe.
	owed int
	// owedOn: the engine of the newest Hold. A debit held while calls or
	// inits keep the party on another engine is owed there; once they
	// end, the party follows it (followDebitsLocked).
	owedOn string
}

// NewPool returns a pool over the engines at addrs (host[:port] each).
func NewPool(addrs []string, opts Options, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		opts:    opts.withDefaults(),
		log:     log,
		conns:   make(map[string]*Conn),
		parties: make(map[string]*affinity),
		refs:    make(map[string]int),
	}
	p.SetAddrs(addrs)
	return p
}

// SetAddrs replaces the configured engines (at reload). Parties with calls
// on a removed engine stay there until they are released.
func (p *Pool) SetAddrs(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	seen := make(map[string]bool, len(addrs))
	p.addrs = p.addrs[:0:0]
	for _, a := range addrs {
		a = NormalizeAddr(a)
		if seen[a] {
			continue
		}
		seen[a] = true
		p.addrs = append(p.addrs, a)
		if p.conns[a] == nil {
			p.conns[a] = NewConn(a, p.opts, p.log)
		}
	}
	for a := range p.conns {
		if !seen[a] && p.refs[a] == 0 {
			p.retireLocked(a)
		}
	}
}

// retireLocked closes a removed engine's connection in the background: a
// request in progress on it is let finish.
func (p *Pool) retireLocked(a string) {
	c := p.conns[a]
	delete(p.conns, a)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.Close()
	}()
}

func (p *Pool) configuredLocked(a string) bool {
	for _, x := range p.addrs {
		if x == a {
			return true
		}
	}
	return false
}

// Pick returns the engine for a billing party: the one its tracked calls
// or owed debits use, else a healthy configured engine chosen by hashing
// the party (so concurrent first calls of one party agree), else any
// configured engine. It returns "" when no engine is configured. An
// unhealthy engine it passes over is probed in the background
// (Conn.probeIfDue): new parties are what it is needed for again.
func (p *Pool) Pick(party string) string {
	p.mu.Lock()
	if a := p.parties[party]; a != nil {
		p.mu.Unlock()
		return a.engine
	}
	p.mu.Unlock()
	return p.pickAmong(party, "")
}

// Route names the engine a debit of party owed to from goes to instead,
// when from is being left (removed from the configuration, or an
// operator's reroute): the party's engine if it is another one, from
// itself while the party has calls there (they are rated there to their
// end), else the engine Pick would give a new party with from left out.
// "" when there is none.
func (p *Pool) Route(party, from string) string {
	from = NormalizeAddr(from)
	p.mu.Lock()
	a := p.parties[party]
	switch {
	case a != nil && a.engine != from:
		p.mu.Unlock()
		return a.engine
	case a != nil && (a.calls > 0 || a.asking > 0):
		p.mu.Unlock()
		return from
	}
	p.mu.Unlock()
	return p.pickAmong(party, from)
}

// pickAmong is Pick's choice among the configured engines other than
// except, ignoring the party's own engine.
func (p *Pool) pickAmong(party, except string) string {
	p.mu.Lock()
	addrs := p.addrs // SetAddrs replaces the slice, never writes into it
	conns := make([]*Conn, len(addrs))
	for i, a := range addrs {
		conns[i] = p.conns[a]
	}
	p.mu.Unlock()

	best, bestHealthy, bestScore := "", false, uint64(0)
	for i, a := range addrs {
		if a == except {
			continue
		}
		h := conns[i].Healthy()
		if !h {
			conns[i].probeIfDue()
		}
		s := score(party, a)
		if best == "" || (h && !bestHealthy) || (h == bestHealthy && s > bestScore) {
			best, bestHealthy, bestScore = a, h, s
		}
	}
	return best
}

// Reserve is Pick for an init: the party stays on the engine returned
// until the init calls Unreserve, whatever the engines' health or a
// reload does meanwhile, so its concurrent calls are all asked of one
// engine, one balance.
func (p *Pool) Reserve(party string) string {
	for {
		engine := p.Pick(party)
		if engine == "" {
			return ""
		}
		p.mu.Lock()
		a := p.parties[party]
		switch {
		case a == nil:
			p.parties[party] = &affinity{engine: engine, asking: 1}
			p.refs[engine]++
		case a.engine != engine:
			// Another init reserved the party meanwhile: take its engine.
			p.mu.Unlock()
			continue
		default:
			a.asking++
		}
		p.mu.Unlock()
		return engine
	}
}

// Unreserve ends a Reserve: the party's engine stays while it has
// tracked calls (Acquire) or other inits asking.
func (p *Pool) Unreserve(party string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.parties[party]
	if a == nil || a.asking == 0 {
		return
	}
	a.asking--
	p.followDebitsLocked(a)
	p.forgetIfUnusedLocked(party, a)
}

// score is rendezvous hashing: removing an engine moves only its parties.
func score(party, engine string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(party))
	h.Write([]byte{0})
	h.Write([]byte(engine))
	return h.Sum64()
}

// Acquire records one more tracked call of party on engine. A party has one
// engine: a call acquired on another one is counted on the first (and
// logged, as it means the caller did not use Pick), unless only owed
// debits held the party there (a call restored at start).
func (p *Pool) Acquire(party, engine string) {
	if engine == "" {
		return
	}
	engine = NormalizeAddr(engine)
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.affinityLocked(party, engine)
	if a.engine != engine {
		p.log.Warn("rating: party acquired on a second engine; keeping the first", "party", party, "engine", a.engine, "other", engine)
	}
	a.calls++
}

// Hold keeps party on engine while a debit of it is owed there (the debit
// spool calls it for each debit that charges time, Unhold once it is
// delivered, dropped or moved): its next call is rated against the
// balance that will carry the debit, and with that engine down it is
// refused, as a call of a party with calls there would be. A party with
// calls or inits on another engine stays there until they end, then
// follows its newest debit (followDebitsLocked); one held there by debits
// alone follows the newest (an operator's reroute moves them one by one).
func (p *Pool) Hold(party, engine string) {
	if engine == "" {
		return
	}
	engine = NormalizeAddr(engine)
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.affinityLocked(party, engine)
	a.owed++
	a.owedOn = engine
}

// followDebitsLocked moves a party that only owed debits hold now to the
// engine of its newest one, when its last call or init on another engine
// ended: an operator's reroute while an init asked, or a call restored
// beside debits owed elsewhere. Held on the engine they left, its calls
// would be refused there (or rated against a balance without them).
func (p *Pool) followDebitsLocked(a *affinity) {
	if a.calls == 0 && a.asking == 0 && a.owed > 0 && a.owedOn != "" && a.owedOn != a.engine {
		p.moveLocked(a, a.owedOn)
	}
}

// affinityLocked is the party's affinity for a call or debit on engine:
// made there if the party has none; moved there if only owed debits hold
// it elsewhere (a call restored beside debits owed to another engine
// joins the calls it is counted with, and a reroute's debits move their
// party one by one); else the party's own, on its engine.
func (p *Pool) affinityLocked(party, engine string) *affinity {
	a := p.parties[party]
	switch {
	case a == nil:
		a = &affinity{engine: engine}
		p.parties[party] = a
		p.refs[engine]++
	case a.engine != engine && a.calls == 0 && a.asking == 0:
		p.moveLocked(a, engine)
	}
	return a
}

// moveLocked puts a party's affinity on another engine.
func (p *Pool) moveLocked(a *affinity, engine string) {
	p.unrefLocked(a.engine)
	a.engine = engine
	p.refs[engine]++
}

// Unhold ends one Hold of party.
func (p *Pool) Unhold(party string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.parties[party]
	if a == nil || a.owed == 0 {
		return
	}
	a.owed--
	p.forgetIfUnusedLocked(party, a)
}

// Owed counts the debits holding party on its engine (Hold).
func (p *Pool) Owed(party string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.parties[party]; a != nil {
		return a.owed
	}
	return 0
}

// Release forgets one tracked call of party.
func (p *Pool) Release(party string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.parties[party]
	if a == nil || a.calls == 0 {
		return
	}
	a.calls--
	p.followDebitsLocked(a)
	p.forgetIfUnusedLocked(party, a)
}

// forgetIfUnusedLocked drops the party's affinity once no call, no init
// and no owed debit holds it, and its engine's connection once nothing
// uses a removed engine.
func (p *Pool) forgetIfUnusedLocked(party string, a *affinity) {
	if a.calls > 0 || a.asking > 0 || a.owed > 0 {
		return
	}
	delete(p.parties, party)
	p.unrefLocked(a.engine)
}

// unrefLocked drops one party's reference to engine, and the engine's
// connection once nothing uses a removed engine.
func (p *Pool) unrefLocked(engine string) {
	if p.refs[engine]--; p.refs[engine] > 0 {
		return
	}
	delete(p.refs, engine)
	if !p.closed && p.conns[engine] != nil && !p.configuredLocked(engine) {
		p.retireLocked(engine)
	}
}

// conn returns the client of engine. An engine no longer configured (a
// debit owed to it after a reload) gets a connection again on demand.
func (p *Pool) conn(engine string) (*Conn, error) {
	if engine == "" {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrNoEngine)
	}
	engine = NormalizeAddr(engine)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("%w: %w", ErrNotSent, ErrClosed)
	}
	c := p.conns[engine]
	if c == nil {
		c = NewConn(engine, p.opts, p.log)
		p.conns[engine] = c
	}
	return c, nil
}

// MaxSessionTime asks engine how long the call may last.
func (p *Pool) MaxSessionTime(ctx context.Context, engine string, r Request) (MaxTime, error) {
	c, err := p.conn(engine)
	if err != nil {
		return MaxTime{}, err
	}
	return c.MaxSessionTime(ctx, r)
}

// DebitBalance debits a call that ended on engine.
func (p *Pool) DebitBalance(ctx context.Context, engine string, d Debit) (DebitReply, error) {
	c, err := p.conn(engine)
	if err != nil {
		return DebitReply{}, err
	}
	return c.DebitBalance(ctx, d)
}

// Connected reports how many configured engines have an open connection
// and answer on it (a hung engine is not counted: it is passed over).
func (p *Pool) Connected() (up, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.addrs {
		if c := p.conns[a]; c.Connected() && c.Healthy() { // a hung engine's probe connection is not up
			up++
		}
	}
	return up, len(p.addrs)
}

// Close closes every connection; later requests fail with ErrClosed.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.conns = map[string]*Conn{}
	p.addrs = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close()
		}()
	}
	wg.Wait()
	p.wg.Wait()
}

// Configured reports whether engine is among the configured engines (a
// reload may have removed it).
func (p *Pool) Configured(engine string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.configuredLocked(NormalizeAddr(engine))
}
