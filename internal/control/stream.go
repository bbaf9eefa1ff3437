package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"
)

// The sessions reply is the one line {"ok":true,"sessions":[...]} every
// version of the protocol gave, byte for byte, but written as the backend
// walks the table, a chunk at a time: at 1,000,000 sessions (~400 MB of
// JSON) neither the daemon nor a client that reads it element by element
// (Client.EachSession) holds more than a chunk. Older clients and scripts
// read the same line they always did.

// sessionsWriteBuffer is what the daemon buffers of a sessions reply
// before writing it to the socket.
const sessionsWriteBuffer = 64 << 10

// sessionsRequest decodes line when it is a sessions request the server
// answers by streaming; anything else (other commands, malformed lines)
// goes through serveLine. sessions is read-only: any peer let in may list.
func sessionsRequest(line []byte) (Request, bool) {
	req, err := decodeRequest(line)
	return req, err == nil && req.Cmd == CmdSessions
}

// deadlineWriter gives every write to the connection a timeout of its
// own (writeTimeout): a client that reads, however slowly, gets the whole
// listing; one that stops reading loses the connection after the timeout,
// which ends the walk and frees the daemon's listing slot.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
	written *bool // set once a byte of the reply is on its way
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	*w.written = true
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.c.Write(p)
}

// writeSessions answers a sessions request, streamed. An error before the
// first byte of the reply left (a listing that fits the buffer never
// leaves before its end) is answered as any error is; after it the reply
// can only be cut short: the connection is closed (the returned error),
// and a client sees a reply that does not end.
func (s *Server) writeSessions(c net.Conn, req Request, uid int64) (err error) {
	s.log.Debug("control: sessions", "uid", uid, "prefix", req.Prefix)
	written := false
	bw := bufio.NewWriterSize(deadlineWriter{c, s.streamTimeout, &written}, sessionsWriteBuffer)
	var elem bytes.Buffer
	enc := json.NewEncoder(&elem) // escapes as json.Marshal does: the same bytes as a reply built whole
	started, n := false, 0
	ctx, stop := s.watchHangup(c)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control command panicked", "cmd", req.Cmd, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = errors.New("internal error")
		}
		if err == nil {
			return
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Nobody to answer: the client closed its end, or the
			// daemon stops (and closes the connection).
			why := "client went away"
			if s.ctx.Err() != nil {
				why = "control socket closing"
			}
			s.log.Debug("control: sessions listing given up: "+why, "uid", uid, "listed", n)
			return
		}
		if written {
			s.log.Warn("control: sessions listing cut short", "uid", uid, "listed", n, "err", err)
			return
		}
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		err = writeResponse(c, Response{Code: CodeFailed, Error: "listing sessions: " + err.Error()})
	}()
	err = s.backend.Sessions(ctx, req.Prefix, func(chunk []SessionInfo) error {
		for i := range chunk {
			if !started {
				bw.WriteString(`{"ok":true,"sessions":[`)
				started = true
			} else {
				bw.WriteByte(',')
			}
			elem.Reset()
			if err := enc.Encode(&chunk[i]); err != nil {
				return err
			}
			if _, err := bw.Write(bytes.TrimSuffix(elem.Bytes(), []byte("\n"))); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !started {
		bw.WriteString(`{"ok":true,"sessions":[`)
		started = true
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// EachSession lists the sessions whose party starts with prefix ("" for
// all), oldest first, calling f for each as it is read: the reply is
// decoded element by element, so memory does not grow with the number of
// sessions. An error from f ends the listing (and this connection: the
// rest of the reply is not read) and is returned. A reply cut short is an
// error, after f saw the sessions that came.
func (c *Client) EachSession(prefix string, f func(SessionInfo) error) error {
	if c.broken != nil {
		return c.broken
	}
	werr := c.send(Request{Cmd: CmdSessions, Prefix: prefix})
	tok, err := c.dec.Token()
	if err != nil {
		return c.readError(err, werr)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return c.malformed(fmt.Sprintf("%v where { was expected", tok))
	}
	// Every member but "sessions" is small: kept, and decoded at the end
	// as a reply read whole would be.
	rest := map[string]json.RawMessage{}
	n := 0
	for c.dec.More() {
		tok, err = c.dec.Token()
		if err != nil {
			return c.readError(cutShort(err, n), nil)
		}
		key, _ := tok.(string)
		if key != "sessions" {
			var v json.RawMessage
			if err := c.dec.Decode(&v); err != nil {
				return c.readError(cutShort(err, n), nil)
			}
			rest[key] = v
			continue
		}
		tok, err = c.dec.Token()
		if err != nil {
			return c.readError(cutShort(err, n), nil)
		}
		if tok == nil { // null: none
			continue
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return c.malformed(fmt.Sprintf("sessions is %v, not a list", tok))
		}
		for c.dec.More() {
			var s SessionInfo
			if err := c.dec.Decode(&s); err != nil {
				return c.readError(cutShort(err, n), nil)
			}
			n++
			if err := f(s); err != nil {
				c.broken = fmt.Errorf("an earlier listing was left unread: %w", err)
				c.conn.Close()
				return err
			}
		}
		if err := c.expectDelim(']', n); err != nil {
			return err
		}
	}
	if err := c.expectDelim('}', n); err != nil {
		return err
	}
	b, _ := json.Marshal(rest)
	_, err = replyOf(b)
	return err
}

// cutShort says how far a listing got when its reply broke off.
func cutShort(err error, n int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("the daemon closed the connection after %d sessions, before the listing's end", n)
	}
	return err
}

// expectDelim reads the next token of a listing n sessions in, which must
// be d.
func (c *Client) expectDelim(d json.Delim, n int) error {
	tok, err := c.dec.Token()
	if err != nil {
		return c.readError(cutShort(err, n), nil)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return c.malformed(fmt.Sprintf("%v where %v was expected", tok, d))
	}
	return nil
}

func (c *Client) malformed(what string) error {
	c.broken = fmt.Errorf("malformed reply from daemon: %s", what)
	c.conn.Close()
	return c.broken
}
