package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

const (
	// maxConns bounds concurrent operator connections: each costs a
	// goroutine in the daemon that sits on the call path.
	maxConns = 32
	// idleTimeout drops connections that send nothing, so a stuck client
	// cannot pin a goroutine forever.
	idleTimeout  = 2 * time.Minute
	writeTimeout = 10 * time.Second
)

// Server serves the control socket. Create it with NewServer, run Serve in a
// goroutine, stop it with Close.
type Server struct {
	path  string
	group string // "" when none is in force
	gid   int    // -1 when none is in force
	// readGroup's members may use the read-only commands (readOnly).
	readGroup string
	readGid   int // -1 when none
	backend   Backend
	log       *slog.Logger
	ln        *net.UnixListener
	ctx       context.Context // done once Close is called
	stop      context.CancelFunc

	// authorize decides whether a peer may talk to the daemon; a field so
	// tests can exercise refusal without another uid.
	authorize func(uid, gid uint32) error
	// streamTimeout bounds each write of a streamed reply (writeTimeout;
	// a field so tests need not wait for it).
	streamTimeout time.Duration

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewServer listens on the Unix stream socket path. With a group that exists
// the socket gets mode 0660 and that group, and its members may connect;
// otherwise mode 0600 (a missing group is logged, not fatal: only root and
// the daemon's user can then connect). A stale socket left by a dead daemon
// is replaced; one a live process still answers on is an error.
func NewServer(path string, group string, backend Backend, log *slog.Logger) (*Server, error) {
	if backend == nil {
		return nil, errors.New("control: nil backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{path: path, gid: -1, readGid: -1, backend: backend, log: log, conns: make(map[net.Conn]struct{}),
		streamTimeout: writeTimeout}
	s.authorize = s.allowed
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			log.Warn("control socket group not found; socket is for root and the daemon's user only",
				"group", group, "socket", path, "err", err)
		} else if gid, err := strconv.Atoi(g.Gid); err == nil {
			s.group, s.gid = group, gid
		}
	}
	mode := os.FileMode(0o600)
	if s.gid >= 0 {
		mode = 0o660
	}
	ln, err := unixsock.Listen(path, mode, s.gid)
	if err != nil {
		if errors.Is(err, unixsock.ErrInUse) {
			return nil, fmt.Errorf("control: %w (is another callcontrold running?)", err)
		}
		return nil, fmt.Errorf("control: %w", err)
	}
	s.ln = ln
	s.ctx, s.stop = context.WithCancel(context.Background())
	return s, nil
}

// readOnly are the commands a member of the read-only group may use: they
// show and change nothing.
var readOnly = map[string]bool{CmdSessions: true, CmdSession: true, CmdStats: true, CmdDebits: true}

// AllowReadOnly lets members of group use the read-only commands (sessions,
// session, stats, debits). Call it before Serve. The socket becomes mode
// 0666 so they can connect; who may do what is decided by the peer's
// credentials, which the kernel vouches for.
func (s *Server) AllowReadOnly(group string) error {
	if group == "" {
		return nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		s.log.Warn("control socket read-only group not found; nobody gets read-only access", "group", group, "err", err)
		return nil
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.readGroup, s.readGid = group, gid
	s.mu.Unlock()
	return os.Chmod(s.path, 0o666)
}

// inGroup reports whether the peer (uid, primary gid) belongs to gid.
func inGroup(uid, gid uint32, want int) bool {
	if want < 0 {
		return false
	}
	if int64(gid) == int64(want) {
		return true
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	if err != nil {
		return false
	}
	for _, g := range gids {
		if g == strconv.Itoa(want) {
			return true
		}
	}
	return false
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until Close; it returns nil after Close.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	unixsock.Serve(s.ctx, s.ln, s.log, "control socket", func(nc net.Conn) {
		c := nc.(*net.UnixConn)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		if len(s.conns) >= maxConns {
			s.mu.Unlock()
			s.log.Warn("control socket: too many connections, refusing one", "max", maxConns)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			writeResponse(c, Response{Code: CodeBusy, Error: "too many control connections"})
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		authorize := s.authorize
		s.mu.Unlock()
		go s.handle(c, authorize)
	})
	return nil
}

// Close stops accepting, closes open connections and waits for their
// goroutines. The socket file is removed.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
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

// allowed is the control socket's Access rule.
func (s *Server) allowed(uid, gid uint32) error {
	return Access{Group: s.group, GID: s.gid}.Allowed(uid, gid)
}

func (s *Server) handle(c *net.UnixConn, authorize func(uid, gid uint32) error) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()

	uid, gid, pid := int64(-1), int64(-1), int64(-1)
	var deny error
	readOnlyPeer := false
	if cred, err := peerCred(c); err != nil {
		deny = fmt.Errorf("permission denied: cannot read peer credentials: %v", err)
	} else {
		uid, gid, pid = int64(cred.UID), int64(cred.GID), int64(cred.PID)
		deny = authorize(cred.UID, cred.GID)
		s.mu.Lock()
		readGid := s.readGid
		s.mu.Unlock()
		if deny != nil && inGroup(cred.UID, cred.GID, readGid) {
			deny, readOnlyPeer = nil, true
		}
	}

	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	if deny != nil {
		// Say why at once and let go: with control_read_group the socket
		// is 0666, and a refused peer waiting idle for its request line
		// would hold one of maxConns for idleTimeout, locking operators
		// out. The short read takes the request it may be sending, so the
		// close does not reset the connection before it reads the reason.
		s.log.Warn("control socket: refused connection", "uid", uid, "gid", gid, "pid", pid, "reason", deny.Error())
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if writeResponse(c, Response{Code: CodeDenied, Error: deny.Error()}) == nil {
			c.SetReadDeadline(time.Now().Add(time.Second))
			sc.Scan()
		}
		return
	}
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		if !sc.Scan() {
			if errors.Is(sc.Err(), bufio.ErrTooLong) {
				c.SetWriteDeadline(time.Now().Add(writeTimeout))
				writeResponse(c, Response{Code: CodeBadRequest, Error: "request line too long"})
			}
			return
		}
		if req, ok := sessionsRequest(sc.Bytes()); ok {
			if err := s.writeSessions(c, req, uid); err != nil {
				return
			}
			continue
		}
		resp := s.serveLine(sc.Bytes(), uid, readOnlyPeer)
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := writeResponse(c, resp); err != nil {
			return
		}
	}
}

// serveLine answers one request line.
func (s *Server) serveLine(line []byte, uid int64, readOnlyPeer bool) (resp Response) {
	req, err := decodeRequest(line)
	if err != nil {
		return Response{Code: CodeBadRequest, Error: err.Error()}
	}
	if readOnlyPeer && !readOnly[req.Cmd] {
		s.mu.Lock()
		group := s.readGroup
		s.mu.Unlock()
		s.log.Warn("control socket: read-only operator refused", "uid", uid, "cmd", req.Cmd)
		return Response{Code: CodeDenied, Error: fmt.Sprintf("permission denied: uid %d is in the read-only group %s (control_read_group), which may not %s",
			uid, group, req.Cmd)}
	}
	// The backend is the daemon's session manager: a bug there hit from an
	// operator command must not take down the call path.
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control command panicked", "cmd", req.Cmd, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp = Response{Code: CodeFailed, Error: "internal error"}
		}
	}()
	return s.dispatch(req, uid)
}

func decodeRequest(line []byte) (Request, error) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return req, fmt.Errorf("malformed request: %v", err)
	}
	if req.V != 0 && req.V != Version {
		return req, fmt.Errorf("unsupported protocol version %d (this daemon speaks %d)", req.V, Version)
	}
	return req, nil
}

func (s *Server) dispatch(req Request, uid int64) Response {
	switch req.Cmd {
	case CmdSession:
		if req.CallID == "" {
			return Response{Code: CodeBadRequest, Error: "session: call_id is required"}
		}
		info, ok := s.backend.Session(req.CallID)
		if !ok {
			return notFound(req.CallID)
		}
		return Response{OK: true, Session: &info}
	case CmdTerminate:
		if req.CallID == "" {
			return Response{Code: CodeBadRequest, Error: "terminate: call_id is required"}
		}
		ti, ok := s.backend.Terminate(req.CallID)
		if !ok {
			s.log.Info("control: terminate of unknown call", "uid", uid, "callid", req.CallID)
			return notFound(req.CallID)
		}
		s.log.Info("control: terminate by operator", "uid", uid, "callid", req.CallID, "outcome", ti.Outcome)
		if ti.Outcome == TerminateFailed {
			return Response{Code: CodeFailed, Error: ti.Detail, Terminate: &ti}
		}
		return Response{OK: true, Terminate: &ti}
	case CmdStats:
		st := s.backend.Stats()
		return Response{OK: true, Stats: &st}
	case CmdReload:
		restart, err := s.backend.Reload()
		if err != nil {
			s.log.Error("control: reload refused", "uid", uid, "err", err)
			return Response{Code: CodeFailed, Error: "reload refused, the configuration in force stays: " + err.Error()}
		}
		s.log.Info("control: configuration reloaded", "uid", uid, "restart_needed", strings.Join(restart, ", "))
		return Response{OK: true, RestartNeeded: restart}
	case CmdDebits:
		list := s.backend.Debits()
		if list == nil {
			list = []DebitInfo{}
		}
		return Response{OK: true, Debits: list}
	case CmdDebitsRetry:
		r := s.backend.DebitsRetry()
		s.log.Info("control: operator asked to retry owed debits now", "uid", uid, "owed", r.Affected)
		return Response{OK: true, DebitsResult: &r}
	case CmdDebitsReroute:
		if req.Engine == "" {
			return Response{Code: CodeBadRequest, Error: "debits reroute: engine is required"}
		}
		r, err := s.backend.DebitsReroute(req.Engine)
		if err != nil {
			s.log.Error("control: reroute of owed debits failed", "uid", uid, "engine", req.Engine, "err", err)
			return Response{Code: CodeFailed, Error: err.Error()}
		}
		s.log.Warn("control: operator rerouted owed debits to the parties' current engines", "uid", uid,
			"engine", req.Engine, "moved", r.Affected, "in_flight", r.InFlight, "stayed", r.Stayed)
		if r.NotWritten > 0 {
			s.log.Error("control: rerouted owed debits moved in memory only, their records not written", "uid", uid,
				"engine", req.Engine, "not_written", r.NotWritten, "err", r.WriteError)
		}
		switch {
		case r.NotWritten > 0:
			// Moved, not durably: the CLI says so from the counts.
		case r.Affected == 0 && r.InFlight == 0 && r.Stayed == 0:
			return Response{Code: CodeNotFound, Error: fmt.Sprintf("no debit owed to engine %s", req.Engine)}
		case r.Affected == 0 && r.InFlight == 0:
			// Nothing happened: not a success.
			return Response{Code: CodeFailed, DebitsResult: &r, Error: fmt.Sprintf(
				"no debit moved: the %d owed to %s stay, it is their parties' current engine (the only one configured or reachable, or their calls in progress use it)",
				r.Stayed, req.Engine)}
		}
		return Response{OK: true, DebitsResult: &r}
	case CmdDebitsDrop:
		if req.CallID == "" {
			return Response{Code: CodeBadRequest, Error: "debits drop: call_id is required"}
		}
		if !req.Confirm {
			return Response{Code: CodeBadRequest, Error: "debits drop: not confirmed (the money is never collected): add --yes"}
		}
		r, err := s.backend.DebitsDrop(req.CallID)
		if err != nil {
			s.log.Error("control: drop of owed debits failed", "uid", uid, "callid", req.CallID, "err", err)
			return Response{Code: CodeFailed, Error: err.Error()}
		}
		if r.Affected == 0 {
			return Response{Code: CodeNotFound, Error: fmt.Sprintf("no debit owed for call id %s", req.CallID)}
		}
		s.log.Warn("control: operator dropped owed debits: never to be collected", "uid", uid, "callid", req.CallID, "dropped", r.Affected)
		return Response{OK: true, DebitsResult: &r}
	case "":
		return Response{Code: CodeBadRequest, Error: "missing cmd"}
	default:
		return Response{Code: CodeBadRequest, Error: fmt.Sprintf("unknown command %q", req.Cmd)}
	}
}

func notFound(callID string) Response {
	return Response{Code: CodeNotFound, Error: fmt.Sprintf("call id %s does not exist", callID)}
}

func writeResponse(c net.Conn, resp Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(Response{Code: CodeFailed, Error: "cannot encode reply: " + err.Error()})
	}
	_, err = c.Write(append(b, '\n'))
	return err
}
