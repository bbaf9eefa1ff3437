package dialog

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// Target names the call to end: its Call-ID (for logs, and OpenSIPS' default
// form) and the proxy dialog id from `start`.
type Target struct {
	CallID string
	Dialog ID
}

// Ender ends dialogs. End never blocks (callers hold locks or sit on the
// proxy path) and never drops a request without a log line.
type Ender interface{ End(t Target) }

var _ Ender = (*Client)(nil)

// Defaults for Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxInFlight = 64
	DefaultGiveUpAfter = 30 * time.Second
)

// Retry pacing for sends the kernel refuses (the proxy's queue is full or
// the proxy is restarting).
const (
	minBackoff     = time.Millisecond
	maxBackoff     = 250 * time.Millisecond
	loudAfter      = 20 // consecutive refusals before the first loud log line
	loudEvery      = 10 * time.Second
	readBufferSize = 1 << 16
)

// Options configure a Client.
type Options struct {
	Flavor      Flavor
	ProxySocket string // the proxy's management socket, e.g. /run/kamailio/kamailio_rpc.sock
	LocalSocket string // our reply socket, e.g. <runtime-dir>/dialog.sock
	Timeout     time.Duration
	MaxInFlight int
	// OpenSIPSKey names the dialog for OpenSIPS: by Call-ID (default,
	// every 3.x) or by one of the numeric forms.
	OpenSIPSKey OpenSIPSKey
	// GiveUpAfter bounds retries of refused sends: a request is dropped,
	// with an error line, once it is this old and the proxy has refused
	// every send for this long.
	GiveUpAfter time.Duration

	onResult func(Target, outcome) // test hook
}

type outcome int

const (
	outcomeOK outcome = iota + 1
	outcomeGone
	outcomeError
	outcomeTimeout
	outcomeGaveUp
	outcomeAbandoned
)

type request struct {
	t        Target
	queued   time.Time
	seq      uint64
	sent     time.Time
	deadline time.Time
}

// Client sends end-dialog requests over JSON-RPC 2.0 on Unix datagrams.
// A sender goroutine feeds a bounded number of requests to the proxy, a
// reader matches replies by id, and a janitor expires unanswered ones.
type Client struct {
	opts  Options
	log   *slog.Logger
	conn  *net.UnixConn
	raw   syscall.RawConn
	proxy syscall.SockaddrUnix

	mu       sync.Mutex
	queue    []*request
	inflight map[uint64]*request
	closed   bool

	seq     uint64 // only the sender goroutine touches it
	wake    chan struct{}
	kick    chan struct{}
	slots   chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	pending atomic.Int64
	refused atomic.Int64 // sends the kernel refused; tests check back-pressure happened
	once    sync.Once
}

// New binds opts.LocalSocket (replacing a stale socket there) and starts the
// client's goroutines; Close stops them.
func New(opts Options, log *slog.Logger) (*Client, error) {
	if opts.Flavor != Kamailio && opts.Flavor != OpenSIPS {
		return nil, fmt.Errorf("dialog: unknown flavor %v", opts.Flavor)
	}
	if opts.ProxySocket == "" || opts.LocalSocket == "" {
		return nil, errors.New("dialog: ProxySocket and LocalSocket are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = DefaultGiveUpAfter
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := removeStaleSocket(opts.LocalSocket); err != nil {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: opts.LocalSocket, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("dialog: bind %s: %w", opts.LocalSocket, err)
	}
	// The proxy runs as its own user and must be able to send replies here.
	if err := os.Chmod(opts.LocalSocket, 0o666); err != nil {
		conn.Close()
		os.Remove(opts.LocalSocket)
		return nil, fmt.Errorf("dialog: %w", err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		os.Remove(opts.LocalSocket)
		return nil, fmt.Errorf("dialog: %w", err)
	}
	c := &Client{
		opts:     opts,
		log:      log.With("proxy", opts.Flavor.String()),
		conn:     conn,
		raw:      raw,
		proxy:    syscall.SockaddrUnix{Name: opts.ProxySocket},
		inflight: make(map[uint64]*request),
		wake:     make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		slots:    make(chan struct{}, opts.MaxInFlight),
		done:     make(chan struct{}),
	}
	c.wg.Add(3)
	go c.sendLoop()
	go c.readLoop()
	go c.janitor()
	return c, nil
}

// removeStaleSocket frees path for our reply socket, unless a running
// process (another daemon sharing the runtime directory) still has it.
func removeStaleSocket(path string) error {
	if err := unixsock.Reclaim(path); err != nil {
		return fmt.Errorf("dialog: reply socket %w", err)
	}
	return nil
}

// End queues a request to end t's dialog and returns at once; the outcome is
// logged with the Call-ID.
func (c *Client) End(t Target) {
	r := &request{t: t, queued: time.Now()}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.log.Error("dialog client closed: cannot end dialog", "call_id", t.CallID, "dialog", t.Dialog.String())
		return
	}
	c.queue = append(c.queue, r)
	c.pending.Add(1)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Pending reports requests queued or awaiting a reply.
func (c *Client) Pending() int { return int(c.pending.Load()) }

// Close stops the goroutines, logs every request still pending as
// abandoned and removes the local socket.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		err = c.conn.Close()
		c.wg.Wait()

		c.mu.Lock()
		queued, inflight := c.queue, c.inflight
		c.queue, c.inflight = nil, map[uint64]*request{}
		c.mu.Unlock()
		for _, r := range inflight {
			c.finish(r, outcomeAbandoned, "sent", !r.sent.IsZero())
		}
		for _, r := range queued {
			c.finish(r, outcomeAbandoned, "sent", false)
		}
		if rmErr := os.Remove(c.opts.LocalSocket); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) && err == nil {
			err = rmErr
		}
	})
	return err
}

// sendLoop takes an in-flight slot, then the oldest queued request, and
// sends it, retrying refusals; it is the only sender, so requests leave in
// order and the kernel's queue limit paces it.
func (c *Client) sendLoop() {
	defer c.wg.Done()
	var failingSince time.Time // start of the current run of refused sends
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.done:
			return
		}
		r := c.pop()
		if r == nil {
			return
		}
		if !c.send(r, &failingSince) {
			<-c.slots
		}
	}
}

func (c *Client) pop() *request {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			r := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			if len(c.queue) == 0 {
				c.queue = nil // let the backing array go after a burst
			}
			c.mu.Unlock()
			return r
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
			return nil
		}
	}
}

// send delivers r and registers it in flight; false means r is finished
// (given up or abandoned) and its slot is free.
func (c *Client) send(r *request, failingSince *time.Time) bool {
	c.seq++
	r.seq = c.seq
	b, err := encodeRequest(c.opts.Flavor, c.opts.OpenSIPSKey, r.seq, r.t)
	if err != nil {
		c.finish(r, outcomeGaveUp, "error", err.Error())
		return false
	}
	// Register before sending: the reply may beat us back from sendto.
	c.mu.Lock()
	c.inflight[r.seq] = r
	c.mu.Unlock()

	backoff := minBackoff
	var lastLoud time.Time
	for attempt := 1; ; attempt++ {
		err = c.sendto(b)
		if err == nil {
			*failingSince = time.Time{}
			break
		}
		c.refused.Add(1)
		now := time.Now()
		if failingSince.IsZero() {
			*failingSince = now
		}
		retry := isRetryable(err)
		if retry && now.Sub(r.queued) >= c.opts.GiveUpAfter && now.Sub(*failingSince) >= c.opts.GiveUpAfter {
			retry = false
		}
		if !retry {
			if c.forget(r.seq) == nil {
				return true // retired by someone else, who freed the slot
			}
			c.finish(r, outcomeGaveUp, "error", err.Error(), "attempts", attempt)
			return false
		}
		if attempt >= loudAfter && now.Sub(lastLoud) >= loudEvery {
			lastLoud = now
			c.log.Error("proxy keeps refusing end requests, still retrying",
				"call_id", r.t.CallID, "dialog", r.t.Dialog.String(), "error", err.Error(),
				"attempts", attempt, "age", now.Sub(r.queued).Round(time.Millisecond), "socket", c.opts.ProxySocket)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			// Close finds r in flight and logs it as abandoned.
			return true
		}
		backoff = min(2*backoff, maxBackoff)
	}

	now := time.Now()
	c.mu.Lock()
	_, still := c.inflight[r.seq]
	if still {
		r.sent = now
		r.deadline = now.Add(c.opts.Timeout)
	}
	first := still && len(c.inflight) == 1
	c.mu.Unlock()
	if first {
		// Deadlines grow in send order, so the janitor only needs a nudge
		// when it had nothing to watch.
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return true
}

func (c *Client) sendto(b []byte) error {
	var serr error
	// Return true so Go's poller never parks us: an unconnected datagram
	// socket stays "writable" while the peer's queue is full.
	err := c.raw.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), b, syscall.MSG_DONTWAIT, &c.proxy)
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

func isRetryable(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.EINTR)
}

func (c *Client) forget(seq uint64) *request {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.inflight[seq]
	delete(c.inflight, seq)
	return r
}

// readLoop matches replies to requests by id.
func (c *Client) readLoop() {
	defer c.wg.Done()
	buf := make([]byte, readBufferSize)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-c.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Error("reading proxy replies", "error", err.Error())
			select {
			case <-time.After(100 * time.Millisecond):
			case <-c.done:
				return
			}
			continue
		}
		rep, err := parseReply(buf[:n])
		if err != nil {
			// No id to match: the request it belongs to runs into its timeout.
			c.log.Error("unusable reply from proxy", "error", err.Error(), "reply", truncate(buf[:n], 200))
			continue
		}
		r := c.forget(rep.seq)
		if r == nil {
			c.log.Warn("reply to no pending request (late or foreign)", "id", rep.seq)
			continue
		}
		<-c.slots
		switch rep.kind {
		case replyOK:
			c.finish(r, outcomeOK)
		case replyGone:
			c.finish(r, outcomeGone, "code", rep.code, "message", rep.message)
		default:
			c.finish(r, outcomeError, "code", rep.code, "message", rep.message)
		}
	}
}

// janitor expires requests whose reply did not come in time.
func (c *Client) janitor() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		now := time.Now()
		var expired []*request
		var next time.Time
		c.mu.Lock()
		for seq, r := range c.inflight {
			if r.deadline.IsZero() {
				continue // still being sent
			}
			if !now.Before(r.deadline) {
				delete(c.inflight, seq)
				expired = append(expired, r)
			} else if next.IsZero() || r.deadline.Before(next) {
				next = r.deadline
			}
		}
		c.mu.Unlock()
		for _, r := range expired {
			<-c.slots
			c.finish(r, outcomeTimeout, "timeout", c.opts.Timeout)
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			t.Reset(time.Until(next))
			tc = t.C
		}
		select {
		case <-tc:
		case <-c.kick:
			t.Stop()
		case <-c.done:
			t.Stop()
			return
		}
	}
}

// finish logs r's outcome on one line and retires it.
func (c *Client) finish(r *request, o outcome, attrs ...any) {
	base := []any{"call_id", r.t.CallID, "dialog", r.t.Dialog.String()}
	if !r.sent.IsZero() {
		base = append(base, "rtt", time.Since(r.sent).Round(time.Microsecond))
	}
	attrs = append(base, attrs...)
	switch o {
	case outcomeOK:
		c.log.Info("dialog ended", attrs...)
	case outcomeGone:
		c.log.Info("dialog already gone", attrs...)
	case outcomeError:
		c.log.Error("proxy refused to end dialog", attrs...)
	case outcomeTimeout:
		c.log.Error("no answer from proxy to end dialog", attrs...)
	case outcomeGaveUp:
		c.log.Error("gave up sending end dialog request", append(attrs, "age", time.Since(r.queued).Round(time.Millisecond))...)
	case outcomeAbandoned:
		c.log.Error("end dialog request abandoned at shutdown", attrs...)
	}
	c.pending.Add(-1)
	if c.opts.onResult != nil {
		c.opts.onResult(r.t, o)
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
