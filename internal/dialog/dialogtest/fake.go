// Package dialogtest is a fake proxy management socket (Kamailio jsonrpcs or
// OpenSIPS mi_datagram, both JSON-RPC 2.0 over a Unix datagram socket) for
// tests of the dialog package and of packages that end dialogs through it.
package dialogtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Flavor of the fake proxy.
type Flavor int

const (
	Kamailio Flavor = iota + 1
	OpenSIPS
)

// Answer is what the fake replies to an end-dialog request.
type Answer int

const (
	AnswerOK        Answer = iota // {} (Kamailio) or "OK" (OpenSIPS)
	AnswerNotFound                // error 404 "Dialog not found"
	AnswerError                   // error 500 "Internal error"
	AnswerNone                    // no reply at all
	AnswerPlainText               // "500 Internal error", no JSON, no id
	AnswerWrongID                 // an OK for an id that is not the request's
)

// Request is one datagram the fake received.
type Request struct {
	At     time.Time
	Raw    []byte
	Method string
	ID     json.RawMessage // as sent: a number (Kamailio) or a string (OpenSIPS)
	Params json.RawMessage
	// Decoded end-dialog target: Entry and HID for Kamailio's params,
	// DialogID for OpenSIPS' params.dialog_id.
	Entry, HID uint32
	DialogID   string
	// CallID is the Call-ID a lookup asks about (Lookups).
	CallID string
	// From is the sender's reply address (our client's socket).
	From string
	// Valid is false when the request would be refused by the real proxy
	// (bad JSON, unknown method, malformed params).
	Valid bool
}

// Key identifies the dialog the request ends: "entry:id" for Kamailio,
// the dialog_id string (a Call-ID or "<hex>.<hex>") for OpenSIPS.
func (r Request) Key() string {
	if r.DialogID != "" {
		return r.DialogID
	}
	return strconv.FormatUint(uint64(r.Entry), 10) + ":" + strconv.FormatUint(uint64(r.HID), 10)
}

// Fake is a fake proxy management socket. Its methods are safe for
// concurrent use.
type Fake struct {
	t      testing.TB
	flavor Flavor
	path   string
	conn   *net.UnixConn
	raw    syscall.RawConn

	mu        sync.Mutex
	reqs      []Request
	probes    int       // version requests: answered, kept out of reqs
	lookups   []Request // dialog lookups: answered, kept out of reqs
	dialogs   map[string]Dialog
	changed   chan struct{} // closed and replaced on every new request
	answer    func(Request) Answer
	hook      func(Request)
	paused    bool
	resume    chan struct{}
	parked    chan struct{} // closed once serve has stopped reading for a Pause
	readDelay time.Duration

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewKamailio starts a fake Kamailio jsonrpcs datagram socket at path;
// it is closed by t.Cleanup.
func NewKamailio(t testing.TB, path string) *Fake { return newFake(t, Kamailio, path) }

// NewOpenSIPS starts a fake OpenSIPS mi_datagram socket at path; it is
// closed by t.Cleanup.
func NewOpenSIPS(t testing.TB, path string) *Fake { return newFake(t, OpenSIPS, path) }

// SocketDir returns a short temporary directory for socket paths (t.TempDir
// paths can exceed the 107-byte limit of a Unix socket path).
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dlg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newFake(t testing.TB, flavor Flavor, path string) *Fake {
	t.Helper()
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("dialogtest: listen %s: %v", path, err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatalf("dialogtest: %v", err)
	}
	f := &Fake{
		t: t, flavor: flavor, path: path, conn: conn, raw: raw,
		changed: make(chan struct{}),
		resume:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.Close)
	return f
}

// Path is the socket path.
func (f *Fake) Path() string { return f.path }

// SetAnswer makes the fake answer every request with a.
func (f *Fake) SetAnswer(a Answer) { f.SetAnswerFunc(func(Request) Answer { return a }) }

// SetAnswerFunc chooses the answer per request.
func (f *Fake) SetAnswerFunc(fn func(Request) Answer) {
	f.mu.Lock()
	f.answer = fn
	f.mu.Unlock()
}

// SetHook calls fn for each request before answering it, on the fake's only
// goroutine, as Kamailio sends `stop` on the proxy socket and waits for its
// answer before replying. While fn runs, nothing else is read.
func (f *Fake) SetHook(fn func(Request)) {
	f.mu.Lock()
	f.hook = fn
	f.mu.Unlock()
}

// Pause stops reading (a datagram already being handled is finished), so
// the kernel queue fills and senders see EAGAIN. It returns once the fake
// has stopped reading (or after a second, if a hook holds it).
func (f *Fake) Pause() {
	f.mu.Lock()
	if !f.paused {
		f.paused = true
		f.resume = make(chan struct{})
		f.parked = make(chan struct{})
		// Wake a read in progress; serve clears the deadline under f.mu,
		// so this cannot be lost.
		f.conn.SetReadDeadline(time.Now())
	}
	parked := f.parked
	f.mu.Unlock()
	select {
	case <-parked:
	case <-f.done:
	case <-time.After(time.Second):
	}
}

// Resume reading after Pause.
func (f *Fake) Resume() {
	f.mu.Lock()
	if f.paused {
		f.paused = false
		close(f.resume)
	}
	f.mu.Unlock()
}

// SetReadDelay makes the fake sleep d after every datagram: a slow proxy.
func (f *Fake) SetReadDelay(d time.Duration) {
	f.mu.Lock()
	f.readDelay = d
	f.mu.Unlock()
}

// Requests returns a copy of every request received so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// Len is the number of requests received so far.
func (f *Fake) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// WaitFor waits until at least n requests arrived and returns them all; it
// fails the test after timeout. Call it from the test's goroutine.
func (f *Fake) WaitFor(n int, timeout time.Duration) []Request {
	f.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		got, ch := len(f.reqs), f.changed
		if got >= n {
			reqs := append([]Request(nil), f.reqs...)
			f.mu.Unlock()
			return reqs
		}
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			f.t.Fatalf("dialogtest: %d requests after %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// Close stops the fake and removes its socket. A hook that never returns
// blocks Close.
func (f *Fake) Close() {
	f.once.Do(func() {
		close(f.done)
		f.conn.Close()
		f.wg.Wait()
		os.Remove(f.path)
	})
}

func (f *Fake) serve() {
	defer f.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		f.mu.Lock()
		paused, resume, delay := f.paused, f.resume, f.readDelay
		if !paused {
			f.conn.SetReadDeadline(time.Time{})
		} else {
			select {
			case <-f.parked:
			default:
				close(f.parked)
			}
		}
		f.mu.Unlock()
		if paused {
			select {
			case <-resume:
			case <-f.done:
				return
			}
			continue
		}
		n, from, err := f.conn.ReadFromUnix(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // Pause
			}
			select {
			case <-f.done:
				return
			default:
			}
			continue
		}
		req := f.decode(append([]byte(nil), buf[:n]...))
		if from != nil {
			req.From = from.Name
		}
		if f.isProbe(req) {
			f.answerProbe(req, from)
			continue
		}
		if f.isLookup(req) {
			f.answerLookup(req, from)
			continue
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		close(f.changed)
		f.changed = make(chan struct{})
		hook, answer := f.hook, f.answer
		f.mu.Unlock()

		if hook != nil {
			hook(req)
		}
		a := AnswerOK
		if answer != nil {
			a = answer(req)
		}
		if from != nil && from.Name != "" {
			if out := f.reply(req, a); out != nil {
				f.send(out, from.Name)
			}
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-f.done:
				return
			}
		}
	}
}

// Probes is how many version requests (Kamailio core.version, OpenSIPS
// version: the daemon's start-time check) the fake answered. They are not
// in Requests, which lists dialog ends.
func (f *Fake) Probes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probes
}

func (f *Fake) isProbe(req Request) bool {
	return len(req.ID) > 0 && (f.flavor == Kamailio && req.Method == "core.version" ||
		f.flavor == OpenSIPS && req.Method == "version")
}

// answerProbe answers a version request as the real proxy does; a fake set
// to answer nothing or plain text does so here too (a mute or broken MI).
func (f *Fake) answerProbe(req Request, from *net.UnixAddr) {
	f.mu.Lock()
	f.probes++
	answer := f.answer
	f.mu.Unlock()
	a := AnswerOK
	if answer != nil {
		a = answer(req)
	}
	var out []byte
	switch {
	case a == AnswerNone:
	case a == AnswerPlainText:
		out = []byte("500 Internal error\n")
	case f.flavor == Kamailio:
		out = fmt.Appendf(nil, `{"jsonrpc":"2.0","result":"kamailio 5.6.3 (x86_64/linux) fake","id":%s}`, req.ID)
	default:
		out = fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"result":{"Server":"OpenSIPS (3.6.8 (x86_64/linux)) fake"}}`, req.ID)
	}
	if out != nil && from != nil && from.Name != "" {
		f.send(out, from.Name)
	}
}

func (f *Fake) decode(b []byte) Request {
	req := Request{At: time.Now(), Raw: b}
	var m struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return req
	}
	req.Method, req.ID, req.Params = m.Method, m.ID, m.Params
	switch f.flavor {
	case Kamailio:
		if m.Method != "dlg.end_dlg" {
			return req
		}
		// Two numbers, or numeric strings; "e:i" as one string is refused.
		var ps []json.RawMessage
		if json.Unmarshal(m.Params, &ps) != nil || len(ps) != 2 {
			return req
		}
		e, err1 := kamailioUint(ps[0])
		i, err2 := kamailioUint(ps[1])
		if err1 != nil || err2 != nil {
			return req
		}
		req.Entry, req.HID, req.Valid = e, i, true
	case OpenSIPS:
		if m.Method != "dlg_end_dlg" {
			return req
		}
		var p struct {
			DialogID json.RawMessage `json:"dialog_id"`
		}
		var s string
		if json.Unmarshal(m.Params, &p) != nil || json.Unmarshal(p.DialogID, &s) != nil || s == "" {
			return req
		}
		req.DialogID, req.Valid = s, true
	}
	return req
}

func kamailioUint(raw json.RawMessage) (uint32, error) {
	s := strings.Trim(string(raw), `"`)
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err
}

// reply builds the answer datagram, or nil for none.
func (f *Fake) reply(req Request, a Answer) []byte {
	if req.Method == "" && !json.Valid(req.Raw) {
		return []byte("400 Parse_error\n")
	}
	if len(req.ID) == 0 {
		return nil // JSON-RPC notification: no reply
	}
	if !req.Valid && a != AnswerNone && a != AnswerPlainText {
		if f.flavor == Kamailio && req.Method == "dlg.end_dlg" {
			return f.errorReply(req, 500, "Invalid parameters")
		}
		if req.Method == "dlg.end_dlg" || req.Method == "dlg_end_dlg" {
			return f.errorReply(req, -32602, "Invalid params")
		}
		return f.errorReply(req, -32601, "Method not found")
	}
	switch a {
	case AnswerOK:
		if f.flavor == Kamailio {
			return fmt.Appendf(nil, `{"jsonrpc":"2.0","result":{},"id":%s}`, req.ID)
		}
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"result":"OK"}`, req.ID)
	case AnswerNotFound:
		return f.errorReply(req, 404, "Dialog not found")
	case AnswerError:
		return f.errorReply(req, 500, "Internal error")
	case AnswerPlainText:
		return []byte("500 Internal error\n")
	case AnswerWrongID:
		wrong := req
		wrong.ID = json.RawMessage(`"4711` + strings.Trim(string(req.ID), `"`) + `"`)
		return f.reply(wrong, AnswerOK)
	}
	return nil
}

// ReplyTo sends a for an earlier request, whatever the fake answered then:
// a late answer.
func (f *Fake) ReplyTo(req Request, a Answer) error {
	if req.From == "" {
		return errors.New("dialogtest: the request has no reply address")
	}
	out := f.reply(req, a)
	if out == nil {
		return errors.New("dialogtest: that answer sends nothing")
	}
	f.send(out, req.From)
	return nil
}

func (f *Fake) errorReply(req Request, code int, msg string) []byte {
	if f.flavor == Kamailio {
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","error":{"code":%d,"message":%q},"id":%s}`, code, msg, req.ID)
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%q}}`, req.ID, code, msg)
}

// send retries while the client's receive queue is full, as a proxy with a
// blocking socket would wait.
func (f *Fake) send(b []byte, to string) {
	addr := &syscall.SockaddrUnix{Name: to}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var serr error
		err := f.raw.Write(func(fd uintptr) bool {
			serr = syscall.Sendto(int(fd), b, syscall.MSG_DONTWAIT, addr)
			return true
		})
		if err == nil {
			err = serr
		}
		if err == nil {
			return
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.ENOBUFS) || time.Now().After(deadline) {
			f.t.Logf("dialogtest: reply to %s dropped: %v (%s)", to, err, bytes.TrimSpace(b))
			return
		}
		select {
		case <-time.After(time.Millisecond):
		case <-f.done:
			return
		}
	}
}
