package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ErrNotFound is returned (wrapped in a *RemoteError) when the daemon does
// not know the Call-ID.
var ErrNotFound = errors.New("not found")

// ErrDenied is returned (wrapped in a *RemoteError) when the daemon refused
// the caller.
var ErrDenied = errors.New("permission denied")

// RemoteError is an error reply from the daemon.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Is maps reply codes onto ErrNotFound and ErrDenied for errors.Is.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrDenied:
		return e.Code == CodeDenied
	}
	return false
}

// DialError says the daemon could not be reached at all.
type DialError struct {
	Path string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("cannot connect to %s: %v", e.Path, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// Client talks to a daemon's control socket. It is not safe for concurrent
// use: requests on one connection are strictly in order.
type Client struct {
	conn    net.Conn
	dec     *json.Decoder
	timeout time.Duration
	// broken is set once a reply was not read to its end: what follows
	// on the connection is out of step, so every later request fails.
	broken error
}

// Dial connects to the control socket at path. timeout bounds the connect
// and each wait for the daemon: a request gets no answer, or a long reply
// (a listing of many sessions) stops coming, for that long (0 means 10 s).
// A socket served by anyone but root, the daemon's user or the caller is
// refused (*UntrustedError).
func Dial(path string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, &DialError{Path: path, Err: err}
	}
	if err := checkServer(path, c); err != nil {
		c.Close()
		return nil, err
	}
	// Replies are read as JSON values, not lines: a sessions reply is
	// one line of ~400 MB at 1,000,000 sessions, which EachSession
	// decodes element by element instead of holding it.
	dec := json.NewDecoder(bufio.NewReaderSize(deadlineReader{c, timeout}, 64<<10))
	return &Client{conn: c, dec: dec, timeout: timeout}, nil
}

// deadlineReader gives every read its own timeout: a reply that keeps
// coming is read to its end however long it is.
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.timeout))
	return r.c.Read(p)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// send writes one request. Its error is not final: a daemon that refuses
// us may already have answered and hung up, and its reason is still there
// to read.
func (c *Client) send(req Request) error {
	if c.broken != nil {
		return c.broken
	}
	if req.V == 0 {
		req.V = Version
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err = c.conn.Write(append(b, '\n'))
	return err
}

// readError explains why no reply (or not all of one) could be read, and
// marks the connection out of step.
func (c *Client) readError(err, werr error) error {
	switch {
	case err == io.EOF && werr != nil:
		err = fmt.Errorf("sending request: %w", werr)
	case err == io.EOF:
		err = errors.New("daemon closed the connection without a reply")
	case err == io.ErrUnexpectedEOF:
		err = errors.New("reading reply: the daemon closed the connection before the reply's end")
	default:
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			err = fmt.Errorf("malformed reply from daemon: %v", err)
		} else {
			err = fmt.Errorf("reading reply: %w", err)
		}
	}
	c.broken = err
	c.conn.Close()
	return err
}

// Do sends one request and reads its reply. A reply with ok=false comes back
// as a *RemoteError alongside the Response.
func (c *Client) Do(req Request) (Response, error) {
	if c.broken != nil {
		return Response{}, c.broken
	}
	werr := c.send(req)
	var raw json.RawMessage
	if err := c.dec.Decode(&raw); err != nil {
		return Response{}, c.readError(err, werr)
	}
	return replyOf(raw)
}

// replyOf decodes a reply read whole.
func replyOf(raw []byte) (Response, error) {
	resp, err := decodeResponse(raw)
	if err != nil {
		return Response{}, err
	}
	if !resp.OK {
		return resp, &RemoteError{Code: resp.Code, Message: resp.Error}
	}
	return resp, nil
}

func decodeResponse(line []byte) (Response, error) {
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("malformed reply from daemon: %v", err)
	}
	if !resp.OK && resp.Error == "" {
		resp.Error = "daemon reported an error"
		if resp.Code != "" {
			resp.Error += " (" + resp.Code + ")"
		}
	}
	return resp, nil
}

// Sessions lists sessions whose party starts with prefix ("" for all),
// oldest first. It holds the whole list: for a table of any size use
// EachSession.
func (c *Client) Sessions(prefix string) ([]SessionInfo, error) {
	list := []SessionInfo{}
	err := c.EachSession(prefix, func(s SessionInfo) error {
		list = append(list, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// Session shows one session; errors.Is(err, ErrNotFound) if unknown.
func (c *Client) Session(callID string) (SessionInfo, error) {
	resp, err := c.Do(Request{Cmd: CmdSession, CallID: callID})
	if err != nil {
		return SessionInfo{}, err
	}
	if resp.Session == nil {
		return SessionInfo{}, errors.New("malformed reply from daemon: no session")
	}
	return *resp.Session, nil
}

// Terminate ends a call and says how far that went; errors.Is(err,
// ErrNotFound) if unknown. A daemon that does not say is reported as
// TerminatePending: asked, outcome unknown.
func (c *Client) Terminate(callID string) (TerminateInfo, error) {
	resp, err := c.Do(Request{Cmd: CmdTerminate, CallID: callID})
	if err != nil {
		return TerminateInfo{}, err
	}
	if resp.Terminate == nil {
		return TerminateInfo{Outcome: TerminatePending}, nil
	}
	return *resp.Terminate, nil
}

// Stats returns the daemon's summary.
func (c *Client) Stats() (Stats, error) {
	resp, err := c.Do(Request{Cmd: CmdStats})
	if err != nil {
		return Stats{}, err
	}
	if resp.Stats == nil {
		return Stats{}, errors.New("malformed reply from daemon: no stats")
	}
	return *resp.Stats, nil
}

// Reload asks the daemon to re-read its configuration. It returns the
// changed options that apply only at a restart; an error means the daemon
// refused the file and nothing changed.
func (c *Client) Reload() ([]string, error) {
	resp, err := c.Do(Request{Cmd: CmdReload})
	return resp.RestartNeeded, err
}
