package dialog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/unixsock"
)

// ProbeMethod is the harmless request the probe sends: it changes nothing
// on the proxy and every version of it answers.
func ProbeMethod(f Flavor) string {
	if f == Kamailio {
		return "core.version"
	}
	return "version"
}

// ProbeError says why the management socket did not answer the probe, in
// the words an operator searches for.
type ProbeError struct {
	Cause string // "no such file", "permission denied", "connection refused", ...
	Err   error
}

func (e *ProbeError) Error() string {
	if e.Err == nil {
		return e.Cause
	}
	return e.Cause + ": " + e.Err.Error()
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe checks that dialog ends can reach the proxy and its replies can
// reach us: it sends ProbeMethod to proxySocket from localSocket (bound for
// the occasion, mode 0666 like the client's, removed afterwards) and waits
// for the answer until ctx is done. It returns the version the proxy
// reports. It shares nothing with a running Client.
func Probe(ctx context.Context, f Flavor, proxySocket, localSocket string) (string, error) {
	if f != Kamailio && f != OpenSIPS {
		return "", fmt.Errorf("dialog: unknown flavor %v", f)
	}
	conn, err := unixsock.ListenPacket(localSocket, 0o666, -1)
	if err != nil {
		return "", fmt.Errorf("dialog: reply socket: %w", err)
	}
	defer os.Remove(localSocket)
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	const seq = 1
	req := encodeProbe(f, seq)
	to := &net.UnixAddr{Name: proxySocket, Net: "unixgram"}
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 100*time.Millisecond) {
		_, err = conn.WriteToUnix(req, to)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.ENOBUFS) {
			return "", &ProbeError{Cause: sendCause(err), Err: err}
		}
		// The proxy's queue is full: it is there but busy.
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return "", &ProbeError{Cause: "the proxy's receive queue stays full", Err: ctx.Err()}
		}
	}

	buf := make([]byte, readBufferSize)
	for {
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
				return "", &ProbeError{Cause: "no answer (the proxy cannot write to " + localSocket + ", is stuck, or this is not its management socket)", Err: err}
			}
			return "", &ProbeError{Cause: "reading the answer failed", Err: err}
		}
		version, err := parseProbeReply(f, buf[:n], seq)
		if errors.Is(err, errForeignID) {
			continue // a late answer to someone else's request
		}
		return version, err
	}
}

func encodeProbe(f Flavor, seq uint64) []byte {
	if f == Kamailio {
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"core.version","id":%d}`, seq)
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"%d","method":"version"}`, seq)
}

var errForeignID = errors.New("reply to another request")

// parseProbeReply reads the answer with the client's own reply parser and
// picks the version out of the result: Kamailio answers a string,
// OpenSIPS an object {"Server": "..."}.
func parseProbeReply(f Flavor, b []byte, seq uint64) (string, error) {
	rep, err := parseReply(b)
	if err != nil {
		if errors.Is(err, errNotJSON) {
			return "", &ProbeError{Cause: fmt.Sprintf("answered %q, not JSON-RPC", truncate(bytes.TrimSpace(b), 80))}
		}
		return "", &ProbeError{Cause: "answered garbage", Err: err}
	}
	if rep.seq != seq {
		return "", errForeignID
	}
	if rep.kind != replyOK {
		if rep.code == -32601 || rep.code == 404 || rep.code == 500 && bytes.Contains(bytes.ToLower(b), []byte("not found")) {
			return "", &ProbeError{Cause: fmt.Sprintf("answers, but does not know %s: is it the other proxy's socket (%s expected)?", ProbeMethod(f), f)}
		}
		return "", &ProbeError{Cause: fmt.Sprintf("answered error %d %q", rep.code, rep.message)}
	}
	var raw struct {
		Result json.RawMessage `json:"result"`
	}
	json.Unmarshal(bytes.TrimSpace(b), &raw)
	var s string
	if json.Unmarshal(raw.Result, &s) == nil {
		return strings.TrimSpace(s), nil // Kamailio 5.6.3 ends it with a space
	}
	var obj struct{ Server string }
	if json.Unmarshal(raw.Result, &obj) == nil && obj.Server != "" {
		return strings.TrimSpace(obj.Server), nil
	}
	return string(raw.Result), nil
}

func sendCause(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no such file"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (no process reads the socket)"
	case errors.Is(err, syscall.ENOTDIR):
		return "not a directory in the path"
	case errors.Is(err, syscall.EPROTOTYPE), errors.Is(err, syscall.ENOTSOCK):
		return "not a datagram socket"
	}
	return "cannot send"
}
