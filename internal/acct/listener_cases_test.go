package acct

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
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

// TestListenerIgnoresPaddingAfterLength: RFC 2865 section 3 (and 2866):
// octets past the Length field are padding, ignored on reception; the
// sender signed only Length octets. A signed Stop with padding after it
// is answered and ends its call; one whose Length runs past the datagram
// is dropped unanswered.
func TestListenerIgnoresPaddingAfterLength(t *testing.T) {
	tests := []struct {
		name     string
		edit     func([]byte) []byte
		answered bool
	}{
		{"exact", func(b []byte) []byte { return b }, true},
		{"zero padding", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, true},
		{"garbage padding", func(b []byte) []byte { return append(b, "garbage"...) }, true},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, false},
		// Past the 4096 octets a RADIUS packet may have: the read loop
		// gets the first 4096, padding is still padding.
		{"huge padding", func(b []byte) []byte { return append(b, make([]byte, 6000)...) }, true},
		{"huge length", func(b []byte) []byte {
			b = append(b, make([]byte, 6000)...)
			binary.BigEndian.PutUint16(b[2:4], 5000)
			return b
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "c", FromTag: "caller"})
			logs := &lineLog{}
			l := startListenerLogged(t, tr, logs.logger())
			p := stopWith("c", str(attrSipFromTag, "caller"), num(attrSipCallDuration, 12))
			b := tt.edit(mustEncode(t, p))
			if !tt.answered {
				conn := udpTo(t, l.Addr().String())
				if _, err := conn.Write(b); err != nil {
					t.Fatal(err)
				}
				waitLogged(t, logs, "radius: dropped a datagram")
				if got := tr.Closed(); len(got) != 0 {
					t.Errorf("a dropped request ended %+v", got)
				}
				return
			}
			conn := udpTo(t, l.Addr().String())
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 4096)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("not answered: %v\n%s", err, logs)
			}
			if !radius.IsAuthenticResponse(buf[:n], b, []byte(secret)) || radius.Code(buf[0]) != radius.CodeAccountingResponse {
				t.Fatalf("answer is not an Accounting-Response signed for the request")
			}
			want := Outcome{CallID: "c", FromTag: "caller", Kind: Terminated, Duration: 12}
			if got := tr.waitClosed(t, 1); len(got) != 1 || got[0] != want {
				t.Errorf("closed %+v, want %+v", got, want)
			}
		})
	}
}

func udpTo(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func waitLogged(t *testing.T, logs *lineLog, line string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); logs.count(line) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged:\n%s", line, logs)
		}
	}
}

// FuzzSignedLength: the read loop's check of each datagram never panics,
// never passes on more than the datagram, and passes exactly what the
// sender signed.
func FuzzSignedLength(f *testing.F) {
	signed := mustEncodeF(f, stopWith("c", str(attrSipFromTag, "f")))
	f.Add(signed)
	f.Add(append(append([]byte(nil), signed...), 0, 0, 0))
	f.Add(signed[:19])
	f.Add([]byte{})
	f.Add(mustEncodeF(f, statusServer(f, secret, true)))
	f.Fuzz(func(t *testing.T, b []byte) {
		length, ok := signedLength(b, []byte(secret))
		if !ok {
			return
		}
		if length < 20 || length > len(b) {
			t.Fatalf("length %d of a %d-octet datagram", length, len(b))
		}
		if radius.Code(b[0]) == radius.CodeStatusServer {
			// IsAuthenticRequest passes any Status-Server.
			if !validMessageAuthenticator(b[:length], []byte(secret)) {
				t.Fatalf("passed an unsigned Status-Server")
			}
			return
		}
		if !radius.IsAuthenticRequest(b[:length], []byte(secret)) {
			t.Fatalf("passed an unsigned request")
		}
	})
}

func mustEncodeF(f *testing.F, p *radius.Packet) []byte {
	b, err := p.Encode()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// TestListenerEndLogLine: the line saying a call ended names the call's
// own From tag (for the callee's BYE, the Stop's To tag) and never prints
// the "unknown" marker -1 as a duration.
func TestListenerEndLogLine(t *testing.T) {
	tests := []struct {
		name string
		p    *radius.Packet
		want []string
		not  []string
	}{
		{"caller's BYE, no duration", stopWith("c", str(attrSipFromTag, "caller"), str(attrSipToTag, "callee")),
			[]string{"from_tag=caller", "duration=unknown"}, []string{"duration=-1"}},
		{"callee's BYE", stopWith("c", str(attrSipFromTag, "callee"), str(attrSipToTag, "caller")),
			[]string{"from_tag=caller"}, []string{"from_tag=callee", "duration=-1"}},
		{"CDR", stopWith("c", str(attrSipFromTag, "caller"), num(attrSipCallDuration, 61)),
			[]string{"from_tag=caller", "duration=61"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "c", FromTag: "caller"})
			logs := &lineLog{}
			l := &Listener{tracker: tr, log: logs.logger()}
			l.serveRADIUS(&recordingWriter{}, &radius.Request{Packet: tt.p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
			var line string
			for _, s := range strings.Split(logs.String(), "\n") {
				if strings.Contains(s, "radius accounting says call ended") {
					line = s
				}
			}
			if line == "" {
				t.Fatalf("no end logged:\n%s", logs)
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(line, n) {
					t.Errorf("%q has %q", line, n)
				}
			}
		})
	}
}

// TestListenerSaysWhenItDies: the daemon starts Serve in the background
// and nobody reads its error, so a listener that stops on a read error
// (not on Close) must say so itself: from then on calls that end unseen
// are no longer noticed through it.
func TestListenerSaysWhenItDies(t *testing.T) {
	logs := &lineLog{}
	l, err := NewListener("127.0.0.1:0", secret, newTracker(), logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() { done <- l.Serve(context.Background()) }()
	// A read error that is not a shutdown: the socket fails under Serve.
	waitServing(t, l)
	l.conn.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve returned nil after its socket failed")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "radius accounting listener stopped") {
		t.Errorf("no error logged:\n%s", logs)
	}
}

// waitServing waits until l answers a request.
func waitServing(t *testing.T, l *Listener) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := radius.Client{Retry: 200 * time.Millisecond}
	if _, err := c.Exchange(ctx, acctPacket(secret, rfc2866.AcctStatusType_Value_InterimUpdate, "probe", "", -1), l.Addr().String()); err != nil {
		t.Fatalf("listener not serving: %v", err)
	}
}

// TestOnlyStopEndsCalls: every other status is answered and ends
// nothing. Accounting-On/Off say the sender (re)started: a proxy restart
// does not end the calls it carried (their media goes on; the dialogs may
// be restored), and each call that did end has its own Stop. Unknown
// attributes, vendor-specific ones included, change nothing.
func TestOnlyStopEndsCalls(t *testing.T) {
	withStatus := withStatusAttrs
	vsa, err := radius.NewVendorSpecific(9, radius.Attribute{1, 4, 'x', 'y'})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		p     *radius.Packet
		ended bool
	}{
		{"start", withStatus(1, str(attrSipFromTag, "caller")), false},
		{"interim", withStatus(3, str(attrSipFromTag, "caller")), false},
		{"accounting-on", withStatus(7), false},
		{"accounting-off", withStatus(8), false},
		{"failed", withStatus(15, str(attrSipFromTag, "caller")), false},
		{"unknown status", withStatus(99, str(attrSipFromTag, "caller")), false},
		{"no status", withoutStatus(stopWith("c", str(attrSipFromTag, "caller"))), false},
		{"stop, unknown attributes", withStatus(2, str(attrSipFromTag, "caller"), attr{26, vsa}, str(240, "x"), attr{200, nil}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "c", FromTag: "caller"})
			l := &Listener{tracker: tr, log: testLogger(t)}
			w := &recordingWriter{}
			l.serveRADIUS(w, &radius.Request{Packet: tt.p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
			if got := len(tr.Closed()) == 1; got != tt.ended {
				t.Errorf("ended %v, want %v", got, tt.ended)
			}
			if len(w.answers) != 1 || w.answers[0].Code != radius.CodeAccountingResponse {
				t.Errorf("answers %+v, want one Accounting-Response", w.answers)
			}
		})
	}
}

func withoutStatus(p *radius.Packet) *radius.Packet {
	p.Attributes.Del(rfc2866.AcctStatusType_Type)
	return p
}

// FuzzListenerRequest: any attributes a signed Accounting-Request carries
// are handled without a panic, answered exactly once, and end at most the
// one call they name.
func FuzzListenerRequest(f *testing.F) {
	for _, p := range []*radius.Packet{
		stopWith("c", str(attrSipFromTag, "caller"), num(attrSipCallDuration, 3)),
		stopWith("c", str(attrOpenSIPSSipFromTag, "callee"), str(attrOpenSIPSSipToTag, "caller"), num(attrOpenSIPSSipMethod, 8)),
		stopWith("c", num(attrSipMethod, 2)),
	} {
		f.Add(mustEncodeF(f, p)[20:])
	}
	f.Fuzz(func(t *testing.T, attrs []byte) {
		if len(attrs) > radius.MaxPacketLength-20 {
			return
		}
		b := make([]byte, 20+len(attrs))
		b[0] = byte(radius.CodeAccountingRequest)
		binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
		copy(b[20:], attrs)
		h := md5.New()
		h.Write(b[:4])
		h.Write(make([]byte, 16))
		h.Write(b[20:])
		h.Write([]byte(secret))
		h.Sum(b[4:4:20])
		length, ok := signedLength(b, []byte(secret))
		if !ok || length != len(b) {
			t.Fatalf("a signed request was refused")
		}
		p, err := radius.Parse(b[:length], []byte(secret))
		if err != nil {
			return // the server drops it, unanswered
		}
		tr := newTracker(Call{CallID: "c", FromTag: "caller"}, Call{CallID: "d", FromTag: "caller"})
		l := &Listener{tracker: tr, log: slog.New(slog.DiscardHandler)}
		w := &recordingWriter{}
		l.serveRADIUS(w, &radius.Request{Packet: p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
		if len(w.answers) != 1 {
			t.Fatalf("%d answers", len(w.answers))
		}
		if closed := tr.Closed(); len(closed) > 1 {
			t.Fatalf("one request ended %+v", closed)
		}
	})
}

// TestMediaTimeoutEndsCall: MediaProxy reports each media session's end
// with an Interim-Update ("Update") carrying Media-Info (234, its
// radius/dictionary), "timeout" when the media stopped and no BYE came
// (mediaproxy/interfaces/accounting/radius.py). That is the radacct row's
// MediaInfo = 'timeout' live: the call timed out, its dialog is ended (BYE
// both ways) and it is debited until now.
func TestMediaTimeoutEndsCall(t *testing.T) {
	update := func(attrs ...attr) *radius.Packet {
		p := radius.New(radius.CodeAccountingRequest, []byte(secret))
		rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_InterimUpdate)
		rfc2866.AcctSessionID_AddString(p, "c")
		rfc2866.AcctSessionTime_Add(p, 40)
		for _, a := range attrs {
			p.Add(a.t, a.v)
		}
		return p
	}
	timedOut := []Outcome{{CallID: "c", FromTag: "caller", Kind: TimedOut, Duration: 0}}
	tests := []struct {
		name string
		p    *radius.Packet
		want []Outcome
	}{
		{"timeout, opensips tags", update(str(attrMediaInfo, "timeout"), str(attrOpenSIPSSipFromTag, "caller"), str(attrOpenSIPSSipToTag, "callee")), timedOut},
		{"timeout, openser tags", update(str(attrMediaInfo, "timeout"), str(attrSipFromTag, "caller"), str(attrSipToTag, "callee")), timedOut},
		{"media ended by a BYE", update(str(attrMediaInfo, ""), str(attrSipFromTag, "caller")), nil},
		{"no media info", update(str(attrSipFromTag, "caller")), nil},
		{"timeout, earlier call", update(str(attrMediaInfo, "timeout"), str(attrSipFromTag, "old"), str(attrSipToTag, "oldto")), nil},
		{"timeout in a Start", withStatusAttrs(1, str(attrMediaInfo, "timeout"), str(attrSipFromTag, "caller")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(Call{CallID: "c", FromTag: "caller"})
			l := &Listener{tracker: tr, log: testLogger(t)}
			w := &recordingWriter{}
			l.serveRADIUS(w, &radius.Request{Packet: tt.p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
			if got := tr.Closed(); len(got) != len(tt.want) || (len(got) == 1 && got[0] != tt.want[0]) {
				t.Errorf("closed %+v, want %+v", got, tt.want)
			}
			if len(w.answers) != 1 || w.answers[0].Code != radius.CodeAccountingResponse {
				t.Errorf("answers %+v, want one Accounting-Response", w.answers)
			}
		})
	}
}

func withStatusAttrs(status uint32, attrs ...attr) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	p.Add(rfc2866.AcctStatusType_Type, radius.NewInteger(status))
	rfc2866.AcctSessionID_AddString(p, "c")
	for _, a := range attrs {
		p.Add(a.t, a.v)
	}
	return p
}

// radclientOpenSIPSDict names, for radclient, the attributes as OpenSIPS's
// dictionary.opensips and MediaProxy's radius/dictionary number them
// (prefixed: the default dictionary has other Sip-* names).
const radclientOpenSIPSDict = `$INCLUDE /usr/share/freeradius/dictionary
ATTRIBUTE	OSIPS-Sip-Method	204	integer
ATTRIBUTE	OSIPS-Sip-From-Tag	206	string
ATTRIBUTE	OSIPS-Sip-To-Tag	207	string
ATTRIBUTE	OSIPS-Sip-Call-Duration	227	integer
ATTRIBUTE	MP-Media-Info	234	string
`

// TestListenerRadclientOpenSIPSAndMediaProxy: requests as OpenSIPS and
// MediaProxy word them, sent by a real RADIUS client (radclient), end
// what they should and nothing else.
func TestListenerRadclientOpenSIPSAndMediaProxy(t *testing.T) {
	if _, err := exec.LookPath("radclient"); err != nil {
		accttest.Require(t, errors.New("package internal/acct: radclient not found: install the Debian package freeradius-utils"))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dictionary"), []byte(radclientOpenSIPSDict), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newTracker(
		Call{CallID: "callee-bye", FromTag: "caller"},
		Call{CallID: "cdr", FromTag: "caller"},
		Call{CallID: "reused", FromTag: "caller"},
		Call{CallID: "cancel", FromTag: "caller"},
		Call{CallID: "media", FromTag: "caller"},
		Call{CallID: "media-bye", FromTag: "caller"},
	)
	l := startListener(t, tr)
	// What must end nothing goes first, so that its handlers have long
	// run when the last call ends (the listener answers, then ends).
	requests := []string{
		`Acct-Status-Type = Stop, Acct-Session-Id = "reused", OSIPS-Sip-Method = 8, OSIPS-Sip-From-Tag = "old", OSIPS-Sip-To-Tag = "oldto"`,
		`Acct-Status-Type = Stop, Acct-Session-Id = "cancel", OSIPS-Sip-Method = 2, OSIPS-Sip-From-Tag = "caller"`,
		`Acct-Status-Type = Interim-Update, Acct-Session-Id = "media-bye", Acct-Session-Time = 40, OSIPS-Sip-From-Tag = "caller", OSIPS-Sip-To-Tag = "callee", MP-Media-Info = ""`,
		`Acct-Status-Type = Stop, Acct-Session-Id = "callee-bye", OSIPS-Sip-Method = 8, OSIPS-Sip-From-Tag = "callee", OSIPS-Sip-To-Tag = "caller"`,
		`Acct-Status-Type = Stop, Acct-Session-Id = "cdr", OSIPS-Sip-Method = 1, OSIPS-Sip-From-Tag = "caller", OSIPS-Sip-To-Tag = "callee", OSIPS-Sip-Call-Duration = 61`,
		`Acct-Status-Type = Interim-Update, Acct-Session-Id = "media", Acct-Session-Time = 40, OSIPS-Sip-From-Tag = "caller", OSIPS-Sip-To-Tag = "callee", MP-Media-Info = "timeout"`,
	}
	for _, attrs := range requests {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "radclient", "-D", "/usr/share/freeradius", "-d", dir,
			"-r", "2", "-t", "1", "-x", l.Addr().String(), "acct", secret)
		cmd.Stdin = strings.NewReader(attrs + "\n")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "Accounting-Response") {
			t.Fatalf("radclient: %v\n%s", err, out)
		}
	}
	want := []Outcome{
		{CallID: "callee-bye", FromTag: "caller", Kind: Terminated, Duration: DurationUnknown},
		{CallID: "cdr", FromTag: "caller", Kind: Terminated, Duration: 61},
		{CallID: "media", FromTag: "caller", Kind: TimedOut},
	}
	got := tr.waitClosed(t, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("closed:\n got %+v\nwant %+v", got, want)
	}
	if left := tr.TrackedCalls(); len(left) != 3 {
		t.Errorf("left tracked: %+v", left)
	}
}
