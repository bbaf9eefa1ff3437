package dialog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Flavor selects the proxy's management dialect.
type Flavor int

const (
	// Kamailio 5.x: jsonrpcs datagram transport, dlg.end_dlg.
	Kamailio Flavor = iota + 1
	// OpenSIPS 3.x: mi_datagram, dlg_end_dlg.
	OpenSIPS
)

func (f Flavor) String() string {
	switch f {
	case Kamailio:
		return "kamailio"
	case OpenSIPS:
		return "opensips"
	}
	return "Flavor(" + strconv.Itoa(int(f)) + ")"
}

// ParseFlavor reads a configuration value: "kamailio" or "opensips".
func ParseFlavor(s string) (Flavor, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "kamailio":
		return Kamailio, nil
	case "opensips":
		return OpenSIPS, nil
	}
	return 0, fmt.Errorf("dialog: unknown proxy flavor %q (want kamailio or opensips)", s)
}

// maxDatagram is the largest request OpenSIPS' mi_datagram reads.
const maxDatagram = 65457

// OpenSIPSKey is what names the dialog in an OpenSIPS dlg_end_dlg.
type OpenSIPSKey int

const (
	// ByCallID works on every OpenSIPS 3.x.
	ByCallID OpenSIPSKey = iota
	// ByHexID is 3.1+'s "<h_entry>.<h_id>", hex, least significant digit first.
	ByHexID
	// ByDecimalID is 3.0's decimal (h_entry<<32)|h_id, as its call_control sends it.
	ByDecimalID
)

// encodeRequest builds the end-dialog request with JSON-RPC id seq.
func encodeRequest(f Flavor, key OpenSIPSKey, seq uint64, t Target) ([]byte, error) {
	var b []byte
	switch f {
	case Kamailio:
		if t.NoID {
			return nil, errors.New("no dialog id: Kamailio ends dialogs only by id")
		}
		// h_entry and h_id as two JSON numbers; one "e:i" string is refused.
		b = fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[%d,%d],"id":%d}`,
			t.Dialog.Entry, t.Dialog.ID, seq)
	case OpenSIPS:
		// dialog_id must be a JSON string: a number is squeezed through a C int.
		id := t.CallID
		if t.NoID {
			key = ByCallID // an early dialog, or an id that did not parse
		}
		switch key {
		case ByHexID:
			id = openSIPSDialogID(t.Dialog)
		case ByDecimalID:
			id = strconv.FormatUint(t.Dialog.Uint64(), 10)
		}
		if id == "" {
			return nil, errors.New("empty Call-ID")
		}
		b = fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"%d","method":"dlg_end_dlg","params":{"dialog_id":`, seq)
		b = appendJSONString(b, id)
		b = append(b, "}}"...)
	default:
		return nil, fmt.Errorf("unknown flavor %v", f)
	}
	return fitsDatagram(b)
}

// fitsDatagram returns b, or an error if it is too long for one datagram
// to the proxy.
func fitsDatagram(b []byte) ([]byte, error) {
	if len(b) > maxDatagram {
		return nil, fmt.Errorf("request of %d bytes exceeds the %d byte datagram limit", len(b), maxDatagram)
	}
	return b, nil
}

// appendJSONString quotes s without HTML escaping, so a Call-ID reaches the
// proxy byte for byte wherever JSON allows it.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}

type replyKind int

const (
	replyOK replyKind = iota + 1
	replyGone
	replyError
)

// reply is one decoded answer from the proxy.
type reply struct {
	seq     uint64
	kind    replyKind
	code    int64
	message string
}

// errNotJSON marks a plain-text answer of the MI layer ("500 Internal error"),
// which carries no id.
var errNotJSON = errors.New("reply is not a JSON object")

// parseReply decodes a JSON-RPC 2.0 response. The id may be a number
// (Kamailio echoes ours) or a decimal string (OpenSIPS).
func parseReply(b []byte) (reply, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return reply{}, errNotJSON
	}
	var raw struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    json.Number `json:"code"`
			Message string      `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return reply{}, fmt.Errorf("%w: %v", errNotJSON, err)
	}
	seq, err := parseSeq(raw.ID)
	if err != nil {
		return reply{}, err
	}
	r := reply{seq: seq}
	switch {
	case raw.Error != nil:
		r.kind = replyError
		r.message = raw.Error.Message
		if c, err := raw.Error.Code.Int64(); err == nil {
			r.code = c
		}
		// Both proxies say "no such dialog" with code 404 (spec,
		// dialog-termination.md). Not by the message: OpenSIPS answers
		// an unknown method (no dialog module) "Method not found".
		if r.code == 404 {
			r.kind = replyGone
		}
	case len(raw.Result) > 0 && !bytes.Equal(raw.Result, []byte("null")):
		r.kind = replyOK
	default:
		return reply{}, errors.New("reply has neither result nor error")
	}
	return r, nil
}

func parseSeq(id json.RawMessage) (uint64, error) {
	s := string(bytes.TrimSpace(id))
	if s == "" || s == "null" {
		return 0, errors.New("reply has no id")
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reply id %s is not one of ours", id)
	}
	return seq, nil
}
