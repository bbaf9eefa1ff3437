package acct

import (
	"net"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
)

// Sip-Method values: the proxy's method bit (OpenSIPS and Kamailio
// parser/msg_parser.h; dictionary.openser's VALUEs).
const (
	sipMethodInvite = 1
	sipMethodBye    = 8
)

type attr struct {
	t radius.Type
	v radius.Attribute
}

func str(t radius.Type, s string) attr { return attr{t, radius.Attribute(s)} }
func num(t radius.Type, n uint32) attr { return attr{t, radius.NewInteger(n)} }

// stopWith builds a Stop for Call-ID callID carrying attrs.
func stopWith(callID string, attrs ...attr) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Stop)
	rfc2866.AcctSessionID_AddString(p, callID)
	for _, a := range attrs {
		p.Add(a.t, a.v)
	}
	return p
}

// recordingWriter keeps what the handler answered.
type recordingWriter struct{ answers []*radius.Packet }

func (w *recordingWriter) Write(p *radius.Packet) error {
	w.answers = append(w.answers, p)
	return nil
}

// TestStopEndsOnlyItsDialog: a Stop ends the tracked call only when it is
// about that dialog, with the From/To tags at dictionary.openser's numbers
// (Kamailio) or at dictionary.opensips's (OpenSIPS). A Stop of an earlier
// call with the same Call-ID (Call-IDs are not unique across time) must
// not end the call being tracked, which would then run on without a timer
// and without a debit. Every one of them is answered.
func TestStopEndsOnlyItsDialog(t *testing.T) {
	tests := []struct {
		name  string
		p     *radius.Packet
		ended bool
	}{
		{"openser tags, caller's BYE", stopWith("c", str(attrSipFromTag, "caller"), str(attrSipToTag, "callee")), true},
		{"openser tags, callee's BYE", stopWith("c", str(attrSipFromTag, "callee"), str(attrSipToTag, "caller")), true},
		{"openser tags, earlier call", stopWith("c", str(attrSipFromTag, "old"), str(attrSipToTag, "oldto")), false},
		{"opensips tags, caller's BYE", stopWith("c", str(attrOpenSIPSSipFromTag, "caller"), str(attrOpenSIPSSipToTag, "callee")), true},
		{"opensips tags, callee's BYE", stopWith("c", str(attrOpenSIPSSipFromTag, "callee"), str(attrOpenSIPSSipToTag, "caller")), true},
		{"opensips tags, earlier call", stopWith("c", str(attrOpenSIPSSipFromTag, "old"), str(attrOpenSIPSSipToTag, "oldto")), false},
		{"opensips CDR, earlier call", stopWith("c", num(attrOpenSIPSSipMethod, sipMethodInvite), str(attrOpenSIPSSipFromTag, "old"),
			str(attrOpenSIPSSipToTag, "oldto"), num(attrSipCallDuration, 30)), false},
		{"no tags at all", stopWith("c"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "c", FromTag: "caller"})
			l := &Listener{tracker: tr, log: testLogger(t)}
			w := &recordingWriter{}
			l.serveRADIUS(w, &radius.Request{Packet: tt.p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
			if got := len(tr.Closed()) == 1; got != tt.ended {
				t.Errorf("ended %v, want %v (closed %+v)", got, tt.ended, tr.Closed())
			}
			if len(w.answers) != 1 || w.answers[0].Code != radius.CodeAccountingResponse {
				t.Errorf("answers %+v, want one Accounting-Response", w.answers)
			}
		})
	}
}

// TestCancelStopDoesNotEndCall: the proxy's acc module reports a CANCEL
// with Acct-Status-Type Stop (aaa_status in OpenSIPS's acc.c; Kamailio's
// acc_radius alike) when CANCELs are accounted (report_cancels). A
// CANCEL that crossed the callee's 200 OK ends nothing: the call is up
// and must keep its timer and its debit. A call that the CANCEL did end
// was never answered: the proxy reports it itself, and there is nothing
// to debit. Only the BYE's Stop and the dialog's CDR end a call.
func TestCancelStopDoesNotEndCall(t *testing.T) {
	tests := []struct {
		name  string
		p     *radius.Packet
		ended bool
	}{
		{"openser CANCEL", stopWith("c", num(attrSipMethod, sipMethodCancel), str(attrSipFromTag, "caller")), false},
		{"opensips CANCEL", stopWith("c", num(attrOpenSIPSSipMethod, sipMethodCancel), str(attrOpenSIPSSipFromTag, "caller")), false},
		{"openser BYE", stopWith("c", num(attrSipMethod, sipMethodBye), str(attrSipFromTag, "caller")), true},
		{"opensips BYE", stopWith("c", num(attrOpenSIPSSipMethod, sipMethodBye), str(attrOpenSIPSSipFromTag, "caller")), true},
		{"opensips CDR", stopWith("c", num(attrOpenSIPSSipMethod, sipMethodInvite), str(attrOpenSIPSSipFromTag, "caller"),
			num(attrSipCallDuration, 30)), true},
		{"no method", stopWith("c", str(attrSipFromTag, "caller")), true},
		{"malformed method", stopWith("c", attr{attrSipMethod, radius.Attribute{2}}, str(attrSipFromTag, "caller")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "c", FromTag: "caller"})
			l := &Listener{tracker: tr, log: testLogger(t)}
			w := &recordingWriter{}
			l.serveRADIUS(w, &radius.Request{Packet: tt.p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
			if got := len(tr.Closed()) == 1; got != tt.ended {
				t.Errorf("ended %v, want %v (closed %+v)", got, tt.ended, tr.Closed())
			}
			if len(w.answers) != 1 || w.answers[0].Code != radius.CodeAccountingResponse {
				t.Errorf("answers %+v, want one Accounting-Response", w.answers)
			}
		})
	}
}
