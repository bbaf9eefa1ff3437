package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// Replies to the module, exactly as it compares them.
const (
	NoLimit          = "No limit"
	Limited          = "Limited"
	NoCredit         = "No credit"
	Locked           = "Locked"
	DuplicatedCallID = "Duplicated callid"
	CallLimitReached = "Call limit reached"
	Error            = "Error"
	Ok               = "Ok"
	NotFound         = "Not found"
)

// Handler answers one request. received is when the request had been read
// whole; the handler must answer before received plus the proxy's timeout.
// The reply is written followed by "\r\n": single-line replies are the bare
// line, multi-line replies (debug) carry their own "\r\n" after each line.
type Handler interface {
	Handle(req *Request, received time.Time) string
}

// Server serves the proxy socket: one goroutine per connection, each
// connection strictly in order, so one connection's slow request never
// delays another's reply.
type Server struct {
	ln      net.Listener
	handler Handler
	log     *slog.Logger
	debug   bool

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context // done once Close is called
	stop   context.CancelFunc

	requests atomic.Uint64
	accepts  unixsock.AcceptHealth
}

// AcceptFailing returns since when accepting connections has failed (out
// of file descriptors, say), and why; zero and nil while it works.
func (s *Server) AcceptFailing() (since time.Time, err error) { return s.accepts.Failing() }

// NewServer serves ln with h. With debug set, every request and reply is
// logged (the wire traffic).
func NewServer(ln net.Listener, h Handler, log *slog.Logger, debug bool) *Server {
	ctx, stop := context.WithCancel(context.Background())
	return &Server{ln: ln, handler: h, log: log, debug: debug, conns: make(map[net.Conn]struct{}), ctx: ctx, stop: stop}
}

// Requests is how many requests have been answered.
func (s *Server) Requests() uint64 { return s.requests.Load() }

// Serve accepts connections until Close; it returns nil after Close.
func (s *Server) Serve() error {
	unixsock.ServeReporting(s.ctx, s.ln, s.log, "proxy socket", &s.accepts, func(c net.Conn) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	})
	return nil
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	s.stop()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	w := bufio.NewWriterSize(c, 4096)
	// Replies are flushed before the reader waits for more bytes, not
	// when its buffer is empty: a stray empty line or the first bytes of
	// the next request must not hold back an answer the client awaits.
	r := bufio.NewReaderSize(flushBeforeRead{c, w}, MaxRequestSize+512)
	client := clientOf(c)
	var req Request
	var raw []byte // the request as sent, kept only for --debug
	for {
		var err error
		if s.debug {
			raw = raw[:0]
			err = ReadRequestRaw(r, &req, &raw)
		} else {
			err = ReadRequest(r, &req)
		}
		received := time.Now()
		req.Client = client
		var reply string
		var malformed *MalformedError
		switch {
		case err == nil:
			reply = s.handler.Handle(&req, received)
		case errors.As(err, &malformed):
			s.log.Warn("proxy socket: "+malformed.Error(), "command", req.Command, "callid", req.CallID)
			reply = Error
		case errors.Is(err, ErrTooLarge):
			s.log.Warn("proxy socket: request over 64 KiB, closing the connection")
			w.WriteString(Error + "\r\n")
			w.Flush()
			return
		default:
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("proxy socket: read failed", "err", err)
			}
			return
		}
		s.requests.Add(1)
		if s.debug {
			s.log.Debug("proxy request", "callid", req.CallID, "request", string(raw), "reply", reply,
				"took_ms", float64(time.Since(received).Microseconds())/1000)
		}
		if len(reply) > w.Available() && len(reply) > 4096 {
			// A listing: one write, not one per buffer's worth.
			if w.Flush() != nil {
				return
			}
			if _, err := c.Write(unsafe.Slice(unsafe.StringData(reply), len(reply))); err != nil {
				return
			}
		} else {
			w.WriteString(reply)
		}
		w.WriteString("\r\n")
		// Flushed by the next read that must wait (flushBeforeRead):
		// pipelined requests already here get their replies in one write.
	}
}

// flushBeforeRead flushes the replies written so far before it reads the
// connection, which may block until the client sends more.
type flushBeforeRead struct {
	c net.Conn
	w *bufio.Writer
}

func (f flushBeforeRead) Read(p []byte) (int, error) {
	if f.w.Buffered() > 0 {
		if err := f.w.Flush(); err != nil {
			return 0, err
		}
	}
	return f.c.Read(p)
}
