package dialogtest

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Dialog is what the fake lists for a Call-ID when asked (Kamailio
// dlg.dlg_list, OpenSIPS dlg_list), in the real proxies' words (see
// internal/dialog/testdata/lookup).
type Dialog struct {
	// State as both dialog modules number it: 1 unconfirmed, 2 early
	// (ringing), 3 answered but not ACKed, 4 confirmed, 5 ended (Kamailio
	// still lists it for a while; OpenSIPS answers 404).
	State     int
	Entry, ID uint32
	// StartTS is the answer time in Unix seconds; 0 while ringing, as the
	// proxies show it.
	StartTS int64
	// EndTS is an ended dialog's (State 5) end in Unix seconds, as
	// Kamailio lists it; 0: StartTS (or 1).
	EndTS int64
}

// SetDialog makes the fake list d for callID from now on.
func (f *Fake) SetDialog(callID string, d Dialog) {
	f.mu.Lock()
	if f.dialogs == nil {
		f.dialogs = map[string]Dialog{}
	}
	f.dialogs[callID] = d
	f.mu.Unlock()
}

// DeleteDialog makes the fake forget callID's dialog (the proxy freed it).
func (f *Fake) DeleteDialog(callID string) {
	f.mu.Lock()
	delete(f.dialogs, callID)
	f.mu.Unlock()
}

// Lookups returns every lookup request received so far, in order. They
// are not in Requests, which lists dialog ends.
func (f *Fake) Lookups() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.lookups...)
}

func (f *Fake) isLookup(req Request) bool {
	return f.flavor == Kamailio && req.Method == "dlg.dlg_list" || f.flavor == OpenSIPS && req.Method == "dlg_list"
}

// decodeLookup reads the Call-ID of a lookup into req.CallID.
func (f *Fake) decodeLookup(req *Request) {
	var s string
	if f.flavor == Kamailio {
		var ps []json.RawMessage
		if json.Unmarshal(req.Params, &ps) != nil || len(ps) < 1 || len(ps) > 2 || json.Unmarshal(ps[0], &s) != nil {
			return
		}
	} else {
		var p struct {
			CallID *string `json:"callid"`
		}
		if json.Unmarshal(req.Params, &p) != nil || p.CallID == nil {
			return
		}
		s = *p.CallID
	}
	req.CallID, req.Valid = s, true
}

// answerLookup answers a lookup from the fake's dialogs, as the real
// proxy does; the answer set for the fake applies as to ends: AnswerOK
// lists the dialog (or says there is none), AnswerNotFound says there is
// none whatever the fake holds, the others break the answer alike.
func (f *Fake) answerLookup(req Request, from *net.UnixAddr) {
	f.decodeLookup(&req)
	f.mu.Lock()
	f.lookups = append(f.lookups, req)
	d, known := f.dialogs[req.CallID]
	answer := f.answer
	f.mu.Unlock()
	a := AnswerOK
	if answer != nil {
		a = answer(req)
	}
	if from == nil || from.Name == "" || len(req.ID) == 0 {
		return
	}
	if a == AnswerNotFound {
		known = false
		a = AnswerOK
	}
	var out []byte
	switch {
	case a == AnswerWrongID:
		wrong := req
		wrong.ID = json.RawMessage(`"4711` + strings.Trim(string(req.ID), `"`) + `"`)
		out = f.lookupReply(wrong, d, known)
	case a != AnswerOK:
		out = f.reply(req, a)
	case !req.Valid:
		out = f.errorReply(req, -32602, "Invalid params")
		if f.flavor == Kamailio {
			out = f.errorReply(req, 500, "Invalid parameters")
		}
	default:
		out = f.lookupReply(req, d, known)
	}
	if out != nil {
		f.send(out, from.Name)
	}
}

func (f *Fake) lookupReply(req Request, d Dialog, known bool) []byte {
	cid, _ := json.Marshal(req.CallID)
	if f.flavor == Kamailio {
		if !known {
			return fmt.Appendf(nil, `{"jsonrpc":"2.0","result":{},"id":%s}`, req.ID)
		}
		var end int64
		if d.State == 5 {
			end = max(d.StartTS, 1)
			if d.EndTS > 0 {
				end = d.EndTS
			}
		}
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","result":{"h_entry":%d,"h_id":%d,"ref":1,"call-id":%s,`+
			`"from_uri":"sip:caller@127.0.0.1","to_uri":"sip:callee@127.0.0.1","state":%d,"start_ts":%d,"init_ts":%d,`+
			`"end_ts":%d,"duration":0,"timeout":0,"lifetime":43200,"dflags":512,"sflags":0,"iflags":0,`+
			`"caller":{"tag":"fake-a","contact":"sip:caller@127.0.0.1","cseq":"1","route_set":"","socket":"udp:127.0.0.1:5060"},`+
			`"callee":{"tag":null,"contact":null,"cseq":null,"route_set":null,"socket":null},"profiles":[],"variables":[]},"id":%s}`,
			d.Entry, d.ID, cid, d.State, d.StartTS, max(d.StartTS-1, 1), end, req.ID)
	}
	if !known || d.State == 5 {
		return f.errorReply(req, 404, "No such dialog")
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","result":{"Dialog":{"ID":"%s.%s","db_id":"%d","state":%d,"user_flags":"",`+
		`"timestart":%d,"timeout":0,"callid":%s,"from_uri":"sip:caller@127.0.0.1","to_uri":"sip:callee@127.0.0.1",`+
		`"caller_tag":"fake-a","caller_contact":"sip:caller@127.0.0.1","callee_cseq":"0","caller_route_set":"",`+
		`"caller_bind_addr":"udp:127.0.0.1:5060","CALLEES":[]}},"id":%s}`,
		reverseHex(d.Entry), reverseHex(d.ID), uint64(d.Entry)<<32|uint64(d.ID), d.State, d.StartTS, cid, req.ID)
}

func reverseHex(v uint32) string {
	b := []byte(strconv.FormatUint(uint64(v), 16))
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
