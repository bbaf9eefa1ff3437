package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
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
	sc      *bufio.Scanner
	timeout time.Duration
}

// Dial connects to the control socket at path. timeout bounds the connect
// and each later request (0 means 10 s). A socket served by anyone but
// root, the daemon's user or the caller is refused (*UntrustedError).
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
	sc := bufio.NewScanner(c)
	// Replies can list many sessions: allow large lines.
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	return &Client{conn: c, sc: sc, timeout: timeout}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends one request and reads its reply. A reply with ok=false comes back
// as a *RemoteError alongside the Response.
func (c *Client) Do(req Request) (Response, error) {
	if req.V == 0 {
		req.V = Version
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	// A write error is not final: a daemon that refuses us may already have
	// answered and hung up, and its reason is still there to read.
	_, werr := c.conn.Write(append(b, '\n'))
	if !c.sc.Scan() {
		if err := c.sc.Err(); err != nil {
			return Response{}, fmt.Errorf("reading reply: %w", err)
		}
		if werr != nil {
			return Response{}, fmt.Errorf("sending request: %w", werr)
		}
		return Response{}, errors.New("daemon closed the connection without a reply")
	}
	resp, err := decodeResponse(c.sc.Bytes())
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

// Sessions lists sessions whose party starts with prefix ("" for all).
func (c *Client) Sessions(prefix string) ([]SessionInfo, error) {
	resp, err := c.Do(Request{Cmd: CmdSessions, Prefix: prefix})
	if err != nil {
		return nil, err
	}
	if resp.Sessions == nil {
		return []SessionInfo{}, nil
	}
	return resp.Sessions, nil
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
