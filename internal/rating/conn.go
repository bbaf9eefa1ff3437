package rating

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultPort is the engine's TCP port when an address has none.
const DefaultPort = "9024"

// ErrClosed: the Conn or Pool was closed. It also matches ErrNotSent.
var ErrClosed = errors.New("rating: closed")

// Options tune the client; zero values take the defaults.
type Options struct {
	Timeout    time.Duration // per request when ctx has no deadline (500ms)
	MinBackoff time.Duration // first wait after a failed connect (100ms)
	MaxBackoff time.Duration // longest wait between connect attempts (1s)
	MaxReply   int           // bytes; a longer reply drops the connection (64 KiB)
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		// A refused connect is cheap; waiting long after an outage
		// refuses prepaid calls for that long once the engine is back.
		o.MaxBackoff = time.Second
		if o.MaxBackoff < o.MinBackoff {
			o.MaxBackoff = o.MinBackoff
		}
	}
	if o.MaxReply <= 0 {
		o.MaxReply = 64 << 10
	}
	return o
}

// NormalizeAddr turns "host" or "host:port" into "host:port" with the
// default port; it is the name Pool uses for an engine.
func NormalizeAddr(a string) string {
	a = strings.TrimSpace(a)
	if host, port, err := net.SplitHostPort(a); err == nil {
		if port == "" {
			port = DefaultPort
		}
		return net.JoinHostPort(host, port)
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), DefaultPort)
}

// Conn is the client of one engine: one TCP connection, connected lazily,
// re-connected with backoff, carrying one request at a time.
type Conn struct {
	addr string
	opts Options
	log  *slog.Logger

	// sem is held by the request (or probe) using nc/br: the engine frames by
	// socket read, so requests must never overlap on a connection.
	sem chan struct{}
	nc  net.Conn
	br  *bufio.Reader
	// gen numbers the engine processes nc may have reached, from 1: one
	// process answers everything on one connection, so an answer on a
	// later connection may come from an engine that restarted since, and
	// forgot the sessions it counted (MaxTime.Generation). It counts a
	// connection only when the one before was closed by the engine, or a
	// connect was refused meanwhile (restarted): not when this side
	// dropped it, after a request went unanswered in time, to an engine
	// that may well still count what it did.
	gen       uint64
	maybeAnew bool // the engine closed a connection, or refused one, since gen was counted

	mu      sync.Mutex
	live    net.Conn // == nc, readable without sem (for Close and stats)
	failing bool     // the last connect attempt failed
	lastErr error    // why, while failing
	// silent counts requests in a row sent but not answered: an engine
	// that accepts connections but never answers (hung) is passed over
	// for new parties from silentLimit on, until a probe is answered.
	silent   int
	backoff  time.Duration
	next     time.Time // no connect attempt before this
	closed   bool
	probing  bool
	probeCtx context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// NewConn returns a client of the engine at addr (host[:port]). It does not
// connect until the first request.
func NewConn(addr string, opts Options, log *slog.Logger) *Conn {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr = NormalizeAddr(addr)
	return &Conn{
		addr:     addr,
		opts:     opts.withDefaults(),
		log:      log.With("engine", addr),
		sem:      make(chan struct{}, 1),
		probeCtx: ctx,
		stop:     cancel,
	}
}

// Addr is the engine's normalized address.
func (c *Conn) Addr() string { return c.addr }

// Connected reports whether a connection is open now.
func (c *Conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live != nil
}

// silentLimit is how many requests in a row may go unanswered before the
// engine counts as hung. One may be a slow answer to a tight deadline.
const silentLimit = 2

// probeRequest is what a probe of a hung engine sends: an unknown command,
// which the engine answers `0` (rating-protocol.md).
const probeRequest = "Probe\n"

// Healthy reports whether new parties may be sent here: false while the
// last connect attempt failed, or while the engine leaves requests
// unanswered. It only reads the state; probeIfDue is what brings the
// engine back.
func (c *Conn) Healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.failing && c.silent < silentLimit
}

// probeIfDue starts one connect attempt in the background when the last
// one failed and the backoff has passed, so that the engine comes back
// without a call having to fail on it first. At most one runs at a time;
// Close stops it and waits for it.
func (c *Conn) probeIfDue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (c.failing || c.silent >= silentLimit) && !c.closed && !c.probing && !time.Now().Before(c.next) {
		c.probing = true
		c.wg.Add(1)
		go c.probe()
	}
}

func (c *Conn) probe() {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		c.probing = false
		c.mu.Unlock()
	}()
	c.mu.Lock()
	hung := !c.failing && c.silent >= silentLimit
	c.mu.Unlock()
	if hung {
		// A connect would succeed: only an answer tells it is back.
		ctx, cancel := context.WithTimeout(c.probeCtx, c.opts.Timeout)
		_, _, _ = c.roundTrip(ctx, probeRequest) // an answer clears silent
		cancel()
		return
	}
	select {
	case c.sem <- struct{}{}:
	case <-c.probeCtx.Done():
		return
	}
	defer func() { <-c.sem }()
	if c.nc != nil || c.isClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(c.probeCtx, c.opts.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_ = c.connect(ctx, deadline, false) // the outcome is recorded in c.failing
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close drops the connection. A request in progress gets up to
// Options.Timeout to finish; later requests fail with ErrClosed.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.stop()
	c.mu.Unlock()

	t := time.NewTimer(c.opts.Timeout)
	select {
	case c.sem <- struct{}{}:
	case <-t.C:
		c.mu.Lock()
		if c.live != nil {
			c.live.Close() // abort the stuck request
		}
		c.mu.Unlock()
		c.sem <- struct{}{}
	}
	t.Stop()
	c.drop()
	<-c.sem
	c.wg.Wait()
}

// MaxSessionTime asks how long the call may last.
func (c *Conn) MaxSessionTime(ctx context.Context, r Request) (MaxTime, error) {
	line, err := formatMaxSessionTime(r)
	if err != nil {
		return MaxTime{}, err
	}
	reply, gen, err := c.roundTrip(ctx, line)
	if err != nil {
		return MaxTime{}, err
	}
	mt, err := ParseMaxSessionTime(reply)
	if err != nil {
		return MaxTime{}, fmt.Errorf("rating %s: CallId %s: %w", c.addr, r.CallID, err)
	}
	mt.Generation = gen
	return mt, nil
}

// DebitBalance debits a call that ended.
func (c *Conn) DebitBalance(ctx context.Context, d Debit) (DebitReply, error) {
	line, err := formatDebit(d)
	if err != nil {
		return DebitReply{}, err
	}
	reply, gen, err := c.roundTrip(ctx, line)
	if err != nil {
		return DebitReply{}, err
	}
	dr, err := ParseDebit(reply)
	if err != nil {
		return dr, fmt.Errorf("rating %s: CallId %s: %w", c.addr, d.CallID, err)
	}
	dr.Generation = gen
	return dr, nil
}

func (c *Conn) notSent(err error) error {
	return fmt.Errorf("rating %s: %w: %w", c.addr, ErrNotSent, err)
}

var errBackoff = errors.New("engine unreachable, waiting before reconnecting")

// backoffError is errBackoff with the cause of the last failed connect, so
// that a request refused meanwhile says why the engine is unreachable.
type backoffError struct{ last error }

func (e *backoffError) Error() string {
	if e.last == nil {
		return errBackoff.Error()
	}
	return errBackoff.Error() + ": " + e.last.Error()
}
func (e *backoffError) Is(target error) bool { return target == errBackoff }
func (e *backoffError) Unwrap() error        { return e.last }

// roundTrip sends one request line and reads its reply, and the
// generation of the connection that carried both.
func (c *Conn) roundTrip(ctx context.Context, line string) (string, uint64, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", 0, c.notSent(ctx.Err())
	}
	defer func() { <-c.sem }()
	if c.isClosed() {
		return "", 0, c.notSent(ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return "", 0, c.notSent(err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.Timeout)
	}
	if c.nc != nil {
		if ok, closed := c.reusable(); !ok {
			c.log.Debug("rating connection closed by the engine or holds stray data; reconnecting")
			c.dropClosed(closed)
		}
	}
	if c.nc == nil {
		if err := c.connect(ctx, deadline, false); err != nil {
			return "", 0, c.notSent(err)
		}
	}
	nc := c.nc
	// A cancelled ctx must interrupt a blocked read, not just a deadline.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	if err := nc.SetDeadline(deadline); err != nil {
		stop()
		c.drop()
		return "", 0, c.notSent(err)
	}
	c.log.Debug("rating request", "request", strings.TrimSuffix(line, "\n"))
	n, err := io.WriteString(nc, line)
	if err != nil {
		stop()
		c.dropClosed(closedByPeer(err))
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		if n == 0 {
			return "", 0, c.notSent(err)
		}
		c.log.Warn("rating request partly written; connection dropped", "err", err)
		return "", 0, fmt.Errorf("rating %s: write: %w", c.addr, err)
	}
	reply, err := readReply(c.br, c.opts.MaxReply)
	if !stop() {
		// The ctx fired while we finished: its deadline change may land
		// after ours, so this connection cannot be trusted any more.
		c.drop()
	}
	if err != nil {
		c.dropClosed(closedByPeer(err)) // a late reply must never answer the next request
		c.unanswered()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		level := slog.LevelWarn
		if line == probeRequest {
			level = slog.LevelDebug // the probe of a hung engine: said once, by unanswered
		}
		c.log.Log(context.Background(), level, "rating request sent but no complete reply; connection dropped", "request", strings.TrimSuffix(line, "\n"), "err", err)
		return "", 0, fmt.Errorf("rating %s: no reply: %w", c.addr, err)
	}
	c.log.Debug("rating reply", "reply", reply)
	c.mu.Lock()
	if c.silent >= silentLimit {
		c.log.Info("rating engine answers again")
		c.backoff = 0
	}
	c.silent = 0
	c.mu.Unlock()
	return reply, c.gen, nil
}

// unanswered counts a request sent and not answered; at silentLimit in a
// row the engine is passed over for new parties and probed, with the
// connect backoff, until it answers.
func (c *Conn) unanswered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.silent++; c.silent < silentLimit {
		return
	}
	if c.backoff == 0 {
		c.backoff = c.opts.MinBackoff
	} else if c.backoff *= 2; c.backoff > c.opts.MaxBackoff {
		c.backoff = c.opts.MaxBackoff
	}
	c.next = time.Now().Add(c.backoff)
	if c.silent == silentLimit {
		c.log.Warn("rating engine leaves requests unanswered: new parties go to other engines until it answers", "unanswered", c.silent)
	}
}

// reusable checks an idle connection before a request is written on it, so
// that a connection the engine closed (e.g. it restarted) is replaced
// before sending rather than turning the request's fate unknown.
func (c *Conn) reusable() (ok, closedByEngine bool) {
	for c.br.Buffered() > 0 {
		b, _ := c.br.Peek(1)
		if b[0] != '\n' && b[0] != '\r' {
			return false, false // unsolicited data: the framing is lost
		}
		c.br.Discard(1)
	}
	// The last request's deadline has likely passed; an expired deadline
	// would fail the peek itself.
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return false, false
	}
	alive := peerAlive(c.nc)
	return alive, !alive
}

// connect dials the engine; the caller holds sem. A check (at start or
// reload) dials even during the backoff, and leaves the warning to its
// caller, who logs it with the option to fix.
func (c *Conn) connect(ctx context.Context, deadline time.Time, check bool) error {
	c.mu.Lock()
	if !check && c.failing && time.Now().Before(c.next) {
		last := c.lastErr
		c.mu.Unlock()
		return &backoffError{last: last}
	}
	c.mu.Unlock()

	// Dial resolves the name at every connect: an engine may move.
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", c.addr)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.backoff == 0 {
			c.backoff = c.opts.MinBackoff
		} else if c.backoff *= 2; c.backoff > c.opts.MaxBackoff {
			c.backoff = c.opts.MaxBackoff
		}
		c.next = time.Now().Add(c.backoff)
		if !c.failing && !check {
			c.log.Warn("rating engine unreachable", "cause", Cause(err), "err", err)
		} else {
			c.log.Debug("rating engine still unreachable", "err", err, "retry_in", c.backoff)
		}
		c.failing, c.lastErr = true, err
		if errors.Is(err, syscall.ECONNREFUSED) {
			c.maybeAnew = true // nothing listens: the engine is down, and will start afresh
		}
		return err
	}
	if c.closed {
		nc.Close()
		return ErrClosed
	}
	if c.failing {
		c.log.Info("rating engine reachable again")
	} else {
		c.log.Debug("rating engine connected")
	}
	c.failing, c.backoff, c.lastErr = false, 0, nil
	c.nc, c.live = nc, nc
	c.br = bufio.NewReaderSize(nc, 4096)
	if c.gen == 0 || c.maybeAnew {
		c.gen, c.maybeAnew = c.gen+1, false
	}
	return nil
}

// closedByPeer reports whether a read or write failed because the engine
// closed the connection (or its host reset it), as a restart does.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// drop closes the connection; the caller holds sem.
// dropClosed is drop, told whether the engine closed the connection: the
// next one may then reach an engine that restarted (gen).
func (c *Conn) dropClosed(byEngine bool) {
	c.drop()
	c.maybeAnew = c.maybeAnew || byEngine
}

func (c *Conn) drop() {
	if c.nc == nil {
		return
	}
	c.nc.Close()
	c.mu.Lock()
	c.nc, c.live, c.br = nil, nil, nil
	c.mu.Unlock()
}
