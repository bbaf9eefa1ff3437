// Package proxy speaks the call_control module's Unix-socket protocol: it
// parses requests, serves every connection strictly in order and writes
// one reply per request. See ../shared/spec/proxy-protocol.md.
package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// MaxRequestSize bounds one request, headers included. The module's
// requests are a few hundred bytes; anything near this is not a proxy.
const MaxRequestSize = 64 << 10

// Request is one parsed request. Only the keys the daemon uses are kept;
// the protocol allows unknown keys and they are ignored.
type Request struct {
	Command string // lower-cased: init, start, stop, debug, terminate

	CallID      string
	RURI        string
	Diverter    string
	SourceIP    string
	From        string
	FromTag     string
	Prepaid     string // "true", "false", "unknown", or "" when absent (Kamailio)
	CallLimit   string
	CallToken   string
	DialogID    string
	Application string // sip_application (Kamailio)
	Show        string // debug: sessions | session
	User        string // debug show sessions: user prefix

	Client *Client // the connection it came on: set by the Server, not read
}

// Client is the process on the other end of a connection.
type Client struct {
	Cred *unixsock.Cred // its credentials; nil when unknown
	gone func() bool
}

// Gone reports whether the client has closed its end of the connection: a
// long answer (a listing) stops early instead of being worked off for
// nobody. False when unknown.
func (c *Client) Gone() bool { return c != nil && c.gone != nil && c.gone() }

// ErrTooLarge is returned when a request exceeds MaxRequestSize. The rest
// of the stream cannot be trusted to be in step, so the caller closes it.
var ErrTooLarge = errors.New("request too large")

// MalformedError is a request that was read whole but cannot be used. The
// stream is still in step: the next request can be read.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed request: " + e.Reason }

// ReadRequest reads one request: a command line, "key: value" lines, then
// an empty line. Leading empty lines are skipped. It returns a
// *MalformedError for a request that was framed correctly but is not
// valid, ErrTooLarge, or the reader's error (io.EOF between requests).
func ReadRequest(r *bufio.Reader, req *Request) error {
	return readRequest(r, req, nil)
}

// ReadRequestRaw is ReadRequest that also appends the request's bytes, as
// the proxy sent them, to *raw (the --debug wire line shows them).
func ReadRequestRaw(r *bufio.Reader, req *Request, raw *[]byte) error {
	return readRequest(r, req, raw)
}

func readRequest(r *bufio.Reader, req *Request, raw *[]byte) error {
	*req = Request{}
	size := 0
	var malformed *MalformedError
	gotCommand := false
	for {
		line, err := readLine(r, &size)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) || errors.Is(err, ErrTooLarge) {
				return ErrTooLarge
			}
			return err
		}
		if raw != nil && (gotCommand || len(bytes.TrimSpace(line)) > 0) {
			*raw = append(*raw, line...)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if !gotCommand {
				continue // stray empty lines between requests
			}
			if malformed != nil {
				return malformed
			}
			return nil
		}
		if !gotCommand {
			gotCommand = true
			req.Command = lowerString(line)
			continue
		}
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			if malformed == nil {
				malformed = &MalformedError{Reason: fmt.Sprintf("line without ':' %q", truncate(line))}
			}
			continue
		}
		req.set(bytes.TrimSpace(key), bytes.TrimSpace(value))
	}
}

// readLine returns the next line including its '\n', counting its bytes
// against the request size limit.
func readLine(r *bufio.Reader, size *int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	*size += len(line)
	if *size > MaxRequestSize {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, err
	}
	return line, nil
}

func (req *Request) set(key, value []byte) {
	var dst *string
	switch {
	case equalFold(key, "callid"):
		dst = &req.CallID
	case equalFold(key, "ruri"):
		dst = &req.RURI
	case equalFold(key, "diverter"):
		dst = &req.Diverter
	case equalFold(key, "sourceip"):
		dst = &req.SourceIP
	case equalFold(key, "from"):
		dst = &req.From
	case equalFold(key, "fromtag"):
		dst = &req.FromTag
	case equalFold(key, "prepaid"):
		dst = &req.Prepaid
	case equalFold(key, "call_limit"):
		dst = &req.CallLimit
	case equalFold(key, "call_token"):
		dst = &req.CallToken
	case equalFold(key, "dialogid"):
		dst = &req.DialogID
	case equalFold(key, "sip_application"):
		dst = &req.Application
	case equalFold(key, "show"):
		dst = &req.Show
	case equalFold(key, "user"):
		dst = &req.User
	default:
		return // unknown keys are allowed
	}
	*dst = string(value)
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// lowerString interns the common commands so the hot path does not
// allocate for them.
func lowerString(b []byte) string {
	for _, c := range [...]string{"init", "start", "stop", "debug", "terminate"} {
		if equalFold(b, c) {
			return c
		}
	}
	return string(bytes.ToLower(b))
}

func truncate(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}
