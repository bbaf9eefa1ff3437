package dialog

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

var _ Ender = (*Client)(nil)

// Defaults for Options.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultMaxRetryWait = time.Minute
)

// Retry pacing for sends the kernel refuses (the proxy's queue is full, or
// its socket is missing while it restarts).
const (
	minBackoff = time.Millisecond
	maxBackoff = 250 * time.Millisecond
	loudAfter  = 20 // consecutive refusals before the first loud log line
	loudEvery  = 10 * time.Second
	// lookupsRetryAfter: how long ends go unchecked after a lookup got no
	// answer (checkDialog).
	lookupsRetryAfter = 5 * time.Second
	readBufferSize    = 1 << 16
)

// Outcome is the final word on an end request.
type Outcome int

const (
	// Confirmed: the proxy answered OK; it sends BYE (or CANCEL) to both ends.
	Confirmed Outcome = iota + 1
	// Gone: the proxy does not know the dialog (it ended already).
	Gone
	// Unendable: the request cannot be made (Kamailio without a dialog id).
	Unendable
)

func (o Outcome) String() string {
	switch o {
	case Confirmed:
		return "confirmed"
	case Gone:
		return "gone"
	case Unendable:
		return "unendable"
	}
	return "Outcome(?)"
}

// Options configure a Client.
type Options struct {
	Flavor      Flavor
	ProxySocket string // the proxy's management socket, e.g. /run/kamailio/kamailio_rpc.sock
	LocalSocket string // our reply socket, e.g. <runtime-dir>/dialog.sock
	// Timeout is how long the first attempt waits for its answer; each
	// retry waits twice as long as the one before, up to MaxRetryWait.
	Timeout      time.Duration
	MaxRetryWait time.Duration
	// OpenSIPSKey names the dialog for OpenSIPS: by Call-ID (default,
	// every 3.x) or by one of the numeric forms.
	OpenSIPSKey OpenSIPSKey
	// OnDone is called once per request, with its final outcome, from a
	// client goroutine and under none of its locks. A request still
	// pending at Close gets no call: its record stays for the next start.
	OnDone func(Target, Outcome)

	onResult func(Target, outcome) // test hook: every answer and timeout
	// idsFromOne: request ids count from 1, as in the golden transcripts
	// (tests); otherwise they start anywhere (New).
	idsFromOne bool
	// maxRefusedWait caps the wait between refused sends (test hook;
	// zero: up to 4*maxBackoff).
	maxRefusedWait time.Duration
}

// outcome is what one attempt came to, for logs and tests.
type outcome int

const (
	outcomeOK outcome = iota + 1
	outcomeGone
	outcomeError
	outcomeTimeout
	outcomeUnendable
	outcomeRetryByCallID
)

type request struct {
	t        Target
	queued   time.Time
	sent     time.Time
	attempts int
	seqs     []uint64 // ids of every attempt: a late answer to any of them counts
	byCallID bool     // a numeric id got 404: name the dialog by Call-ID from now on
	// firstByCallID is the id of the first attempt by Call-ID (0: none
	// sent yet): a 404 to an earlier, numeric attempt says nothing of
	// the dialog.
	firstByCallID uint64
	deadline      time.Time
	hidx          int // index in the deadline heap, -1 when not in it
	done          bool
	// verify: Kamailio may have restarted since the dialog's id was
	// given (the request is restored, went unanswered, or found the
	// proxy's socket gone), and a new Kamailio hands out ids again from a
	// random point of a small range: the id may now name another call.
	// The Call-ID's dialog is looked up before the next attempt.
	verify bool
}

// Client sends end-dialog requests over JSON-RPC 2.0 on Unix datagrams.
// Requests are sent as fast as the proxy's socket takes them, without
// waiting for answers: a reader matches answers by id, and a janitor
// re-sends those unanswered at their deadline, with growing waits, until
// the proxy says OK or that the dialog is gone. Nothing is given up.
type Client struct {
	opts  Options
	log   *slog.Logger
	conn  *net.UnixConn
	raw   syscall.RawConn
	proxy syscall.SockaddrUnix

	mu       sync.Mutex
	ready    []*request // to send, in order
	bySeq    map[uint64]*request
	lookups  map[uint64]chan []byte // Lookups awaiting an answer, by id
	waiting  deadlines              // sent, awaiting an answer
	seq      uint64
	pending  int
	closed   bool
	lastWarn time.Time // of the passthrough warning
	// lookupsUnanswered: when a lookup before an end last got no usable
	// answer (zero: the last one got one).
	lookupsUnanswered time.Time

	wake    chan struct{}
	kick    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	refused atomic.Int64 // sends the kernel refused; tests check back-pressure happened
	sends   atomic.Int64 // datagrams sent, retries included
	counts  counters     // for metrics: see Counts
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
	if opts.MaxRetryWait <= 0 {
		opts.MaxRetryWait = DefaultMaxRetryWait
	}
	opts.MaxRetryWait = max(opts.MaxRetryWait, opts.Timeout)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The proxy runs as its own user and must be able to send replies here.
	conn, err := unixsock.ListenPacket(opts.LocalSocket, 0o666, -1)
	if err != nil {
		return nil, fmt.Errorf("dialog: reply socket: %w", err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		os.Remove(opts.LocalSocket)
		return nil, fmt.Errorf("dialog: %w", err)
	}
	c := &Client{
		opts:  opts,
		log:   log.With("proxy", opts.Flavor.String()),
		conn:  conn,
		raw:   raw,
		proxy: syscall.SockaddrUnix{Name: opts.ProxySocket},
		bySeq: make(map[uint64]*request),
		wake:  make(chan struct{}, 1),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	if !opts.idsFromOne {
		// Ids start anywhere: the reply socket's path is the same in
		// every run, and a late reply to the last run's request must
		// not match this run's request of the same id. Within int32,
		// which every JSON-RPC server echoes as it came.
		c.seq = rand.Uint64N(1 << 30)
	}
	c.wg.Add(3)
	go c.sendLoop()
	go c.readLoop()
	go c.janitor()
	return c, nil
}

// CanEndEarly says whether the proxy can end a dialog that has no id yet
// (a call still ringing): OpenSIPS can, by Call-ID; Kamailio cannot.
func (c *Client) CanEndEarly() bool { return c.opts.Flavor == OpenSIPS }

// End queues a request to end t's dialog and returns at once; the outcome is
// logged with the Call-ID and reported to OnDone.
func (c *Client) End(t Target) {
	if t.NoID && c.opts.Flavor == Kamailio {
		c.log.Error("cannot end this call: Kamailio ends dialogs only by the id it sent at start, and there is none; end it on the proxy",
			"callid", t.CallID)
		c.report(t, outcomeUnendable)
		c.done1(t, Unendable)
		return
	}
	r := &request{t: t, queued: time.Now(), hidx: -1, verify: t.Restored}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.log.Warn("dialog client stopping: end request left in the state log for the next start", "callid", t.CallID)
		return
	}
	c.ready = append(c.ready, r)
	c.pending++
	c.mu.Unlock()
	c.wakeSender()
}

func (c *Client) wakeSender() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Pending reports requests not yet answered for good.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}

// Close stops the goroutines and removes the local socket. Requests still
// pending are not answered: the caller's records of them stay, for the
// next start to send again.
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
		left := c.pending
		c.mu.Unlock()
		if left > 0 {
			c.log.Warn("dialog end requests not confirmed at shutdown: they stay in the state log and are sent again at the next start",
				"pending", left)
		}
		if rmErr := os.Remove(c.opts.LocalSocket); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) && err == nil {
			err = rmErr
		}
	})
	return err
}

// sendLoop sends queued requests in order, as fast as the proxy's socket
// takes them; it is the only sender, so the kernel's queue limit paces it.
func (c *Client) sendLoop() {
	defer c.wg.Done()
	var failingSince time.Time // start of the current run of refused sends
	for {
		r := c.pop()
		if r == nil {
			return
		}
		if !c.send(r, &failingSince) {
			return
		}
	}
}

func (c *Client) pop() *request {
	for {
		c.mu.Lock()
		for len(c.ready) > 0 {
			r := c.ready[0]
			c.ready[0] = nil
			c.ready = c.ready[1:]
			if len(c.ready) == 0 {
				c.ready = nil // let the backing array go after a burst
			}
			if r.done {
				continue
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

// send delivers one attempt of r, retrying refused sends until they go
// through; false means the client is closing.
func (c *Client) send(r *request, failingSince *time.Time) bool {
	c.mu.Lock()
	// A proxy that did not answer the last lookup is not asked for every
	// request: each would wait its timeout and pace all the others.
	check := r.verify && c.opts.Flavor == Kamailio && !r.done &&
		(c.lookupsUnanswered.IsZero() || time.Since(c.lookupsUnanswered) >= lookupsRetryAfter)
	if r.done {
		c.mu.Unlock()
		return true
	}
	c.seq++
	seq := c.seq
	key := c.opts.OpenSIPSKey
	if r.byCallID {
		key = ByCallID
		if r.firstByCallID == 0 {
			r.firstByCallID = seq
		}
	}
	// Registered before sending: the answer may beat us back from sendto.
	c.bySeq[seq] = r
	r.seqs = append(r.seqs, seq)
	r.attempts++
	attempt := r.attempts
	c.mu.Unlock()

	b, err := encodeRequest(c.opts.Flavor, key, seq, r.t)
	if err != nil {
		c.log.Error("cannot encode end dialog request; end this call on the proxy", "callid", r.t.CallID, "err", err.Error())
		c.finish(r, outcomeUnendable, Unendable)
		return true
	}
	backoff := minBackoff
	var lastLoud time.Time
	for tries := 1; ; tries++ {
		if check {
			var v verdict
			v, err = c.checkDialog(r)
			switch v {
			case verdictSettled:
				return true
			case verdictClosing:
				return false // unchecked, never: it stays in the state log
			}
			check = v == verdictSocketGone
		}
		if !check {
			err = c.sendto(b)
			if err == nil {
				*failingSince = time.Time{}
				break
			}
			// A socket gone is a proxy restarting, and a new Kamailio's
			// ids may name other calls: ask before the next try.
			check = c.opts.Flavor == Kamailio && socketGone(err)
			if check {
				c.mu.Lock()
				r.verify = true
				c.mu.Unlock()
			}
		}
		c.refused.Add(1)
		now := time.Now()
		if failingSince.IsZero() {
			*failingSince = now
		}
		if tries >= loudAfter && now.Sub(lastLoud) >= loudEvery {
			lastLoud = now
			c.log.Error("proxy refuses end requests, still retrying (is it running? is socket_path its management socket?)",
				"callid", r.t.CallID, "dialog", r.t.Dialog.String(), "err", err.Error(),
				"failing_for", now.Sub(*failingSince).Round(time.Millisecond), "socket", c.opts.ProxySocket)
		}
		if !isRetryable(err) {
			backoff = maxBackoff * 4 // EACCES and the like: an operator must act; keep trying slowly
		}
		if c.opts.maxRefusedWait > 0 {
			backoff = min(backoff, c.opts.maxRefusedWait)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return false
		}
		if isRetryable(err) && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.ENOBUFS) {
			// The socket is missing or refuses: the proxy is restarting.
			backoff = min(2*backoff, 4*maxBackoff)
		} else {
			backoff = min(2*backoff, maxBackoff)
		}
	}
	c.sends.Add(1)
	c.awaitAnswer(r, attempt)
	return true
}

// socketGone: the proxy's management socket is missing or refuses, as
// while the proxy restarts.
func socketGone(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// awaitAnswer puts r, just sent, among the requests waiting for an
// answer, to be sent again at its deadline, which grows with the attempts.
func (c *Client) awaitAnswer(r *request, attempt int) {
	now := time.Now()
	wait := c.opts.Timeout << min(attempt-1, 20)
	if wait > c.opts.MaxRetryWait || wait <= 0 {
		wait = c.opts.MaxRetryWait
	}
	c.mu.Lock()
	first := false
	if !r.done {
		r.sent = now
		r.deadline = now.Add(wait)
		if r.hidx >= 0 { // re-queued while this attempt was on its way
			heap.Fix(&c.waiting, r.hidx)
		} else {
			heap.Push(&c.waiting, r)
		}
		first = r.hidx == 0
	}
	c.mu.Unlock()
	if first {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// verdict is what a lookup before an end decided (checkDialog).
type verdict int

const (
	verdictSend       verdict = iota // the same dialog, or the proxy gave no usable answer: send
	verdictSettled                   // gone, or another call's now: settled, not sent
	verdictSocketGone                // the proxy's socket is gone: ask again before the next try
	verdictClosing                   // the client stops: not sent
)

// checkDialog asks Kamailio about r's Call-ID before an attempt that may
// reach a restarted Kamailio (r.verify): the end is sent only if the
// Call-ID's dialog still has r's id. No dialog of that Call-ID, or one
// with another id (ours ended; ending that one would cut another call),
// settles r as gone. A proxy that is there but gives no usable answer
// (mute, or without the method) is sent the end all the same, as before
// there were lookups, and is not asked again for lookupsRetryAfter.
func (c *Client) checkDialog(r *request) (verdict, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	f, err := c.Lookup(ctx, r.t.CallID)
	cancel()
	select {
	case <-c.done:
		return verdictClosing, nil
	default:
	}
	if err != nil && socketGone(err) {
		return verdictSocketGone, err
	}
	c.mu.Lock()
	c.lookupsUnanswered = time.Time{}
	if err != nil {
		c.lookupsUnanswered = time.Now()
	}
	c.mu.Unlock()
	switch {
	case err != nil:
		c.log.Warn("no usable answer to a dialog lookup: ending the dialog without checking that its id still names the same call",
			"callid", r.t.CallID, "dialog", r.t.Dialog.String(), "err", err.Error())
		return verdictSend, nil
	case !f.Exists:
		c.finish(r, outcomeGone, Gone, "found", "no dialog of this Call-ID on the proxy")
		return verdictSettled, nil
	case !f.HasDialog || f.Dialog != r.t.Dialog:
		c.finish(r, outcomeGone, Gone, "found", "the Call-ID's dialog is "+f.Dialog.String()+
			", another one (the proxy restarted): not ended, it may be another call")
		return verdictSettled, nil
	}
	c.mu.Lock()
	r.verify = false
	c.mu.Unlock()
	return verdictSend, nil
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
			c.log.Error("reading proxy replies", "err", err.Error())
			select {
			case <-time.After(100 * time.Millisecond):
			case <-c.done:
				return
			}
			continue
		}
		rep, err := parseReply(buf[:n])
		if err != nil {
			// No id to match: the request it belongs to is sent again at its deadline.
			c.log.Error("unusable reply from proxy", "err", err.Error(), "reply", truncate(buf[:n], 200))
			continue
		}
		if c.answerLookup(rep.seq, buf[:n]) {
			continue
		}
		c.answer(rep)
	}
}

func (c *Client) answer(rep reply) {
	c.mu.Lock()
	r := c.bySeq[rep.seq]
	if r == nil || r.done {
		c.mu.Unlock()
		c.log.Warn("reply to no pending request (late or foreign)", "id", rep.seq)
		return
	}
	if rep.kind == replyGone && r.byCallID && (r.firstByCallID == 0 || rep.seq < r.firstByCallID) {
		// The numeric form's 404, late: the request by Call-ID decides.
		c.mu.Unlock()
		c.log.Debug("late 404 to a numeric attempt; waiting for the answer by Call-ID", "callid", r.t.CallID, "id", rep.seq)
		return
	}
	retryByCallID := rep.kind == replyGone && c.opts.Flavor == OpenSIPS &&
		c.opts.OpenSIPSKey != ByCallID && !r.byCallID && !r.t.NoID
	if retryByCallID {
		// 404 for a numeric id may only mean this OpenSIPS does not read
		// that form: ask once more by Call-ID, which every 3.x reads.
		r.byCallID = true
		if r.hidx >= 0 {
			heap.Remove(&c.waiting, r.hidx)
		}
		c.ready = append(c.ready, r)
		warn := time.Since(c.lastWarn) >= time.Minute
		if warn {
			c.lastWarn = time.Now()
		}
		c.mu.Unlock()
		attrs := []any{"callid", r.t.CallID, "dialog", r.t.Dialog.String()}
		if warn {
			c.log.Warn(c.keyAdvice(), attrs...)
		} else {
			c.log.Info("dialog not found by its numeric id; retrying by Call-ID", attrs...)
		}
		c.report(r.t, outcomeRetryByCallID)
		c.wakeSender()
		return
	}
	c.mu.Unlock()
	switch rep.kind {
	case replyOK:
		c.finish(r, outcomeOK, Confirmed)
	case replyGone:
		c.finish(r, outcomeGone, Gone, "code", rep.code, "message", rep.message)
	default:
		// Not an answer on the dialog's fate: ask again at the deadline.
		c.log.Error("proxy refused to end dialog; will ask again", "callid", r.t.CallID, "dialog", r.t.Dialog.String(),
			"code", rep.code, "message", rep.message, "attempts", r.attempts)
		c.report(r.t, outcomeError)
	}
}

// keyAdvice explains a 404 to a dialog named by a numeric id.
func (c *Client) keyAdvice() string {
	if c.opts.OpenSIPSKey == ByDecimalID {
		return "OpenSIPS does not know the dialog by the id it sent at start: dialog_id = passthrough works only on OpenSIPS 3.0; " +
			"retrying by Call-ID; set [OpenSIPS] dialog_id = callid (every 3.x) or numeric (3.1 and later)"
	}
	return "OpenSIPS does not know the dialog by its numeric id (dialog_id = numeric needs OpenSIPS 3.1 or later); " +
		"retrying by Call-ID; set [OpenSIPS] dialog_id = callid (every 3.x)"
}

// janitor sends again the requests whose answer did not come in time.
func (c *Client) janitor() {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		now := time.Now()
		var first *request
		var firstAttempts int
		var firstSent time.Time
		expired := 0
		c.mu.Lock()
		for len(c.waiting) > 0 && !now.Before(c.waiting[0].deadline) {
			r := heap.Pop(&c.waiting).(*request)
			if r.done {
				continue
			}
			if first == nil {
				// Read under the lock: the sender updates them.
				first, firstAttempts, firstSent = r, r.attempts, r.sent
			}
			expired++
			r.verify = true // unanswered: the proxy may be restarting
			c.ready = append(c.ready, r)
		}
		var next time.Time
		if len(c.waiting) > 0 {
			next = c.waiting[0].deadline
		}
		c.mu.Unlock()
		if expired > 0 {
			c.log.Error("no answer from proxy to end dialog requests; sending them again",
				"requests", expired, "callid", first.t.CallID, "dialog", first.t.Dialog.String(),
				"attempts", firstAttempts, "waited", now.Sub(firstSent).Round(time.Millisecond), "socket", c.opts.ProxySocket)
			c.counts.outcome[outcomeTimeout].Add(uint64(expired - 1))
			c.report(first.t, outcomeTimeout) // counts the first
			c.wakeSender()
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

// finish retires r for good, logs it on one line and tells OnDone.
func (c *Client) finish(r *request, o outcome, final Outcome, attrs ...any) {
	c.mu.Lock()
	if r.done {
		c.mu.Unlock()
		return
	}
	r.done = true
	for _, seq := range r.seqs {
		delete(c.bySeq, seq)
	}
	if r.hidx >= 0 {
		heap.Remove(&c.waiting, r.hidx)
	}
	c.pending--
	attempts, sent := r.attempts, r.sent // the sender may be in send(r) still
	c.mu.Unlock()

	base := []any{"callid", r.t.CallID, "dialog", r.t.Dialog.String(), "attempts", attempts}
	if !sent.IsZero() {
		base = append(base, "rtt", time.Since(sent).Round(time.Microsecond))
	}
	if attempts > 1 {
		base = append(base, "age", time.Since(r.queued).Round(time.Millisecond))
	}
	attrs = append(base, attrs...)
	switch o {
	case outcomeOK:
		c.log.Info("dialog ended", attrs...)
	case outcomeGone:
		c.log.Info("dialog already gone", attrs...)
	}
	c.report(r.t, o)
	c.done1(r.t, final)
}

func (c *Client) report(t Target, o outcome) {
	c.counts.outcome[o].Add(1)
	if c.opts.onResult != nil {
		c.opts.onResult(t, o)
	}
}

func (c *Client) done1(t Target, o Outcome) {
	if c.opts.OnDone != nil {
		c.opts.OnDone(t, o)
	}
}

// deadlines is a min-heap of requests by deadline.
type deadlines []*request

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *deadlines) Push(x any) {
	r := x.(*request)
	r.hidx = len(*h)
	*h = append(*h, r)
}
func (h *deadlines) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	r.hidx = -1
	*h = old[:len(old)-1]
	return r
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
