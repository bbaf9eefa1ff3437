package dialog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

var _ sipdialog.Looker = (*Client)(nil)

// LookupMethod is the proxy's method that lists the dialog of one Call-ID:
// Kamailio's dlg.dlg_list (params [callid]), OpenSIPS' dlg_list (params
// {callid}). Both answer what docs/design.md ("Asking the proxy about a
// dialog") records from the real peers.
func LookupMethod(f Flavor) string {
	if f == Kamailio {
		return "dlg.dlg_list"
	}
	return "dlg_list"
}

// Dialog states, the same numbers in both proxies' dialog modules.
const (
	stateUnconfirmed = 1 // INVITE seen, no reply with a To tag yet
	stateEarly       = 2 // ringing
	stateConfirmedNA = 3 // answered (200 OK), ACK not seen yet
	stateConfirmed   = 4
	stateDeleted     = 5 // ended; Kamailio lists it for a while after the BYE
)

// Lookup asks the proxy about the dialog of callID, over the client's
// socket and with an id of its own sequence, so that an end's answer and a
// lookup's answer can never be taken for one another. It waits for the
// answer until ctx is done or Options.Timeout passed, whichever is first;
// it is never retried here (the caller decides). A dialog the proxy does
// not know, or knows only as ended, is Found{}, nil.
func (c *Client) Lookup(ctx context.Context, callID string) (sipdialog.Found, error) {
	if callID == "" {
		return sipdialog.Found{}, errors.New("dialog lookup: empty Call-ID")
	}
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return sipdialog.Found{}, errors.New("dialog lookup: client closed")
	}
	c.seq++
	seq := c.seq
	if c.lookups == nil {
		c.lookups = make(map[uint64]chan []byte)
	}
	c.lookups[seq] = ch // before sending: the answer may beat sendto back
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.lookups, seq)
		c.mu.Unlock()
	}()

	req, err := encodeLookup(c.opts.Flavor, seq, callID)
	if err != nil {
		return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: %w", callID, err)
	}
	timer := time.NewTimer(c.opts.Timeout)
	defer timer.Stop()
	for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
		err = c.sendto(req)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.ENOBUFS) && !errors.Is(err, syscall.EINTR) {
			// Missing or refusing socket: the proxy is down or restarting.
			return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: %s: %w", callID, sendCause(err), err)
		}
		// The proxy's queue is full: it is there but busy.
		select {
		case <-time.After(backoff):
		case <-timer.C:
			return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: the proxy's receive queue stays full: %w", callID, err)
		case <-ctx.Done():
			return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: %w", callID, ctx.Err())
		case <-c.done:
			return sipdialog.Found{}, errors.New("dialog lookup: client closed")
		}
	}
	// Not in Counts.Sent: that counts dialog end datagrams.
	select {
	case b := <-ch:
		f, err := parseLookupReply(c.opts.Flavor, b, callID)
		if err != nil {
			c.log.Error("unusable answer to a dialog lookup", "callid", callID, "err", err.Error(), "reply", truncate(b, 200))
			return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: %w", callID, err)
		}
		return f, nil
	case <-timer.C:
		return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: no answer from %s within %v", callID, c.opts.ProxySocket, c.opts.Timeout)
	case <-ctx.Done():
		return sipdialog.Found{}, fmt.Errorf("dialog lookup %s: no answer from %s: %w", callID, c.opts.ProxySocket, ctx.Err())
	case <-c.done:
		return sipdialog.Found{}, errors.New("dialog lookup: client closed")
	}
}

// answerLookup hands b to the lookup waiting for id seq, if any: true
// means it was a lookup's answer (even a late one), never an end's.
func (c *Client) answerLookup(seq uint64, b []byte) bool {
	c.mu.Lock()
	ch, ok := c.lookups[seq]
	if ok {
		delete(c.lookups, seq) // one answer per lookup; a duplicate is foreign
	}
	c.mu.Unlock()
	if ok {
		ch <- append([]byte(nil), b...) // buffered, and the only send
	}
	return ok
}

// encodeLookup builds the lookup request with JSON-RPC id seq.
func encodeLookup(f Flavor, seq uint64, callID string) ([]byte, error) {
	var b []byte
	switch f {
	case Kamailio:
		b = fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"dlg.dlg_list","params":[`)
		b = appendJSONString(b, callID)
		b = fmt.Appendf(b, `],"id":%d}`, seq)
	case OpenSIPS:
		b = fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"%d","method":"dlg_list","params":{"callid":`, seq)
		b = appendJSONString(b, callID)
		b = append(b, "}}"...)
	default:
		return nil, fmt.Errorf("unknown flavor %v", f)
	}
	return fitsDatagram(b)
}

// lookedUp is one dialog of a lookup answer, in either proxy's words.
type lookedUp struct {
	// Kamailio
	HEntry  json.RawMessage `json:"h_entry"`
	HID     json.RawMessage `json:"h_id"`
	CallID  *string         `json:"call-id"`
	StartTS json.RawMessage `json:"start_ts"`
	EndTS   json.RawMessage `json:"end_ts"` // of an ended dialog (state 5)
	// OpenSIPS
	ID        *string         `json:"ID"`
	DBID      json.RawMessage `json:"db_id"`
	OCallID   *string         `json:"callid"`
	TimeStart json.RawMessage `json:"timestart"`
	// both
	State json.RawMessage `json:"state"`
}

// parseLookupReply reads the proxy's answer to a lookup of callID.
// Kamailio answers one dialog object, {} when there is none (an array of
// objects is read too); OpenSIPS {"Dialog": {...}}, or error 404 when
// there is none or the first one it finds has ended.
func parseLookupReply(f Flavor, b []byte, callID string) (sipdialog.Found, error) {
	rep, err := parseReply(b)
	if err != nil {
		return sipdialog.Found{}, err
	}
	switch rep.kind {
	case replyGone:
		return sipdialog.Found{}, nil
	case replyError:
		return sipdialog.Found{}, fmt.Errorf("proxy answered error %d %q", rep.code, rep.message)
	}
	var raw struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &raw); err != nil {
		return sipdialog.Found{}, err
	}
	dialogs, err := lookupDialogs(f, raw.Result)
	if err != nil {
		return sipdialog.Found{}, err
	}
	var best sipdialog.Found
	for _, d := range dialogs {
		found, err := d.found(f, callID)
		if err != nil {
			return sipdialog.Found{}, err
		}
		switch {
		case found.Exists && (!best.Exists || found.Answered && !best.Answered):
			best = found
		case found.Ended && !best.Exists && !best.Ended:
			best = found // kept only if no live one is listed
		}
	}
	return best, nil
}

func lookupDialogs(f Flavor, result json.RawMessage) ([]lookedUp, error) {
	result = bytes.TrimSpace(result)
	if f == OpenSIPS {
		var wrap struct {
			Dialog  *lookedUp  `json:"Dialog"`
			Dialogs []lookedUp `json:"Dialogs"`
		}
		if err := json.Unmarshal(result, &wrap); err != nil {
			return nil, fmt.Errorf("result is not a dialog list: %v", err)
		}
		if wrap.Dialog != nil {
			return append(wrap.Dialogs, *wrap.Dialog), nil
		}
		if wrap.Dialogs == nil {
			return nil, errors.New(`result has neither "Dialog" nor "Dialogs"`)
		}
		return wrap.Dialogs, nil
	}
	if len(result) > 0 && result[0] == '[' {
		var ds []lookedUp
		if err := json.Unmarshal(result, &ds); err != nil {
			return nil, fmt.Errorf("result is not a dialog list: %v", err)
		}
		return ds, nil
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(result, &probe); err != nil {
		return nil, fmt.Errorf("result is not a dialog: %v", err)
	}
	if len(probe) == 0 {
		return nil, nil // {}: no such dialog
	}
	var d lookedUp
	if err := json.Unmarshal(result, &d); err != nil {
		return nil, fmt.Errorf("result is not a dialog: %v", err)
	}
	return []lookedUp{d}, nil
}

// found reads one dialog. A dialog of another Call-ID (which neither proxy
// lists for a Call-ID) is skipped, not trusted.
func (d lookedUp) found(f Flavor, callID string) (sipdialog.Found, error) {
	cid := d.CallID
	if f == OpenSIPS {
		cid = d.OCallID
	}
	if cid != nil && *cid != callID {
		return sipdialog.Found{}, nil
	}
	state, ok := jsonUint(d.State, 8)
	if !ok {
		return sipdialog.Found{}, fmt.Errorf("dialog has no usable state: %s", truncate(d.State, 40))
	}
	var out sipdialog.Found
	switch state {
	case stateUnconfirmed, stateEarly:
		out.Exists = true
	case stateConfirmedNA, stateConfirmed:
		out.Exists, out.Answered = true, true
	case stateDeleted:
		out.Ended = true
	default:
		return sipdialog.Found{}, fmt.Errorf("dialog in unknown state %d", state)
	}
	ts := d.StartTS
	if f == OpenSIPS {
		ts = d.TimeStart
	}
	if secs, ok := jsonUint(ts, 63); ok && secs > 0 && (out.Answered || out.Ended) {
		out.AnsweredAt = time.Unix(int64(secs), 0)
	}
	if secs, ok := jsonUint(d.EndTS, 63); ok && secs > 0 && out.Ended {
		out.EndedAt = time.Unix(int64(secs), 0)
	}
	switch f {
	case Kamailio:
		e, ok1 := jsonUint(d.HEntry, 32)
		i, ok2 := jsonUint(d.HID, 32)
		if ok1 && ok2 {
			out.Dialog, out.HasDialog = sipdialog.ID{Entry: uint32(e), ID: uint32(i)}, true
		}
	case OpenSIPS:
		// db_id is the decimal (h_entry<<32)|h_id call_control sends at
		// start; ID the same in reversed hex ("<entry>.<id>").
		if v, ok := jsonUint(d.DBID, 64); ok {
			out.Dialog, out.HasDialog = sipdialog.ID{Entry: uint32(v >> 32), ID: uint32(v)}, true
		} else if d.ID != nil {
			if id, ok := parseOpenSIPSDialogID(*d.ID); ok {
				out.Dialog, out.HasDialog = id, true
			}
		}
	}
	return out, nil
}

// jsonUint reads a JSON number or a string of decimal digits that fits in
// bits.
func jsonUint(raw json.RawMessage, bits int) (uint64, bool) {
	s := string(bytes.TrimSpace(raw))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || len(s) > 20 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, bits)
	return v, err == nil
}

// parseOpenSIPSDialogID reads "<hex>.<hex>", each least significant digit
// first (the inverse of openSIPSDialogID).
func parseOpenSIPSDialogID(s string) (sipdialog.ID, bool) {
	e, i, ok := strings.Cut(s, ".")
	if !ok {
		return sipdialog.ID{}, false
	}
	ev, ok1 := unreverseHex(e)
	iv, ok2 := unreverseHex(i)
	return sipdialog.ID{Entry: ev, ID: iv}, ok1 && ok2
}

func unreverseHex(s string) (uint32, bool) {
	if s == "" || len(s) > 8 {
		return 0, false
	}
	var v uint32
	for k := len(s) - 1; k >= 0; k-- {
		d := strings.IndexByte("0123456789abcdef", s[k])
		if d < 0 {
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}
